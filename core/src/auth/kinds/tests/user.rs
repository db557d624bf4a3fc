//! User tokens: every algorithm, expiry and malformation, the algorithm
//! against the key, bad signatures, the limited-user and older forms.

use super::*;

#[test]
fn user_tokens_of_every_supported_algorithm_verify_and_are_cached() {
    let p = plan();
    let es = Es256::new(1, "es");
    let ed = Ed::new(2, "ed");
    let rs = Rsa::test_key("rs");
    let ps = Rsa::from_pem(backstage_proxy_mint::RSA2048_PEM, "ps", true);
    let set = key_set(&[&es, &ed, &rs, &ps]);
    let mut state = AuthState::new(&p);
    for key in [&es as &dyn Key, &ed, &rs, &ps] {
        let t = user_token(key, "user:default/jane", NOW - 10, NOW + 3600);
        let (o, fetched) = drive(&p, &mut state, &t, NOW, &[(AUTH_URL, set.clone())]);
        assert_eq!(
            ok(&o),
            Principal::User("user:default/jane".into()),
            "{}",
            key.alg()
        );
        assert!(fetched.len() <= 1);
        let before = state.cache_hits;
        assert_eq!(
            ok(&authenticate(&p, &mut state, &t, NOW * 1000)),
            Principal::User("user:default/jane".into())
        );
        assert_eq!(
            state.cache_hits,
            before + 1,
            "the second use is a cache hit"
        );
    }
    assert_eq!(state.cache_misses, 4);
}

#[test]
fn expired_and_malformed_user_tokens_cost_no_fetch() {
    let p = plan();
    let es = Es256::new(1, "es");
    for (t, cause) in [
        (
            user_token(&es, "user:default/jane", NOW - 100, NOW),
            "JWTExpired",
        ),
        (
            jws(
                &es,
                r#"{"typ":"vnd.backstage.user","alg":"ES256","kid":"es"}"#,
                &format!(r#"{{"sub":"u","iat":1,"exp":"{}"}}"#, NOW + 10),
            ),
            "must be a number",
        ),
        (
            jws(
                &es,
                r#"{"typ":"vnd.backstage.user","alg":"ES256","kid":"es"}"#,
                &format!(r#"{{"sub":"u","exp":{}}}"#, NOW + 10),
            ),
            "missing required \"iat\"",
        ),
        (
            jws(
                &es,
                r#"{"typ":"vnd.backstage.user","alg":"ES256","kid":"es"}"#,
                &format!(r#"{{"iat":1,"exp":{}}}"#, NOW + 10),
            ),
            "missing required \"sub\"",
        ),
        (
            jws(
                &es,
                r#"{"typ":"vnd.backstage.user","alg":"ES256","kid":"es"}"#,
                &format!(
                    r#"{{"sub":"u","iat":1,"exp":{},"nbf":{}}}"#,
                    NOW + 10,
                    NOW + 5
                ),
            ),
            "\"nbf\"",
        ),
    ] {
        let mut state = AuthState::new(&p);
        let (o, fetched) = drive(&p, &mut state, &t, NOW, &[]);
        let (status, reason, message) = denied(&o);
        assert_eq!((status, reason), (401, Reason::InvalidToken));
        assert!(
            message.starts_with("Invalid token; caused by ") && message.contains(cause),
            "{message}"
        );
        assert!(fetched.is_empty(), "no fetch for {message}");
    }
}

#[test]
fn algorithm_must_fit_the_key_and_none_or_hmac_are_refused() {
    let p = plan();
    let es = Es256::new(1, "es");
    let set = key_set(&[&es]);
    // alg none and HS256 (with the public key as HMAC secret) never verify
    for alg in ["none", "HS256"] {
        let t = format!(
            "{}.{}.",
            b64url(
                format!(r#"{{"typ":"vnd.backstage.user","alg":"{alg}","kid":"es"}}"#).as_bytes()
            ),
            b64url(format!(r#"{{"sub":"u","iat":1,"exp":{}}}"#, NOW + 10).as_bytes())
        );
        let mut state = AuthState::new(&p);
        let (o, fetched) = drive(&p, &mut state, &t, NOW, &[(AUTH_URL, set.clone())]);
        assert_eq!(denied(&o).1, Reason::InvalidToken);
        assert!(fetched.is_empty());
    }
    // an RS256 token whose kid names the EC key
    let rs = Rsa::test_key("es");
    let t = user_token(&rs, "u", NOW, NOW + 10);
    let mut state = AuthState::new(&p);
    let (o, _) = drive(&p, &mut state, &t, NOW, &[(AUTH_URL, set)]);
    assert!(denied(&o).2.contains("JWKSNoMatchingKey"));
}

#[test]
fn wrong_signature_is_invalid_token() {
    let p = plan();
    let real = Es256::new(1, "k");
    let forger = Es256::new(9, "k");
    let mut state = AuthState::new(&p);
    let t = user_token(&forger, "user:default/admin", NOW, NOW + 60);
    let (o, _) = drive(&p, &mut state, &t, NOW, &[(AUTH_URL, key_set(&[&real]))]);
    let (status, reason, message) = denied(&o);
    assert_eq!((status, reason), (401, Reason::InvalidToken));
    assert_eq!(
        message,
        "Invalid token; caused by JWSSignatureVerificationFailed: signature verification failed"
    );
    assert_eq!(state.tokens.len(), 0, "only valid tokens are cached");
}

#[test]
fn limited_user_tokens_are_verified_then_refused() {
    let p = plan();
    let es = Es256::new(1, "es");
    let mut state = AuthState::new(&p);
    let t = limited_user_token(&es, "user:default/jane", NOW, NOW + 60);
    let (o, _) = drive(&p, &mut state, &t, NOW, &[(AUTH_URL, key_set(&[&es]))]);
    assert_eq!(
        denied(&o),
        (
            401,
            Reason::IllegalLimitedUserToken,
            "Illegal limited user token".into()
        )
    );
}

#[test]
fn older_user_token_form_with_aud_backstage() {
    let p = plan();
    let es = Es256::new(1, "es");
    let set = key_set(&[&es]);
    let t = jws(
        &es,
        r#"{"alg":"ES256","kid":"es"}"#,
        &format!(
            r#"{{"sub":"user:default/old","aud":"backstage","exp":{}}}"#,
            NOW + 60
        ),
    );
    let mut state = AuthState::new(&p);
    assert_eq!(
        ok(&drive(&p, &mut state, &t, NOW, &[(AUTH_URL, set.clone())]).0),
        Principal::User("user:default/old".into())
    );
    let no_exp = jws(
        &es,
        r#"{"alg":"ES256","kid":"es"}"#,
        r#"{"sub":"user:default/old","aud":"backstage"}"#,
    );
    assert_eq!(
        denied(&drive(&p, &mut state, &no_exp, NOW, &[]).0).2,
        "User token is missing expiration"
    );
    let no_sub = jws(
        &es,
        r#"{"alg":"ES256","kid":"es"}"#,
        &format!(r#"{{"aud":"backstage","exp":{}}}"#, NOW + 60),
    );
    assert_eq!(
        denied(&drive(&p, &mut state, &no_sub, NOW, &[]).0).2,
        "No user sub found in token"
    );
}
