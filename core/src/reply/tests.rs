use super::*;

#[test]
fn body_is_backstages_byte_for_byte() {
    let body = error_body(
        401,
        "AuthenticationError",
        "Missing credentials",
        "GET",
        "/api/proxy/simple/x?y=1",
    );
    assert_eq!(
        String::from_utf8(body).unwrap(),
        r#"{"error":{"name":"AuthenticationError","message":"Missing credentials"},"request":{"method":"GET","url":"/api/proxy/simple/x?y=1"},"response":{"statusCode":401}}"#
    );
}

#[test]
fn quotes_in_the_url_are_escaped() {
    let body = error_body(400, "InputError", "m", "GET", "/a\"b");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["request"]["url"], "/a\"b");
}

#[test]
fn a_401_says_bearer() {
    let r = unauthenticated(
        Reason::MissingCredentials,
        "Missing credentials",
        "GET",
        "/",
    );
    assert!(r
        .headers
        .contains(&("www-authenticate".into(), "Bearer".into())));
    assert!(r
        .headers
        .contains(&("content-type".into(), JSON_CONTENT_TYPE.into())));
    let r = error(
        403,
        Reason::AccessRestricted,
        "NotAllowedError",
        "x",
        "GET",
        "/",
    );
    assert!(!r.headers.iter().any(|(n, _)| n == "www-authenticate"));
}

#[test]
fn reason_codes_are_unique() {
    let mut codes: Vec<_> = Reason::ALL.iter().map(|r| r.code()).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), Reason::ALL.len());
}
