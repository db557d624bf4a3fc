//! Ed25519 signature verification (RFC 8032 §5.1.7) for EdDSA tokens,
//! public key only.
//!
//! Why our own: jwt-simple verifies with ed25519-compact, whose field
//! arithmetic multiplies 64-bit limbs into `u128`. Wasm has no 64×64→128
//! multiply, so every limb product there is a call to `__multi3`, and a
//! verification took ~350 µs in Envoy's V8 against ~70 µs natively. This
//! field uses ref10's representation instead: ten signed limbs of 26 and 25
//! bits, stored in 32 bits, whose products fit an `i64`, which Wasm
//! multiplies natively.
//!
//! S·B − h·A is computed with an eight-way split of the scalars (bits 0–31,
//! 32–63, … of each one against the bases P, 2^32·P, …, 2^224·P), so the
//! shared run of doublings is 32 long instead of 253. The public key is
//! decompressed and the odd multiples of its eight bases (width-5 NAF,
//! normalised to Z = 1) are computed once, when the key set is loaded:
//! 7.5 KiB a key. The base point's tables (width-8 NAF, 60 KiB) are built
//! once per VM.
//!
//! The acceptance rules are ed25519-compact's, so that moving the work here
//! changes no answer: the signature is 64 bytes; S must be below the group
//! order L; A and R must be canonical encodings of points that are not of
//! small order; and the check is cofactored, `8(S·B − h·A − R) = 0`. The
//! tests hold this module to ed25519-compact on Wycheproof's vectors,
//! RFC 8032's, and random and corrupted signatures (src/auth/ed25519_tests.rs).
//!
//! Everything in a verification is public (key, signature, message), so
//! nothing here needs to be constant-time.

use std::sync::OnceLock;

use hmac_sha512::Hash as Sha512;

/// An element of GF(2^255 − 19): Σ limb_i · 2^⌈25.5·i⌉, limbs signed,
/// stored in 32 bits and multiplied in 64. The bounds are ref10's: after
/// `carry`, |limb| ≤ ~2^25 (26-bit positions) or ~2^24 (25-bit ones); sums
/// of up to four such elements go into `mul`, whose largest column is then
/// below 2^63.
#[derive(Clone, Copy, Debug)]
struct Fe([i32; 10]);

const WIDTHS: [u32; 10] = [26, 25, 26, 25, 26, 25, 26, 25, 26, 25];

