//! Every token kind against every way of not being signed by the right key.

use super::*;

/// Issue: making a plugin token's failed signature check count as success
/// failed no test. Every token kind, each way of not being signed by the
/// right key: a foreign key under the right `kid`, garbage, no signature,
/// `alg: none`, and the key-confusion `HS256` keyed with the public key.
/// None authenticates, none is cached, and the genuine token still works.
#[test]
fn every_token_kind_refuses_every_bad_signature() {
    let p = plan();
    let cat = Es256::new(5, "cat-key");
    let auth = Es256::new(1, "auth-key");
    let auth_rsa = Rsa::test_key("auth-rsa");
    let auth_ed = Ed::new(3, "auth-ed");
    let idp = Rsa::test_key("idp-1");
    let sets = [
        (CATALOG_URL, key_set(&[&cat])),
        (AUTH_URL, key_set(&[&auth, &auth_rsa, &auth_ed])),
        (IDP_URL, key_set(&[&idp])),
    ];
    let obo = limited_user_token(&auth, "user:default/jane", NOW, NOW + 600);
    let genuine = [
        (
            "plugin",
            plugin_token(&cat, "catalog", "proxy", NOW, NOW + 600, None),
        ),
        (
            "plugin obo",
            plugin_token(&cat, "catalog", "proxy", NOW, NOW + 600, Some(&obo)),
        ),
        (
            "user ES256",
            user_token(&auth, "user:default/u", NOW, NOW + 600),
        ),
        (
            "user RS256",
            user_token(&auth_rsa, "user:default/u", NOW, NOW + 600),
        ),
        (
            "user EdDSA",
            user_token(&auth_ed, "user:default/u", NOW, NOW + 600),
        ),
        (
            "external",
            external_token(
                &idp,
                "https://idp.example",
                "edge-gateway",
                "robot",
                NOW + 600,
            ),
        ),
    ];
    let foreign: [(&str, &dyn Key); 6] = [
        ("plugin", &Es256::new(9, "cat-key")),
        ("plugin obo", &Es256::new(9, "cat-key")),
        ("user ES256", &Es256::new(9, "auth-key")),
        ("user RS256", &Rsa::weak_key("auth-rsa")),
        ("user EdDSA", &Ed::new(9, "auth-ed")),
        ("external", &Rsa::weak_key("idp-1")),
    ];
    for ((kind, token), (_, forger)) in genuine.iter().zip(foreign) {
        let (head_b64, rest) = token.split_once('.').unwrap();
        let (payload_b64, sig_b64) = rest.split_once('.').unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&crate::base64::decode_jws(head_b64).unwrap()).unwrap();
        let header_s = header.to_string();
        let payload = String::from_utf8(crate::base64::decode_jws(payload_b64).unwrap()).unwrap();
        let mut none = header.clone();
        none["alg"] = "none".into();
        let mut hs = header.clone();
        hs["alg"] = "HS256".into();
        let pub_key_json = serde_json::to_vec(&forger.jwk()).unwrap();
        let mut flipped = crate::base64::decode_jws(sig_b64).unwrap();
        flipped[0] ^= 0x80;
        let bad = [
            ("foreign key, right kid", jws(forger, &header_s, &payload)),
            (
                "garbage",
                format!("{head_b64}.{payload_b64}.{}", b64url(&[7u8; 64])),
            ),
            (
                "one bit",
                format!("{head_b64}.{payload_b64}.{}", b64url(&flipped)),
            ),
            ("no signature", format!("{head_b64}.{payload_b64}.")),
            (
                "alg none",
                format!("{}.{payload_b64}.", b64url(none.to_string().as_bytes())),
            ),
            (
                "HS256 confusion",
                hs256_raw(&hs.to_string(), &payload, &pub_key_json),
            ),
        ];
        let mut state = AuthState::new(&p);
        for (how, t) in &bad {
            for round in 0..2 {
                let (o, _) = drive(&p, &mut state, t, NOW, &sets);
                assert!(
                    matches!(o, Outcome::Denied(_)),
                    "{kind}, {how}, round {round}: {o:?}"
                );
            }
        }
        let (o, _) = drive(&p, &mut state, token, NOW, &sets);
        assert!(matches!(o, Outcome::Authenticated(..)), "{kind}: {o:?}");
    }
}
