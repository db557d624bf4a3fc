use super::*;
use crate::base64::encode_url_nopad;
use crate::config::parse;
use crate::permission::Standing;

const SECRET: &[u8] = b"legacy-secret-bytes-0123456789ab";
const OTHER: &[u8] = b"another-secret";

fn plan() -> Plan {
    let cfg = format!(
        r#"{{"backend":{{"auth":{{
            "keys":[{{"secret":"{}"}}],
            "externalAccess":[
              {{"type":"static","options":{{"token":"static-token-abc","subject":"ci"}}}},
              {{"type":"static","options":{{"token":"restricted-token","subject":"bot"}},"accessRestrictions":[{{"plugin":"catalog"}},{{"plugin":"scaffolder"}}]}},
              {{"type":"static","options":{{"token":"proxy-allowed-tok","subject":"bot2"}},"accessRestrictions":[{{"plugin":"proxy"}}]}},
              {{"type":"legacy","options":{{"secret":"{}","subject":"cron"}},"accessRestrictions":[{{"plugin":"catalog"}}]}}
            ]}}}}}}"#,
        encode_url_nopad(SECRET),
        encode_url_nopad(OTHER),
    );
    parse(cfg.as_bytes(), &|_| None).unwrap()
}

/// An HS256 JWS with exactly this header and payload, signed independently
/// of the code under test.
fn hs256(header: &str, payload: &str, key: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        encode_url_nopad(header.as_bytes()),
        encode_url_nopad(payload.as_bytes())
    );
    let sig = hmac_sha256::HMAC::mac(input.as_bytes(), key);
    format!("{input}.{}", encode_url_nopad(&sig))
}

const NOW: u64 = 1_800_000_000;

