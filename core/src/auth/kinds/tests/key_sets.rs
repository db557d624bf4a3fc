//! Key sets: refetching for an unknown `kid`, keys dropped by a refresh,
//! an unavailable set, decoy keys, and the URLs Backstage's discovery gives.

use super::*;

#[test]
fn unknown_kid_refetches_once_then_waits_out_the_cooldown() {
    let p = plan();
    let k1 = Es256::new(1, "k1");
    let k2 = Es256::new(2, "k2");
    let mut state = AuthState::new(&p);
    let t1 = user_token(&k1, "u", NOW, NOW + 600);
    let (o, fetched) = drive(&p, &mut state, &t1, NOW, &[(AUTH_URL, key_set(&[&k1]))]);
    ok(&o);
    assert_eq!(fetched.len(), 1);
    // rotation: k2 appears at the issuer; the first k2 token triggers one refetch
    let t2 = user_token(&k2, "u", NOW, NOW + 600);
    let (o, fetched) = drive(
        &p,
        &mut state,
        &t2,
        NOW + 1,
        &[(AUTH_URL, key_set(&[&k1, &k2]))],
    );
    ok(&o);
    assert_eq!(fetched, [AUTH_URL]);
    // a kid nobody has: within the cooldown, refused without fetching
    let k3 = Es256::new(3, "k3");
    let t3 = user_token(&k3, "u", NOW, NOW + 600);
    let (o, fetched) = drive(
        &p,
        &mut state,
        &t3,
        NOW + 2,
        &[(AUTH_URL, key_set(&[&k1, &k2]))],
    );
    assert!(denied(&o).2.contains("JWKSNoMatchingKey"));
    assert!(fetched.is_empty(), "cooldown: {fetched:?}");
    for i in 0..1000 {
        let k = Es256::new(4, &format!("random-{i}"));
        let (_, fetched) = drive(
            &p,
            &mut state,
            &user_token(&k, "u", NOW, NOW + 600),
            NOW + 3,
            &[],
        );
        assert!(fetched.is_empty());
    }
    // after the cooldown, one refetch is allowed again
    let (_, fetched) = drive(
        &p,
        &mut state,
        &t3,
        NOW + 31,
        &[(AUTH_URL, key_set(&[&k1, &k2]))],
    );
    assert_eq!(fetched.len(), 1);
}

#[test]
fn a_key_dropped_by_a_refresh_stops_verifying_even_when_cached() {
    let p = plan();
    let k1 = Es256::new(1, "k1");
    let k2 = Es256::new(2, "k2");
    let mut state = AuthState::new(&p);
    let t1 = user_token(&k1, "u", NOW, NOW + 600);
    ok(&drive(
        &p,
        &mut state,
        &t1,
        NOW,
        &[(AUTH_URL, key_set(&[&k1, &k2]))],
    )
    .0);
    // refresh without k1
    state.keys.start(AUTH_URL, 0);
    state.keys.succeeded(
        AUTH_URL,
        parse_key_set(key_set(&[&k2]).as_bytes()).unwrap(),
        NOW * 1000 + 10,
    );
    let (o, _) = drive(&p, &mut state, &t1, NOW + 1, &[(AUTH_URL, key_set(&[&k2]))]);
    assert!(matches!(o, Outcome::Denied(_)), "{o:?}");
}

#[test]
fn key_set_unavailable_refuses_user_tokens_but_not_static_ones() {
    let p = plan();
    let es = Es256::new(1, "es");
    let mut state = AuthState::new(&p);
    let (o, fetched) = drive(
        &p,
        &mut state,
        &user_token(&es, "u", NOW, NOW + 60),
        NOW,
        &[],
    );
    assert_eq!(fetched, [AUTH_URL]);
    assert_eq!(denied(&o).1, Reason::KeySetUnavailable);
}

#[test]
fn decoy_keys_are_ignored_good_ones_used() {
    let es = Es256::new(1, "good");
    let weak = Rsa::weak_key("weak");
    let mut doc: serde_json::Value = serde_json::from_str(&key_set(&[&es, &weak])).unwrap();
    let keys = doc["keys"].as_array_mut().unwrap();
    keys.push(serde_json::json!({"kty":"oct","k":"c2VjcmV0","kid":"hmac"}));
    keys.push(serde_json::json!({"kty":"EC","crv":"P-521","x":"AA","y":"AA","kid":"p521"}));
    keys.push(serde_json::json!({"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","kid":"short"}));
    keys.push(serde_json::json!({"kty":"OKP","crv":"X25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"x"}));
    let mut enc = es.jwk();
    enc["use"] = "enc".into();
    enc["kid"] = "enc".into();
    keys.push(enc);
    let mut mismatched = es.jwk();
    mismatched["alg"] = "RS256".into();
    keys.push(mismatched);
    keys.push(serde_json::json!({"kty":"EC","crv":"P-256","kid":7}));
    keys.push(serde_json::json!("not an object"));
    let set = parse_key_set(doc.to_string().as_bytes()).unwrap();
    assert_eq!(set.keys.len(), 1, "only the good key is kept");
    assert_eq!(set.ignored, 9);
    assert!(parse_key_set(br#"{"keys":[]}"#).is_err());
    assert!(parse_key_set(br#"{"keys":"x"}"#).is_err());
    assert!(parse_key_set(b"<html>").is_err());
    assert!(parse_key_set(b"[]").is_err());
}

#[test]
fn key_set_urls_follow_backstage_discovery() {
    let p = plan();
    assert_eq!(Source::user(&p).unwrap().url, AUTH_URL);
    assert_eq!(Source::user(&p).unwrap().cluster, "http_backstage_7007");
    assert_eq!(
        Source::plugin(&p, "catalog").unwrap().path,
        "/api/catalog/.backstage/auth/v1/jwks.json"
    );
    assert_eq!(
        Source::external(&p.auth.jwks[0]).cluster,
        "https_idp.example_443"
    );
}