const ZERO: Fe = Fe([0; 10]);
const ONE: Fe = Fe([1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

impl Fe {
    fn small(v: i32) -> Fe {
        Fe([v, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    /// The low 255 bits of `s`, little-endian; the top bit is ignored.
    fn from_bytes(s: &[u8; 32]) -> Fe {
        let mut out = [0i32; 10];
        let (mut acc, mut bits) = (0u64, 0u32);
        let mut bytes = s.iter();
        for (limb, w) in out.iter_mut().zip(WIDTHS) {
            while bits < w {
                acc |= u64::from(bytes.next().copied().unwrap_or(0)) << bits;
                bits += 8;
            }
            *limb = (acc & ((1 << w) - 1)) as i32;
            acc >>= w;
            bits -= w;
        }
        Fe(out)
    }

    /// The canonical encoding (fully reduced mod p), little-endian.
    fn to_bytes(self) -> [u8; 32] {
        // ref10's fe_tobytes: with h carried, q = ⌊h / p⌋ is found by
        // rippling the carries of h + 19 through the limbs.
        let Fe([mut h0, mut h1, mut h2, mut h3, mut h4, mut h5, mut h6, mut h7, mut h8, mut h9]) =
            carry(self.0.map(i64::from));
        let mut q = (19 * h9 + (1 << 24)) >> 25;
        q = (h0 + q) >> 26;
        q = (h1 + q) >> 25;
        q = (h2 + q) >> 26;
        q = (h3 + q) >> 25;
        q = (h4 + q) >> 26;
        q = (h5 + q) >> 25;
        q = (h6 + q) >> 26;
        q = (h7 + q) >> 25;
        q = (h8 + q) >> 26;
        q = (h9 + q) >> 25;
        // h − q·p = h + 19q − q·2^255: add 19q, then drop the carry out of
        // the top limb.
        h0 += 19 * q;
        let c = h0 >> 26;
        h1 += c;
        h0 -= c << 26;
        let c = h1 >> 25;
        h2 += c;
        h1 -= c << 25;
        let c = h2 >> 26;
        h3 += c;
        h2 -= c << 26;
        let c = h3 >> 25;
        h4 += c;
        h3 -= c << 25;
        let c = h4 >> 26;
        h5 += c;
        h4 -= c << 26;
        let c = h5 >> 25;
        h6 += c;
        h5 -= c << 25;
        let c = h6 >> 26;
        h7 += c;
        h6 -= c << 26;
        let c = h7 >> 25;
        h8 += c;
        h7 -= c << 25;
        let c = h8 >> 26;
        h9 += c;
        h8 -= c << 26;
        let c = h9 >> 25;
        h9 -= c << 25;

        let mut out = [0u8; 32];
        let mut slots = out.iter_mut();
        let (mut acc, mut bits) = (0u64, 0u32);
        for (limb, w) in [h0, h1, h2, h3, h4, h5, h6, h7, h8, h9]
            .into_iter()
            .zip(WIDTHS)
        {
            acc |= u64::from(limb as u32) << bits;
            bits += w;
            while bits >= 8 {
                if let Some(slot) = slots.next() {
                    *slot = acc as u8;
                }
                acc >>= 8;
                bits -= 8;
            }
        }
        if let Some(slot) = slots.next() {
            *slot = acc as u8;
        }
        out
    }

    fn is_zero(self) -> bool {
        self.to_bytes() == [0; 32]
    }

    /// RFC 8032's sign of x: its least significant bit.
    fn is_negative(self) -> bool {
        self.to_bytes().first().is_some_and(|b| b & 1 == 1)
    }

    fn add(self, g: Fe) -> Fe {
        let mut h = self.0;
        h.iter_mut().zip(g.0).for_each(|(a, b)| *a += b);
        Fe(h)
    }

    fn sub(self, g: Fe) -> Fe {
        let mut h = self.0;
        h.iter_mut().zip(g.0).for_each(|(a, b)| *a -= b);
        Fe(h)
    }

    fn neg(self) -> Fe {
        ZERO.sub(self)
    }

    fn mul(self, g: Fe) -> Fe {
        let [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9] = self.0.map(i64::from);
        let [g0, g1, g2, g3, g4, g5, g6, g7, g8, g9] = g.0.map(i64::from);
        // Terms past 2^255 wrap around times 19; two odd limbs' offsets sum
        // to one more than their product's limb offset, hence the 2s.
        let (g1_19, g2_19, g3_19, g4_19, g5_19) = (19 * g1, 19 * g2, 19 * g3, 19 * g4, 19 * g5);
        let (g6_19, g7_19, g8_19, g9_19) = (19 * g6, 19 * g7, 19 * g8, 19 * g9);
        let (f1_2, f3_2, f5_2, f7_2, f9_2) = (2 * f1, 2 * f3, 2 * f5, 2 * f7, 2 * f9);
        let h0 = f0 * g0
            + f1_2 * g9_19
            + f2 * g8_19
            + f3_2 * g7_19
            + f4 * g6_19
            + f5_2 * g5_19
            + f6 * g4_19
            + f7_2 * g3_19
            + f8 * g2_19
            + f9_2 * g1_19;
        let h1 = f0 * g1
            + f1 * g0
            + f2 * g9_19
            + f3 * g8_19
            + f4 * g7_19
            + f5 * g6_19
            + f6 * g5_19
            + f7 * g4_19
            + f8 * g3_19
            + f9 * g2_19;
        let h2 = f0 * g2
            + f1_2 * g1
            + f2 * g0
            + f3_2 * g9_19
            + f4 * g8_19
            + f5_2 * g7_19
            + f6 * g6_19
            + f7_2 * g5_19
            + f8 * g4_19
            + f9_2 * g3_19;
        let h3 = f0 * g3
            + f1 * g2
            + f2 * g1
            + f3 * g0
            + f4 * g9_19
            + f5 * g8_19
            + f6 * g7_19
            + f7 * g6_19
            + f8 * g5_19
            + f9 * g4_19;
        let h4 = f0 * g4
            + f1_2 * g3
            + f2 * g2
            + f3_2 * g1
            + f4 * g0
            + f5_2 * g9_19
            + f6 * g8_19
            + f7_2 * g7_19
            + f8 * g6_19
            + f9_2 * g5_19;
        let h5 = f0 * g5
            + f1 * g4
            + f2 * g3
            + f3 * g2
            + f4 * g1
            + f5 * g0
            + f6 * g9_19
            + f7 * g8_19
            + f8 * g7_19
            + f9 * g6_19;
        let h6 = f0 * g6
            + f1_2 * g5
            + f2 * g4
            + f3_2 * g3
            + f4 * g2
            + f5_2 * g1
            + f6 * g0
            + f7_2 * g9_19
            + f8 * g8_19
            + f9_2 * g7_19;
        let h7 = f0 * g7
            + f1 * g6
            + f2 * g5
            + f3 * g4
            + f4 * g3
            + f5 * g2
            + f6 * g1
            + f7 * g0
            + f8 * g9_19
            + f9 * g8_19;
        let h8 = f0 * g8
            + f1_2 * g7
            + f2 * g6
            + f3_2 * g5
            + f4 * g4
            + f5_2 * g3
            + f6 * g2
            + f7_2 * g1
            + f8 * g0
            + f9_2 * g9_19;
        let h9 = f0 * g9
            + f1 * g8
            + f2 * g7
            + f3 * g6
            + f4 * g5
            + f5 * g4
            + f6 * g3
            + f7 * g2
            + f8 * g1
            + f9 * g0;
        carry([h0, h1, h2, h3, h4, h5, h6, h7, h8, h9])
    }

    /// The uncarried columns of f²: `mul` with the symmetric products
    /// counted once and doubled.
    fn square_columns(self) -> [i64; 10] {
        let [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9] = self.0.map(i64::from);
        let (f0_2, f1_2, f2_2, f3_2, f4_2) = (2 * f0, 2 * f1, 2 * f2, 2 * f3, 2 * f4);
        let (f5_2, f7_2) = (2 * f5, 2 * f7);
        let (f5_38, f6_19, f7_38, f8_19, f9_38) = (38 * f5, 19 * f6, 38 * f7, 19 * f8, 38 * f9);
        let h0 = f0 * f0 + f1_2 * f9_38 + f2_2 * f8_19 + f3_2 * f7_38 + f4_2 * f6_19 + f5 * f5_38;
        let h1 = f0_2 * f1 + f2 * f9_38 + f3_2 * f8_19 + f4 * f7_38 + f5_2 * f6_19;
        let h2 = f0_2 * f2 + f1_2 * f1 + f3_2 * f9_38 + f4_2 * f8_19 + f5_2 * f7_38 + f6 * f6_19;
        let h3 = f0_2 * f3 + f1_2 * f2 + f4 * f9_38 + f5_2 * f8_19 + f6 * f7_38;
        let h4 = f0_2 * f4 + f1_2 * f3_2 + f2 * f2 + f5_2 * f9_38 + f6 * f8_19 * 2 + f7 * f7_38;
        let h5 = f0_2 * f5 + f1_2 * f4 + f2_2 * f3 + f6 * f9_38 + f7_2 * f8_19;
        let h6 = f0_2 * f6 + f1_2 * f5_2 + f2_2 * f4 + f3_2 * f3 + f7_2 * f9_38 + f8 * f8_19;
        let h7 = f0_2 * f7 + f1_2 * f6 + f2_2 * f5 + f3_2 * f4 + f8 * f9_38;
        let h8 = f0_2 * f8 + f1_2 * f7_2 + f2_2 * f6 + f3_2 * f5_2 + f4 * f4 + f9 * f9_38;
        let h9 = f0_2 * f9 + f1_2 * f8 + f2_2 * f7 + f3_2 * f6 + f4_2 * f5;
        [h0, h1, h2, h3, h4, h5, h6, h7, h8, h9]
    }

    fn square(self) -> Fe {
        carry(self.square_columns())
    }

    /// 2·f², carried once.
    fn square_double(self) -> Fe {
        let mut h = self.square_columns();
        h.iter_mut().for_each(|v| *v *= 2);
        carry(h)
    }

    fn square_times(self, n: u32) -> Fe {
        (0..n).fold(self, |x, _| x.square())
    }

    /// (z^(2^250 − 1), z^11), the common prefix of inversion and of the
    /// square-root exponent (ref10's addition chain).
    fn pow_2_250_1(self) -> (Fe, Fe) {
        let z2 = self.square();
        let z9 = self.mul(z2.square_times(2));
        let z11 = z2.mul(z9);
        let z_5_0 = z9.mul(z11.square());
        let z_10_0 = z_5_0.square_times(5).mul(z_5_0);
        let z_20_0 = z_10_0.square_times(10).mul(z_10_0);
        let z_40_0 = z_20_0.square_times(20).mul(z_20_0);
        let z_50_0 = z_40_0.square_times(10).mul(z_10_0);
        let z_100_0 = z_50_0.square_times(50).mul(z_50_0);
        let z_200_0 = z_100_0.square_times(100).mul(z_100_0);
        let z_250_0 = z_200_0.square_times(50).mul(z_50_0);
        (z_250_0, z11)
    }

    /// z^(p − 2) = 1/z (0 for 0).
    fn invert(self) -> Fe {
        let (z_250_0, z11) = self.pow_2_250_1();
        z_250_0.square_times(5).mul(z11)
    }

    /// z^((p − 5)/8) = z^(2^252 − 3).
    fn pow_p58(self) -> Fe {
        let (z_250_0, _) = self.pow_2_250_1();
        z_250_0.square_times(2).mul(self)
    }
}

/// ref10's carry: rounds every column into its limb's signed range, the
/// top limb's overflow wrapping around times 19.
fn carry(h: [i64; 10]) -> Fe {
    let [mut h0, mut h1, mut h2, mut h3, mut h4, mut h5, mut h6, mut h7, mut h8, mut h9] = h;
    let c = (h0 + (1 << 25)) >> 26;
    h1 += c;
    h0 -= c << 26;
    let c = (h4 + (1 << 25)) >> 26;
    h5 += c;
    h4 -= c << 26;
    let c = (h1 + (1 << 24)) >> 25;
    h2 += c;
    h1 -= c << 25;
    let c = (h5 + (1 << 24)) >> 25;
    h6 += c;
    h5 -= c << 25;
    let c = (h2 + (1 << 25)) >> 26;
    h3 += c;
    h2 -= c << 26;
    let c = (h6 + (1 << 25)) >> 26;
    h7 += c;
    h6 -= c << 26;
    let c = (h3 + (1 << 24)) >> 25;
    h4 += c;
    h3 -= c << 25;
    let c = (h7 + (1 << 24)) >> 25;
    h8 += c;
    h7 -= c << 25;
    let c = (h4 + (1 << 25)) >> 26;
    h5 += c;
    h4 -= c << 26;
    let c = (h8 + (1 << 25)) >> 26;
    h9 += c;
    h8 -= c << 26;
    let c = (h9 + (1 << 24)) >> 25;
    h0 += 19 * c;
    h9 -= c << 25;
    let c = (h0 + (1 << 25)) >> 26;
    h1 += c;
    h0 -= c << 26;
    // every limb is now within ±2^25 (ref10's bound), so it fits an i32
    Fe([h0, h1, h2, h3, h4, h5, h6, h7, h8, h9].map(|v| v as i32))
}

/// Whether the 255-bit little-endian value (top bit clear) is below p.
fn fe_canonical(y: &[u8; 32]) -> bool {
    // p = 2^255 − 19: only 2^255 − 19 … 2^255 − 1 are not, that is
    // 0xed…0xff, then 30 bytes of 0xff, then 0x7f.
    let [first, middle @ .., last] = y;
    !(*last == 0x7f && middle.iter().all(|b| *b == 0xff) && *first >= 0xed)
}

/// Extended coordinates: x = X/Z, y = Y/Z, xy = T/Z.
#[derive(Clone, Copy, Debug)]
struct P3 {
    x: Fe,
    y: Fe,
    z: Fe,
    t: Fe,
}

/// Projective coordinates.
#[derive(Clone, Copy)]
struct P2 {
    x: Fe,
    y: Fe,
    z: Fe,
}

/// The "completed" result of an addition or doubling: x = X/Z, y = Y/T.
#[derive(Clone, Copy)]
struct P1P1 {
    x: Fe,
    y: Fe,
    z: Fe,
    t: Fe,
}

/// A point ready to be added: (Y + X, Y − X, Z, 2d·T).
#[derive(Clone, Copy, Debug)]
struct Cached {
    y_plus_x: Fe,
    y_minus_x: Fe,
    z: Fe,
    t2d: Fe,
}

/// A table entry, normalised to Z = 1 when the table is built, which saves
/// a multiplication in every addition: (y + x, y − x, 2d·x·y).
#[derive(Clone, Copy, Debug)]
struct Affine {
    y_plus_x: Fe,
    y_minus_x: Fe,
    xy2d: Fe,
}

impl Affine {
    const IDENTITY: Affine = Affine {
        y_plus_x: ONE,
        y_minus_x: ONE,
        xy2d: ZERO,
    };
}

struct Constants {
    d: Fe,
    d2: Fe,
    sqrt_m1: Fe,
    /// For each base 2^(PART·j)·B: its multiples 1, 3, 5, …, 127 (width-8 NAF).
    base: Box<[[Affine; 64]; SPLIT]>,
}

/// The curve's constants, derived from its definition rather than typed in:
/// d = −121665/121666, √−1 = 2^((p−1)/4), B the point with y = 4/5 and x
/// even. Computed once per VM.
fn constants() -> &'static Constants {
    static CONSTANTS: OnceLock<Constants> = OnceLock::new();
    CONSTANTS.get_or_init(|| {
        let d = Fe::small(121665).neg().mul(Fe::small(121666).invert());
        let d2 = d.add(d);
        // 2^((p−1)/4) = (2^((p−5)/8))² · 2
        let sqrt_m1 = Fe::small(2).pow_p58().square().mul(Fe::small(2));
        let mut k = Constants {
            d,
            d2,
            sqrt_m1,
            base: Box::new([[Affine::IDENTITY; 64]; SPLIT]),
        };
        let y = Fe::small(4).mul(Fe::small(5).invert());
        if let Some(minus_b) = decompress_negated_with(&y.to_bytes(), &k) {
            k.base = odd_multiple_tables(minus_b.neg(), d2);
        }
        k
    })
}

impl P3 {
    const IDENTITY: P3 = P3 {
        x: ZERO,
        y: ONE,
        z: ONE,
        t: ZERO,
    };

    fn to_p2(self) -> P2 {
        P2 {
            x: self.x,
            y: self.y,
            z: self.z,
        }
    }

    fn to_cached(self, d2: Fe) -> Cached {
        Cached {
            y_plus_x: self.y.add(self.x),
            y_minus_x: self.y.sub(self.x),
            z: self.z,
            t2d: self.t.mul(d2),
        }
    }

    fn neg(self) -> P3 {
        P3 {
            x: self.x.neg(),
            y: self.y,
            z: self.z,
            t: self.t.neg(),
        }
    }

    fn add(self, q: &Cached) -> P1P1 {
        let a = self.y.add(self.x).mul(q.y_plus_x);
        let b = self.y.sub(self.x).mul(q.y_minus_x);
        let c = q.t2d.mul(self.t);
        let zz = self.z.mul(q.z);
        let d = zz.add(zz);
        P1P1 {
            x: a.sub(b),
            y: a.add(b),
            z: d.add(c),
            t: d.sub(c),
        }
    }

    fn add_affine(self, q: &Affine) -> P1P1 {
        let a = self.y.add(self.x).mul(q.y_plus_x);
        let b = self.y.sub(self.x).mul(q.y_minus_x);
        let c = q.xy2d.mul(self.t);
        let d = self.z.add(self.z);
        P1P1 {
            x: a.sub(b),
            y: a.add(b),
            z: d.add(c),
            t: d.sub(c),
        }
    }

    fn sub_affine(self, q: &Affine) -> P1P1 {
        let a = self.y.add(self.x).mul(q.y_minus_x);
        let b = self.y.sub(self.x).mul(q.y_plus_x);
        let c = q.xy2d.mul(self.t);
        let d = self.z.add(self.z);
        P1P1 {
            x: a.sub(b),
            y: a.add(b),
            z: d.sub(c),
            t: d.add(c),
        }
    }

    fn dbl(self) -> P1P1 {
        self.to_p2().dbl()
    }

    /// Whether the point's order divides 8: only those have x = 0 once
    /// multiplied by 4.
    fn has_small_order(self) -> bool {
        self.dbl().to_p2().dbl().x.is_zero()
    }
}

impl P2 {
    const IDENTITY: P2 = P2 {
        x: ZERO,
        y: ONE,
        z: ONE,
    };

    fn dbl(self) -> P1P1 {
        let xx = self.x.square();
        let yy = self.y.square();
        let b = self.z.square_double();
        let aa = self.x.add(self.y).square();
        let y3 = yy.add(xx);
        let z3 = yy.sub(xx);
        P1P1 {
            x: aa.sub(y3),
            y: y3,
            z: z3,
            t: b.sub(z3),
        }
    }
}

impl P1P1 {
    fn to_p2(self) -> P2 {
        P2 {
            x: self.x.mul(self.t),
            y: self.y.mul(self.z),
            z: self.z.mul(self.t),
        }
    }

    fn to_p3(self) -> P3 {
        P3 {
            x: self.x.mul(self.t),
            y: self.y.mul(self.z),
            z: self.z.mul(self.t),
            t: self.x.mul(self.y),
        }
    }
}

/// How many ways the scalars are split; each part is `PART` bits long.
/// More parts mean fewer doublings and bigger tables.
const SPLIT: usize = 8;
const PART: usize = 32;

/// P, 2^PART·P, 2^(2·PART)·P, …
fn spaced(p: P3) -> [P3; SPLIT] {
    let mut out = [p; SPLIT];
    let mut current = p;
    for slot in out.iter_mut().skip(1) {
        let mut r = current.to_p2();
        for _ in 1..PART {
            r = r.dbl().to_p2();
        }
        current = r.dbl().to_p3();
        *slot = current;
    }
    out
}

/// For each base of `spaced(p)`: its N odd multiples, the table a width-w
/// NAF needs (N = 2^(w−2)): P, 3P, 5P, … Every entry is normalised to
/// Z = 1 with one shared inversion (Montgomery's trick).
fn odd_multiple_tables<const N: usize>(p: P3, d2: Fe) -> Box<[[Affine; N]; SPLIT]> {
    let mut points: Vec<P3> = Vec::with_capacity(SPLIT * N);
    for base in spaced(p) {
        let twice = base.dbl().to_p3().to_cached(d2);
        let mut current = base;
        for _ in 0..N {
            points.push(current);
            current = current.add(&twice).to_p3();
        }
    }
    // before[i] = z_0·…·z_(i−1); then 1/z_i = before[i] / (z_0·…·z_i)
    let mut before = Vec::with_capacity(points.len());
    let mut product = ONE;
    for q in &points {
        before.push(product);
        product = product.mul(q.z);
    }
    let mut inverse = product.invert();
    let mut normalised = Vec::with_capacity(points.len());
    for (b, q) in before.iter().zip(&points).rev() {
        let z_inv = inverse.mul(*b);
        inverse = inverse.mul(q.z);
        let (x, y) = (q.x.mul(z_inv), q.y.mul(z_inv));
        normalised.push(Affine {
            y_plus_x: y.add(x),
            y_minus_x: y.sub(x),
            xy2d: x.mul(y).mul(d2),
        });
    }
    let mut tables = Box::new([[Affine::IDENTITY; N]; SPLIT]);
    for (slot, entry) in tables
        .iter_mut()
        .flatten()
        .zip(normalised.into_iter().rev())
    {
        *slot = entry;
    }
    tables
}

/// Decodes a point and returns its negation (the verification equation
/// needs −A and −R), as ed25519-compact does: `None` when y is not below p,
/// when no x fits, or for the encoding of x = 0 with the sign bit set.
fn decompress_negated_with(s: &[u8; 32], k: &Constants) -> Option<P3> {
    let mut y_bytes = *s;
    let sign = y_bytes.last().is_some_and(|b| b >> 7 == 1);
    if let Some(last) = y_bytes.last_mut() {
        *last &= 0x7f;
    }
    if !fe_canonical(&y_bytes) {
        return None;
    }
    let y = Fe::from_bytes(&y_bytes);
    let yy = y.square();
    let u = yy.sub(ONE);
    let v = yy.mul(k.d).add(ONE);
    // x = u·(uv)^((p−5)/8) is a square root of ±u/v.
    let mut x = u.mul(v).pow_p58().mul(u);
    let vxx = x.square().mul(v);
    if !vxx.sub(u).is_zero() {
        if !vxx.add(u).is_zero() {
            return None;
        }
        x = x.mul(k.sqrt_m1);
    }
    if x.is_negative() == sign {
        x = x.neg();
    }
    if sign && x.is_zero() {
        return None;
    }
    Some(P3 {
        x,
        y,
        z: ONE,
        t: x.mul(y),
    })
}

/// L, the order of the base point, little-endian: 2^252 + C.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];
/// L in 32-bit limbs; the low four are C = L − 2^252.
const L_LIMBS: [u32; 8] = [
    0x5cf5_d3ed,
    0x5812_631a,
    0xa2f7_9cd6,
    0x14de_f9de,
    0,
    0,
    0,
    0x1000_0000,
];

/// Whether the little-endian scalar is below L (RFC 8032's check on S).
fn scalar_canonical(s: &[u8; 32]) -> bool {
    for (a, b) in s.iter().rev().zip(L.iter().rev()) {
        if a != b {
            return a < b;
        }
    }
    false
}

/// A 512-bit little-endian value reduced mod L, one byte at a time from the
/// top: with r < L, t = 256·r + byte < 2^261; q = ⌊t / 2^252⌋ < 2^9, and
/// since 2^252 ≡ −C, t ≡ (t mod 2^252) − q·C, which lies in (−L, 2^252):
/// one addition of L at most brings it into [0, L).
fn reduce_512(wide: &[u8; 64]) -> [u8; 32] {
    let mut r = [0u32; 8];
    for &byte in wide.iter().rev() {
        let mut t = [0u32; 9];
        let mut carry_in = u32::from(byte);
        for (ti, ri) in t.iter_mut().zip(r.iter().chain(std::iter::once(&0))) {
            *ti = (ri << 8) | carry_in;
            carry_in = ri >> 24;
        }
        let [.., t7, t8] = &mut t;
        let q = i64::from((*t7 >> 28) | (*t8 << 4));
        *t7 &= 0x0fff_ffff;
        *t8 = 0;
        let mut borrow = 0i64;
        let c = L_LIMBS.iter().take(4).copied().chain(std::iter::repeat(0));
        for ((ri, ti), ci) in r.iter_mut().zip(t).zip(c) {
            let v = i64::from(ti) - q * i64::from(ci) + borrow;
            *ri = v as u32;
            borrow = v >> 32;
        }
        if borrow < 0 {
            let mut carry_out = 0u64;
            for (ri, li) in r.iter_mut().zip(L_LIMBS) {
                let v = u64::from(*ri) + u64::from(li) + carry_out;
                *ri = v as u32;
                carry_out = v >> 32;
            }
        }
    }
    let mut out = [0u8; 32];
    for (chunk, limb) in out.chunks_exact_mut(4).zip(r) {
        chunk.copy_from_slice(&limb.to_le_bytes());
    }
    out
}

/// The width-w non-adjacent form of a scalar below 2^255, least significant
/// digit first: every digit is 0 or odd with |digit| < 2^(w−1), and any w
/// consecutive digits hold at most one that is not 0.
fn naf(scalar: &[u8; 32], w: u32) -> [i8; 256] {
    let mut k = [0u64; 5];
    for (limb, chunk) in k.iter_mut().zip(scalar.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *limb = u64::from_le_bytes(b);
    }
    let window = 1i64 << w;
    let mut digits = [0i8; 256];
    for digit in digits.iter_mut() {
        let [k0, ..] = k;
        if k0 & 1 == 1 {
            let mut d = (k0 & (window as u64 - 1)) as i64;
            if d >= window / 2 {
                d -= window;
            }
            *digit = d as i8;
            // k −= d, with the borrow (d > 0) or carry (d < 0) rippling up
            if d > 0 {
                let mut borrow = d as u64;
                for limb in k.iter_mut() {
                    let (v, under) = limb.overflowing_sub(borrow);
                    *limb = v;
                    borrow = u64::from(under);
                }
            } else {
                let mut carry_in = d.unsigned_abs();
                for limb in k.iter_mut() {
                    let (v, over) = limb.overflowing_add(carry_in);
                    *limb = v;
                    carry_in = u64::from(over);
                }
            }
        }
        // k >>= 1
        let mut high = 0u64;
        for limb in k.iter_mut().rev() {
            let low = *limb & 1;
            *limb = (*limb >> 1) | (high << 63);
            high = low;
        }
    }
    digits
}

/// a·P + b·B, P given by its tables, B by the constants'.
/// Digit i of a scalar's NAF is digit i mod PART of part i / PART, so
/// a·P = Σ_j Σ_r d(PART·j + r)·2^r·(2^(PART·j)·P): one run of PART
/// doublings serves every part of both scalars.
fn double_scalar_mul(a: &[u8; 32], p_tables: &KeyTables, b: &[u8; 32], k: &Constants) -> P3 {
    fn step(acc: P1P1, digit: Option<&i8>, table: &[Affine]) -> P1P1 {
        let Some(&digit) = digit else {
            return acc;
        };
        match table.get(usize::from(digit.unsigned_abs() / 2)) {
            Some(q) if digit > 0 => acc.to_p3().add_affine(q),
            Some(q) if digit < 0 => acc.to_p3().sub_affine(q),
            _ => acc,
        }
    }
    let (a_naf, b_naf) = (naf(a, 5), naf(b, 8));
    let nonzero_at = |r: usize| {
        a_naf
            .chunks_exact(PART)
            .chain(b_naf.chunks_exact(PART))
            .any(|part| part.get(r).is_some_and(|d| *d != 0))
    };
    let Some(top) = (0..PART).rev().find(|r| nonzero_at(*r)) else {
        return P3::IDENTITY;
    };
    let mut r = P2::IDENTITY;
    let mut last = None;
    for pos in (0..=top).rev() {
        if let Some(acc) = last.take() {
            r = P1P1::to_p2(acc);
        }
        let mut t = r.dbl();
        for (part, table) in a_naf.chunks_exact(PART).zip(p_tables.iter()) {
            t = step(t, part.get(pos), table);
        }
        for (part, table) in b_naf.chunks_exact(PART).zip(k.base.iter()) {
            t = step(t, part.get(pos), table);
        }
        last = Some(t);
    }
    last.map_or(P3::IDENTITY, P1P1::to_p3)
}

/// For each base 2^(PART·j)·P of a key: P, 3P, …, 15P (width-5 NAF).
type KeyTables = [[Affine; 8]; SPLIT];

/// An Ed25519 public key, decoded and prepared when the key set loads.
#[derive(Clone)]
pub struct Ed25519Key {
    bytes: [u8; 32],
    /// The tables of −A; `None` when the encoding is not a point or the
    /// point has small order: such a key verifies nothing, as with
    /// ed25519-compact, but it stays in the set (its `kid` still names it).
    minus_a: Option<Box<KeyTables>>,
}

impl std::fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Key")
            .field("usable", &self.minus_a.is_some())
            .finish_non_exhaustive()
    }
}

impl Ed25519Key {
    pub fn new(bytes: [u8; 32]) -> Ed25519Key {
        let k = constants();
        let minus_a = decompress_negated_with(&bytes, k)
            .filter(|p| !p.has_small_order())
            .map(|p| odd_multiple_tables(p, k.d2));
        Ed25519Key { bytes, minus_a }
    }

    /// RFC 8032 §5.1.7 with ed25519-compact's rules (see the module's
    /// documentation).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = <&[u8; 64]>::try_from(signature) else {
            return false;
        };
        let mut r_bytes = [0u8; 32];
        let mut s = [0u8; 32];
        let (r_part, s_part) = signature.split_at(32);
        r_bytes.copy_from_slice(r_part);
        s.copy_from_slice(s_part);
        if !scalar_canonical(&s) {
            return false;
        }
        let Some(minus_a) = &self.minus_a else {
            return false;
        };
        let k = constants();
        let Some(minus_r) = decompress_negated_with(&r_bytes, k) else {
            return false;
        };
        if minus_r.has_small_order() {
            return false;
        }
        let mut hasher = Sha512::new();
        hasher.update(r_bytes);
        hasher.update(self.bytes);
        hasher.update(message);
        let h = reduce_512(&hasher.finalize());
        // S·B − h·A − R must be of small order (the cofactored equation).
        let sb_minus_ha = double_scalar_mul(&h, minus_a, &s, k);
        sb_minus_ha
            .add(&minus_r.to_cached(k.d2))
            .to_p3()
            .has_small_order()
    }
}

#[cfg(test)]
mod tests;