fn legacy(payload: &str) -> String {
    hs256(r#"{"alg":"HS256"}"#, payload, SECRET)
}

/// Authenticates with a fresh per-VM state (static and legacy tokens need
/// no key set, so nothing is ever pending here).
fn authenticate(p: &Plan, token: &str, now: u64) -> Result<Principal, Denial> {
    let mut state = AuthState::new(p);
    match super::authenticate(p, &mut state, token, now * 1000) {
        Outcome::Authenticated(pr, ..) => Ok(pr),
        Outcome::Denied(d) => Err(d),
        Outcome::Pending(s) => panic!("unexpected key-set fetch for {}", s.url),
    }
}

fn denial(r: Result<Principal, Denial>) -> (u16, Reason, String) {
    let d = r.unwrap_err();
    (d.status, d.reason, d.message)
}

#[test]
fn static_tokens_match_exactly() {
    let p = plan();
    assert_eq!(
        authenticate(&p, "static-token-abc", NOW),
        Ok(Principal::External("ci".into()))
    );
    for near in [
        "static-token-ab",
        "static-token-abcd",
        "Static-token-abc",
        "static-token-abC",
        "static",
    ] {
        assert_eq!(
            denial(authenticate(&p, near, NOW)).1,
            Reason::IllegalToken,
            "{near}"
        );
    }
}

#[test]
fn access_restrictions_answer_403_with_backstages_message() {
    let p = plan();
    let (status, reason, message) = denial(authenticate(&p, "restricted-token", NOW));
    assert_eq!((status, reason), (403, Reason::AccessRestricted));
    assert_eq!(
        message,
        "This token's access is restricted to plugin(s) 'catalog', 'scaffolder'"
    );
    assert_eq!(
        authenticate(&p, "proxy-allowed-tok", NOW),
        Ok(Principal::External("bot2".into()))
    );
}

#[test]
fn legacy_tokens_verify_against_each_secret() {
    let p = plan();
    let exp = NOW + 3600;
    let t = legacy(&format!(r#"{{"sub":"backstage-server","exp":{exp}}}"#));
    assert_eq!(
        authenticate(&p, &t, NOW),
        Ok(Principal::External("external:backstage-plugin".into()))
    );
    // typ is irrelevant for legacy tokens
    let t = hs256(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &format!(r#"{{"sub":"backstage-server","exp":{exp}}}"#),
        SECRET,
    );
    assert!(authenticate(&p, &t, NOW).is_ok());
    // second secret: its own subject and its own restrictions
    let t = hs256(
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"sub":"backstage-server","exp":{exp}}}"#),
        OTHER,
    );
    assert_eq!(denial(authenticate(&p, &t, NOW)).0, 403);
}

#[test]
fn legacy_duck_typing_falls_through_to_illegal_token() {
    let p = plan();
    let exp = NOW + 3600;
    for t in [
        hs256(
            r#"{"alg":"HS256"}"#,
            &format!(r#"{{"sub":"backstage-server","exp":{exp}}}"#),
            b"wrong-secret",
        ),
        legacy(&format!(r#"{{"sub":"someone-else","exp":{exp}}}"#)),
        legacy(&format!(
            r#"{{"sub":"backstage-server","aud":"x","exp":{exp}}}"#
        )),
        hs256(
            r#"{"alg":"HS384"}"#,
            &format!(r#"{{"sub":"backstage-server","exp":{exp}}}"#),
            SECRET,
        ),
        hs256(
            r#"{"alg":"none"}"#,
            &format!(r#"{{"sub":"backstage-server","exp":{exp}}}"#),
            SECRET,
        ),
    ] {
        assert_eq!(
            denial(authenticate(&p, &t, NOW)),
            (401, Reason::IllegalToken, "Illegal token".into()),
            "{t}"
        );
    }
    // signature stripped
    let t = legacy(&format!(r#"{{"sub":"backstage-server","exp":{exp}}}"#));
    let stripped = format!("{}.", t.rsplit_once('.').unwrap().0);
    assert_eq!(
        denial(authenticate(&p, &stripped, NOW)).1,
        Reason::IllegalToken
    );
    // a falsy aud does not disqualify (JavaScript truthiness)
    let t = legacy(&format!(
        r#"{{"sub":"backstage-server","aud":"","exp":{exp}}}"#
    ));
    assert!(authenticate(&p, &t, NOW).is_ok());
}

#[test]
fn legacy_claims_expired_missing_or_malformed_are_401_invalid_token() {
    let p = plan();
    for payload in [
        format!(r#"{{"sub":"backstage-server","exp":{NOW}}}"#),
        format!(r#"{{"sub":"backstage-server","exp":{}}}"#, NOW - 1),
        r#"{"sub":"backstage-server"}"#.to_string(),
        r#"{"sub":"backstage-server","exp":"9999999999"}"#.to_string(),
        format!(
            r#"{{"sub":"backstage-server","exp":{},"nbf":{}}}"#,
            NOW + 60,
            NOW + 1
        ),
    ] {
        let t = legacy(&payload);
        assert_eq!(
            denial(authenticate(&p, &t, NOW)),
            (401, Reason::InvalidToken, "Invalid token".into()),
            "{payload}"
        );
    }
    let t = hs256(
        r#"{"alg":"HS256","crit":["exp"]}"#,
        &format!(r#"{{"sub":"backstage-server","exp":{}}}"#, NOW + 5),
        SECRET,
    );
    assert_eq!(denial(authenticate(&p, &t, NOW)).1, Reason::InvalidToken);
}

#[test]
fn clock_skew_applies_to_exp() {
    let mut p = plan();
    let t = legacy(&format!(r#"{{"sub":"backstage-server","exp":{NOW}}}"#));
    assert!(authenticate(&p, &t, NOW).is_err());
    p.gateway.clock_skew_seconds = 1;
    assert!(authenticate(&p, &t, NOW).is_ok());
    assert!(authenticate(&p, &t, NOW + 1).is_err());
}

#[test]
fn user_and_plugin_shaped_tokens_are_claimed_before_static_and_legacy() {
    assert_eq!(
        classify(&hs256(
            r#"{"alg":"ES256","typ":"vnd.backstage.plugin"}"#,
            "{}",
            b"k"
        )),
        Kind::Plugin
    );
    assert_eq!(
        classify(&hs256(
            r#"{"alg":"ES256","typ":"vnd.backstage.user"}"#,
            "{}",
            b"k"
        )),
        Kind::User
    );
    assert_eq!(
        classify(&hs256(
            r#"{"alg":"ES256","typ":"vnd.backstage.limited-user"}"#,
            "{}",
            b"k"
        )),
        Kind::User
    );
    assert_eq!(
        classify(&hs256(r#"{"alg":"ES256"}"#, r#"{"aud":"backstage"}"#, b"k")),
        Kind::User
    );
    assert_eq!(
        classify(&hs256(
            r#"{"alg":"ES256"}"#,
            r#"{"aud":["backstage"]}"#,
            b"k"
        )),
        Kind::External
    );
    assert_eq!(
        classify(&hs256(
            r#"{"alg":"ES256","typ":"VND.BACKSTAGE.USER"}"#,
            "{}",
            b"k"
        )),
        Kind::External
    );
    assert_eq!(classify("static-token-abc"), Kind::External);
    // A legacy-looking token that also says aud=backstage is a user token: it
    // needs the user key set (none here: no backend is configured).
    let p = plan();
    let t = legacy(&format!(
        r#"{{"sub":"backstage-server","aud":"backstage","exp":{}}}"#,
        NOW + 10
    ));
    assert_eq!(
        denial(authenticate(&p, &t, NOW)).1,
        Reason::KeySetUnavailable
    );
}

#[test]
fn messages_never_reflect_the_token() {
    let p = plan();
    for t in [
        "static-token-abcX",
        &legacy(r#"{"sub":"backstage-server"}"#),
    ] {
        let (_, _, message) = denial(authenticate(&p, t, NOW));
        assert!(!message.contains(t));
    }
}

#[test]
fn ct_eq_compares_whole_values() {
    assert!(ct_eq(b"abc", b"abc"));
    assert!(!ct_eq(b"abc", b"abd"));
    assert!(!ct_eq(b"abc", b"abcd"));
    assert!(!ct_eq(b"", b"a"));
    assert!(ct_eq(b"", b""));
}

/// Issue: repeated legacy tokens were verified again on every request and
/// static tokens matched against every entry each time. Both are now kept in
/// the verified-token cache: the second use is a lookup, restrictions still
/// apply on every use, a legacy token still expires at its `exp`, and what
/// failed is never cached.
#[test]
fn static_and_legacy_tokens_are_cached_like_verified_jwts() {
    let p = plan();
    let mut state = AuthState::new(&p);
    let mut run = |token: &str, now: u64| super::authenticate(&p, &mut state, token, now * 1000);
    let good_legacy = legacy(&format!(
        r#"{{"sub":"backstage-server","exp":{}}}"#,
        NOW + 60
    ));
    let restricted_legacy = hs256(
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"sub":"backstage-server","exp":{}}}"#, NOW + 60),
        OTHER,
    );
    for round in 0..3 {
        assert_eq!(
            run("static-token-abc", NOW),
            Outcome::Authenticated(
                Principal::External("ci".into()),
                None,
                Standing::Service(None)
            ),
            "{round}"
        );
        assert!(
            matches!(run("restricted-token", NOW), Outcome::Denied(d) if d.status == 403),
            "{round}"
        );
        assert_eq!(
            run(&good_legacy, NOW),
            Outcome::Authenticated(
                Principal::External("external:backstage-plugin".into()),
                None,
                Standing::Service(None)
            ),
            "{round}"
        );
        assert!(
            matches!(run(&restricted_legacy, NOW), Outcome::Denied(d) if d.status == 403),
            "{round}"
        );
        assert!(
            matches!(run("static-token-abd", NOW), Outcome::Denied(_)),
            "{round}"
        );
    }
    assert_eq!(state.cache_misses, 2, "each legacy token verified once");
    assert_eq!(
        state.cache_hits, 8,
        "two static and two legacy tokens, twice each from the cache"
    );
    assert_eq!(state.tokens.len(), 4, "only valid tokens are cached");
    // Expired at its exp, cached or not.
    assert!(matches!(
        super::authenticate(&p, &mut state, &good_legacy, (NOW + 60) * 1000),
        Outcome::Denied(d) if d.status == 401
    ));
}
