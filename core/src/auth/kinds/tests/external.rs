//! Tokens of the external `jwks` entries.

use super::*;

#[test]
fn external_jwks_entries() {
    let p = plan();
    let idp = Rsa::test_key("idp-1");
    let other = Ed::new(7, "o");
    let sets = [
        (IDP_URL, key_set(&[&idp])),
        ("https://other.example/jwks", key_set(&[&other])),
    ];
    let mut state = AuthState::new(&p);
    let t = external_token(
        &idp,
        "https://idp.example",
        "edge-gateway",
        "robot",
        NOW + 60,
    );
    let (o, fetched) = drive(&p, &mut state, &t, NOW, &sets);
    assert_eq!(ok(&o), Principal::External("external:idp:robot".into()));
    assert_eq!(fetched, [IDP_URL]);
    // restrictions of the entry that verified it apply
    let t = external_token(&other, "https://other.example", "x", "bot", NOW + 60);
    let (o, _) = drive(&p, &mut state, &t, NOW, &sets);
    assert_eq!(denied(&o).0, 403);
    // wrong issuer or audience: no fetch, Illegal token
    let mut fresh = AuthState::new(&p);
    for t in [
        external_token(
            &idp,
            "https://evil.example",
            "edge-gateway",
            "robot",
            NOW + 60,
        ),
        external_token(&idp, "https://idp.example", "other-aud", "robot", NOW + 60),
        external_token(
            &idp,
            "https://idp.example",
            "edge-gateway",
            "robot",
            NOW - 1,
        ),
    ] {
        let (o, fetched) = drive(&p, &mut fresh, &t, NOW, &sets);
        assert_eq!(
            denied(&o),
            (401, Reason::IllegalToken, "Illegal token".into())
        );
        assert!(fetched.is_empty(), "{fetched:?}");
    }
    // Backstage reads any token with aud "backstage" as a user token, even an IdP's.
    // (here its verification needs the user key set, which is not served)
    let t = external_token(&idp, "https://idp.example", "backstage", "robot", NOW + 60);
    let (o, fetched) = drive(&p, &mut fresh, &t, NOW, &sets);
    assert_eq!(denied(&o).1, Reason::KeySetUnavailable);
    assert_eq!(fetched, [AUTH_URL]);
    // the algorithm list of the second entry excludes RS256
    let t = external_token(&idp, "https://other.example", "x", "bot", NOW + 60);
    assert_eq!(
        denied(&drive(&p, &mut fresh, &t, NOW, &sets).0).1,
        Reason::IllegalToken
    );
}

/// docs/behaviour.md#deviations-from-backstage: every JWT here must expire. Backstage accepts an external
/// `jwks` token without `exp` (and would cache it until its key set
/// changes); the filter refuses it, with no fetch, whatever the algorithm.
#[test]
fn external_tokens_without_exp_are_refused() {
    let p = plan();
    let idp = Rsa::test_key("idp-1");
    let sets = [(IDP_URL, key_set(&[&idp]))];
    let header = r#"{"alg":"RS256","kid":"idp-1","typ":"JWT"}"#;
    for payload in [
        r#"{"iss":"https://idp.example","aud":"edge-gateway","sub":"robot"}"#,
        r#"{"iss":"https://idp.example","aud":"edge-gateway","sub":"robot","exp":null}"#,
        r#"{"iss":"https://idp.example","aud":"edge-gateway","sub":"robot","nbf":1}"#,
    ] {
        let mut fresh = AuthState::new(&p);
        let t = jws(&idp, header, payload);
        let (o, fetched) = drive(&p, &mut fresh, &t, NOW, &sets);
        assert_eq!(denied(&o).0, 401, "{payload}");
        assert!(fetched.is_empty(), "{payload}: {fetched:?}");
    }
    let t = jws(
        &idp,
        header,
        &format!(
            r#"{{"iss":"https://idp.example","aud":"edge-gateway","sub":"robot","exp":{}}}"#,
            NOW + 60
        ),
    );
    let (o, _) = drive(&p, &mut AuthState::new(&p), &t, NOW, &sets);
    assert_eq!(ok(&o), Principal::External("external:idp:robot".into()));
}
