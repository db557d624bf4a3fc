//! Our Ed25519 verifier (src/auth/ed25519.rs) against ed25519-compact, the
//! verifier jwt-simple uses and whose answers ours must keep. Two shapes of
//! input: raw (key, signature and message straight from the fuzzer, which
//! explores the refusals: non-canonical S and y, points off the curve,
//! small orders), and signed (a key pair from the fuzzer's seed signs the
//! message, then the fuzzer's bytes are XORed into the signature or the
//! key, which explores near-valid signatures).
#![no_main]
use backstage_proxy_core::crypto::ed25519::Ed25519Key;
use libfuzzer_sys::fuzz_target;

fn compact(pk: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    ed25519_compact::Signature::from_slice(sig)
        .is_ok_and(|s| ed25519_compact::PublicKey::new(*pk).verify(msg, &s).is_ok())
}

fn check(pk: &[u8; 32], msg: &[u8], sig: &[u8]) {
    let ours = Ed25519Key::new(*pk).verify(msg, sig);
    assert_eq!(ours, compact(pk, msg, sig), "verdicts differ");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if rest.len() < 32 {
        return;
    }
    let (head, rest) = rest.split_at(32);
    let mut pk = [0u8; 32];
    pk.copy_from_slice(head);
    if mode & 1 == 0 {
        // raw: [pk 32] [sig 64] [msg rest]
        let (sig, msg) = rest.split_at(rest.len().min(64));
        check(&pk, msg, sig);
        return;
    }
    // signed: [seed 32] [xor mask for sig ‖ pk: 96] [msg rest]
    // (ed25519-compact refuses the all-zero seed)
    let Ok(kp) = ed25519_compact::KeyPair::try_from_seed(ed25519_compact::Seed::new(pk)) else {
        return;
    };
    let (mask, msg) = rest.split_at(rest.len().min(96));
    let mut sig = *kp.sk.sign(msg, None);
    let mut key = *kp.pk;
    assert!(Ed25519Key::new(key).verify(msg, &sig), "a valid signature was refused");
    for (b, m) in sig.iter_mut().chain(key.iter_mut()).zip(mask) {
        *b ^= m;
    }
    check(&key, msg, &sig);
});
