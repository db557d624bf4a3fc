//! RSA signature verification for RS256/384/512 (PKCS#1 v1.5) and
//! PS256/384/512 (PSS, MGF1 with the same hash, salt as long as the hash:
//! RFC 7518 §3.5), public key only.
//!
//! Why our own: jwt-simple's pure-Rust RSA rebuilds the key and its
//! Montgomery parameters on every verification and runs a constant-time
//! exponentiation meant for private keys; in Envoy's V8 that took ~1.65 ms
//! per RS256 token. Here the Montgomery constants are computed once, when
//! the key set is loaded, and a verification is 17 Montgomery products
//! (e = 65537) on 32-bit limbs, which Wasm multiplies natively. Everything
//! in a verification is public (key, signature, message), so nothing here
//! needs to be constant-time.
//!
//! The encodings are checked by rebuilding the expected block (PKCS#1 v1.5,
//! no ASN.1 parsing) and by EMSA-PSS-VERIFY of RFC 8017 §9.1.2. Tested
//! against Wycheproof's RSA vectors (src/auth/rsa_tests.rs).

use hmac_sha256::Hash as Sha256;
use hmac_sha512::sha384::Hash as Sha384;
use hmac_sha512::Hash as Sha512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    fn len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            HashAlg::Sha256 => {
                let mut h = Sha256::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
            HashAlg::Sha384 => {
                let mut h = Sha384::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
            HashAlg::Sha512 => {
                let mut h = Sha512::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
        }
    }

    /// DER `DigestInfo` prefix (RFC 8017 §9.2, note 1).
    fn digest_info(self) -> &'static [u8] {
        match self {
            HashAlg::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlg::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlg::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// A public key with its Montgomery constants.
#[derive(Clone)]
pub struct RsaPublicKey {
    /// Modulus, little-endian 32-bit limbs (no leading zero limb).
    n: Vec<u32>,
    /// -n⁻¹ mod 2³².
    n0inv: u32,
    /// R² mod n, R = 2^(32·limbs).
    rr: Vec<u32>,
    e: u32,
    /// Modulus length in bits and bytes.
    bits: usize,
    k: usize,
}

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaPublicKey({} bits, e={})", self.bits, self.e)
    }
}

/// Big-endian bytes to little-endian limbs, leading zeros dropped.
fn limbs(be: &[u8]) -> Vec<u32> {
    let start = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    let be = be.get(start..).unwrap_or_default();
    let mut out = Vec::with_capacity(be.len().div_ceil(4));
    for chunk in be.rchunks(4) {
        let mut w = 0u32;
        for &b in chunk {
            w = (w << 8) | u32::from(b);
        }
        out.push(w);
    }
    out
}

/// a ≥ b, equal lengths.
fn geq(a: &[u32], b: &[u32]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x > y;
        }
    }
    true
}

/// a -= b, equal lengths; returns the borrow.
fn sub_in_place(a: &mut [u32], b: &[u32]) -> bool {
    let mut borrow = 0u64;
    for (x, y) in a.iter_mut().zip(b) {
        let d = u64::from(*x)
            .wrapping_sub(u64::from(*y))
            .wrapping_sub(borrow);
        *x = d as u32;
        borrow = (d >> 63) & 1;
    }
    borrow != 0
}

