use super::*;
use crate::base64::encode_url_nopad;

fn token(header: &str, payload: &str, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        encode_url_nopad(header.as_bytes()),
        encode_url_nopad(payload.as_bytes()),
        encode_url_nopad(sig)
    )
}

fn claims(json: &str) -> Map<String, Value> {
    serde_json::from_str(json).unwrap()
}

#[test]
fn decodes_three_part_jws() {
    let t = token(r#"{"alg":"HS256"}"#, r#"{"sub":"x"}"#, b"sig");
    let jwt = decode(&t).unwrap();
    assert_eq!(jwt.header_str("alg"), Some("HS256"));
    assert_eq!(jwt.claim_str("sub"), Some("x"));
    assert_eq!(jwt.signature, b"sig");
    assert_eq!(jwt.signing_input, &t[..t.rfind('.').unwrap()]);
}

#[test]
fn refuses_other_shapes() {
    let good = token(r#"{"alg":"HS256"}"#, r#"{"sub":"x"}"#, b"sig");
    assert!(decode(&format!("{good}.x.y")).is_none(), "five parts (JWE)");
    assert!(
        decode(good.rsplit_once('.').unwrap().0).is_none(),
        "two parts"
    );
    assert!(
        decode(&token("[1]", "{}", b"s")).is_none(),
        "header not an object"
    );
    assert!(
        decode(&token("{}", "\"s\"", b"s")).is_none(),
        "payload not an object"
    );
    assert!(decode(&format!("{good}=")).is_none(), "padding");
    assert!(decode("not-a-jwt").is_none());
    assert!(decode("..").is_none());
    assert!(
        decode(r#"{"payload":"x","signatures":[]}"#).is_none(),
        "JSON serialisation"
    );
}

#[test]
fn exp_at_now_is_expired_with_zero_skew() {
    let c = claims(r#"{"exp":1000}"#);
    assert_eq!(
        check_registered_claims(&c, 1000, 0, &[]),
        Err(ClaimError::Expired)
    );
    assert_eq!(check_registered_claims(&c, 999, 0, &[]), Ok(()));
    assert_eq!(
        check_registered_claims(&c, 1005, 5, &[]),
        Err(ClaimError::Expired)
    );
    assert_eq!(check_registered_claims(&c, 1004, 5, &[]), Ok(()));
}

#[test]
fn nbf_boundaries() {
    let c = claims(r#"{"nbf":1000}"#);
    assert_eq!(check_registered_claims(&c, 1000, 0, &[]), Ok(()));
    assert_eq!(
        check_registered_claims(&c, 999, 0, &[]),
        Err(ClaimError::NotYetValid)
    );
    assert_eq!(check_registered_claims(&c, 990, 10, &[]), Ok(()));
}

#[test]
fn wrong_types_are_refusals_not_absences() {
    for (json, name) in [
        (r#"{"exp":"9999999999"}"#, "exp"),
        (r#"{"nbf":null}"#, "nbf"),
        (r#"{"iat":true}"#, "iat"),
        (r#"{"sub":1}"#, "sub"),
        (r#"{"aud":[1]}"#, "aud"),
        (r#"{"aud":{}}"#, "aud"),
        (r#"{"iss":[]}"#, "iss"),
    ] {
        assert_eq!(
            check_registered_claims(&claims(json), 0, 0, &[]),
            Err(ClaimError::Malformed(name)),
            "{json}"
        );
    }
}

#[test]
fn required_claims() {
    assert_eq!(
        check_registered_claims(&claims("{}"), 0, 0, &["exp"]),
        Err(ClaimError::Missing("exp"))
    );
    assert_eq!(
        check_registered_claims(&claims(r#"{"exp":5.5}"#), 0, 0, &["exp"]),
        Ok(())
    );
}
