//! Our RSA public operation (Montgomery products on 32-bit limbs, R² mod n
//! computed at key load) against num-bigint-dig's `modpow` on arbitrary
//! odd moduli, exponents and signatures. Small moduli are allowed here so
//! that the fuzzer reaches carry and reduction edge cases quickly; the key
//! size policy (2048-4096 bits) is jwt-simple's, outside this function.
#![no_main]
use backstage_proxy_core::crypto::rsa::RsaPublicKey;
use libfuzzer_sys::fuzz_target;
use num_bigint_dig::BigUint;

fuzz_target!(|data: &[u8]| {
    // [n_len] [e: 4 bytes] [n: n_len bytes] [sig: rest]
    let Some((&n_len, rest)) = data.split_first() else { return };
    let n_len = usize::from(n_len % 64) + 1;
    if rest.len() < 4 + n_len {
        return;
    }
    let (e, rest) = rest.split_at(4);
    let (n, sig) = rest.split_at(n_len);
    let Some(key) = RsaPublicKey::new(n, e) else {
        // refused: even or single-limb modulus, or an exponent that is not
        // an odd number ≥ 3 in 32 bits
        let n_big = BigUint::from_bytes_be(n);
        let e_big = BigUint::from_bytes_be(e);
        let odd_e = e_big >= BigUint::from(3u32) && e.last().is_some_and(|b| b & 1 == 1);
        let ok_n = n.last().is_some_and(|b| b & 1 == 1) && n_big.bits() > 32;
        assert!(!(odd_e && ok_n), "a valid key was refused");
        return;
    };
    let n_big = BigUint::from_bytes_be(n);
    let k = (n_big.bits() + 7) / 8;
    assert_eq!(key.bits(), n_big.bits());
    let s_big = BigUint::from_bytes_be(sig);
    let ours = key.public_op(sig);
    if sig.len() != k || s_big >= n_big {
        assert!(ours.is_none(), "accepted a signature of the wrong length or ≥ n");
        return;
    }
    let Some(ours) = ours else { panic!("refused a signature below n") };
    let want = s_big.modpow(&BigUint::from_bytes_be(e), &n_big).to_bytes_be();
    let mut padded = vec![0u8; k - want.len()];
    padded.extend_from_slice(&want);
    assert_eq!(ours, padded);
});