impl RsaPublicKey {
    /// From the JWK's `n` and `e` (big-endian bytes). `None` for an even or
    /// tiny modulus or an exponent that is not a small odd number; key-size
    /// policy is the caller's.
    pub fn new(n: &[u8], e: &[u8]) -> Option<RsaPublicKey> {
        let n = limbs(n);
        let e_limbs = limbs(e);
        let e = match e_limbs.as_slice() {
            [e] if *e >= 3 && e % 2 == 1 => *e,
            _ => return None,
        };
        let n0 = *n.first()?;
        if n.len() < 2 || n0 % 2 == 0 {
            return None;
        }
        // n0⁻¹ mod 2³² by Newton's iteration (each step doubles the bits).
        let mut inv: u32 = 1;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
        }
        let top = *n.last()?;
        let bits = n.len() * 32 - top.leading_zeros() as usize;
        // R² mod n, once per key: with 32·limbs = j·2^q (j odd), double 1
        // up to R·2^j mod n, then square q times in Montgomery form
        // (mont(R·2^a, R·2^a) = R·2^(2a)), ending at R·2^(32·limbs) = R².
        let s = n.len();
        let q = (32 * s).trailing_zeros();
        let j = (32 * s) >> q;
        let mut x = vec![0u32; s];
        *x.first_mut()? = 1;
        for _ in 0..(32 * s + j) {
            let mut carry = 0u32;
            for w in x.iter_mut() {
                let next = *w >> 31;
                *w = (*w << 1) | carry;
                carry = next;
            }
            if carry == 1 || geq(&x, &n) {
                sub_in_place(&mut x, &n);
            }
        }
        let mut key = RsaPublicKey {
            n0inv: inv.wrapping_neg(),
            rr: Vec::new(),
            e,
            bits,
            k: bits.div_ceil(8),
            n,
        };
        let mut t = vec![0u32; s + 2];
        let mut y = vec![0u32; s];
        for _ in 0..q {
            key.mont_mul(&x, &x, &mut y, &mut t);
            std::mem::swap(&mut x, &mut y);
        }
        key.rr = x;
        Some(key)
    }

    pub fn bits(&self) -> usize {
        self.bits
    }

    /// a·b·R⁻¹ mod n (CIOS), inputs < n, result < n.
    fn mont_mul(&self, a: &[u32], b: &[u32], out: &mut [u32], t: &mut [u32]) {
        let s = self.n.len();
        t.iter_mut().for_each(|w| *w = 0);
        for &bi in b.iter().take(s) {
            let mut c = 0u64;
            for (tj, &aj) in t.iter_mut().zip(a) {
                let x = u64::from(*tj) + u64::from(aj) * u64::from(bi) + c;
                *tj = x as u32;
                c = x >> 32;
            }
            let (Some(&ts), Some(&ts1)) = (t.get(s), t.get(s + 1)) else {
                return;
            };
            let x = u64::from(ts) + c;
            let (ts, ts1) = (x as u32, ts1.wrapping_add((x >> 32) as u32));
            let t0 = t.first().copied().unwrap_or(0);
            let m = t0.wrapping_mul(self.n0inv);
            let n0 = self.n.first().copied().unwrap_or(0);
            let mut c = (u64::from(t0) + u64::from(m) * u64::from(n0)) >> 32;
            for j in 1..s {
                let (Some(&tj), Some(&nj)) = (t.get(j), self.n.get(j)) else {
                    return;
                };
                let x = u64::from(tj) + u64::from(m) * u64::from(nj) + c;
                if let Some(w) = t.get_mut(j - 1) {
                    *w = x as u32;
                }
                c = x >> 32;
            }
            let x = u64::from(ts) + c;
            if let Some(w) = t.get_mut(s - 1) {
                *w = x as u32;
            }
            if let Some(w) = t.get_mut(s) {
                *w = ts1.wrapping_add((x >> 32) as u32);
            }
            if let Some(w) = t.get_mut(s + 1) {
                *w = 0;
            }
        }
        // t < 2n: subtract n once if t ≥ n
        let high = t.get(s).copied().unwrap_or(0);
        if let Some(low) = t.get(..s) {
            out.copy_from_slice(low);
        }
        if high != 0 || geq(out, &self.n) {
            sub_in_place(out, &self.n);
        }
    }

    /// sig^e mod n as `k` big-endian bytes; `None` if sig is not k bytes or
    /// not below n (RFC 8017 §5.2.2, §8.2.2 step 1). Public so that the
    /// `rsa` fuzz target can compare it with an independent big-integer
    /// library.
    pub fn public_op(&self, sig: &[u8]) -> Option<Vec<u8>> {
        if sig.len() != self.k {
            return None;
        }
        let s = self.n.len();
        let mut m = limbs(sig);
        if m.len() > s {
            return None;
        }
        m.resize(s, 0);
        if geq(&m, &self.n) {
            return None;
        }
        let mut t = vec![0u32; s + 2];
        let mut base = vec![0u32; s];
        self.mont_mul(&m, &self.rr, &mut base, &mut t); // m·R
        let mut acc = base.clone();
        let mut tmp = vec![0u32; s];
        let top = 31 - self.e.leading_zeros();
        for i in (0..top).rev() {
            self.mont_mul(&acc, &acc, &mut tmp, &mut t);
            std::mem::swap(&mut acc, &mut tmp);
            if (self.e >> i) & 1 == 1 {
                self.mont_mul(&acc, &base, &mut tmp, &mut t);
                std::mem::swap(&mut acc, &mut tmp);
            }
        }
        let mut one = vec![0u32; s];
        *one.first_mut()? = 1;
        self.mont_mul(&acc, &one, &mut tmp, &mut t); // out of Montgomery form
        let mut out = vec![0u8; self.k];
        for (i, byte) in out.iter_mut().rev().enumerate() {
            let limb = tmp.get(i / 4).copied().unwrap_or(0);
            *byte = (limb >> (8 * (i % 4))) as u8;
        }
        Some(out)
    }

    /// RSASSA-PKCS1-v1_5 verification (RFC 8017 §8.2.2).
    pub fn verify_pkcs1v15(&self, hash: HashAlg, msg: &[u8], sig: &[u8]) -> bool {
        let Some(em) = self.public_op(sig) else {
            return false;
        };
        let prefix = hash.digest_info();
        let t_len = prefix.len() + hash.len();
        if self.k < t_len + 11 {
            return false;
        }
        let mut expected = Vec::with_capacity(self.k);
        expected.extend_from_slice(&[0x00, 0x01]);
        expected.resize(self.k - t_len - 1, 0xff);
        expected.push(0x00);
        expected.extend_from_slice(prefix);
        expected.extend_from_slice(&hash.digest(&[msg]));
        em == expected
    }

    /// RSASSA-PSS verification (RFC 8017 §8.1.2, §9.1.2) with MGF1 over
    /// `hash` and a salt of `hash`'s length.
    pub fn verify_pss(&self, hash: HashAlg, msg: &[u8], sig: &[u8]) -> bool {
        let Some(m) = self.public_op(sig) else {
            return false;
        };
        let em_bits = self.bits - 1;
        let em_len = em_bits.div_ceil(8);
        // I2OSP(m, emLen): the k-byte form must have k − emLen zero bytes
        let Some((zeros, em)) = m.split_at_checked(self.k - em_len) else {
            return false;
        };
        if zeros.iter().any(|&b| b != 0) {
            return false;
        }
        let h_len = hash.len();
        let s_len = h_len;
        if em_len < h_len + s_len + 2 || em.last() != Some(&0xbc) {
            return false;
        }
        let db_len = em_len - h_len - 1;
        let (Some(masked_db), Some(h)) = (em.get(..db_len), em.get(db_len..em_len - 1)) else {
            return false;
        };
        let unused_bits = 8 * em_len - em_bits;
        let top_mask = 0xffu8.checked_shr(unused_bits as u32).unwrap_or(0);
        if masked_db.first().is_some_and(|&b| b & !top_mask != 0) {
            return false;
        }
        // MGF1(H, dbLen)
        let mut db = Vec::with_capacity(db_len + h_len);
        let mut counter: u32 = 0;
        while db.len() < db_len {
            db.extend_from_slice(&hash.digest(&[h, &counter.to_be_bytes()]));
            counter += 1;
        }
        db.truncate(db_len);
        for (d, &x) in db.iter_mut().zip(masked_db) {
            *d ^= x;
        }
        if let Some(first) = db.first_mut() {
            *first &= top_mask;
        }
        let ps_len = em_len - h_len - s_len - 2;
        let (Some(ps), Some(&one), Some(salt)) =
            (db.get(..ps_len), db.get(ps_len), db.get(ps_len + 1..))
        else {
            return false;
        };
        if ps.iter().any(|&b| b != 0) || one != 0x01 {
            return false;
        }
        let m_hash = hash.digest(&[msg]);
        hash.digest(&[&[0u8; 8][..], &m_hash, salt]) == h
    }
}

#[cfg(test)]
mod tests;
