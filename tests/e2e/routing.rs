//! `docs/contract.md#request-pipeline`: routing, rewriting and path safety.

use backstage_proxy_testkit::*;

use crate::fixture::*;

#[test]
fn unknown_routes_need_credentials_then_404_with_an_empty_body() {
    let r = get("/api/proxy/unknown/x", &[]);
    assert_eq!(r.status, 401);
    let r = get_auth("/api/proxy/unknown/x");
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-type"), None);
    assert_eq!(get_auth("/api/proxy").status, 404);
    assert_eq!(
        get_auth("/api/proxy/simplex").status,
        404,
        "segment boundary"
    );
}

#[test]
fn own_key_set_is_served_without_credentials() {
    let r = get("/api/proxy/.backstage/auth/v1/jwks.json", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), r#"{"keys":[]}"#);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
}

#[test]
fn longest_key_wins_and_matching_is_case_insensitive_deviation() {
    let f = fixture();
    let m = unique();
    assert_eq!(
        get_auth(&format!("/api/proxy/nested/inner/x?{m}")).status,
        200
    );
    assert_eq!(f.b.find(&m).unwrap().target, format!("/inner/x?{m}"));
    let m = unique();
    assert_eq!(get_auth(&format!("/API/Proxy/NESTED/x?{m}")).status, 200);
    // Deviation: the default rewrite is case-insensitive too.
    assert_eq!(upstream_a(&m).target, format!("/outer/x?{m}"));
}

#[test]
fn a_key_without_a_leading_slash_is_normalised_deviation() {
    let m = unique();
    assert_eq!(get_auth(&format!("/api/proxy/noslash/z?{m}")).status, 200);
    assert_eq!(upstream_a(&m).target, format!("/noslash/z?{m}"));
}

#[test]
fn default_rewrite_join_slash_collapsing_and_verbatim_query() {
    for (req, want) in [
        ("/api/proxy/simple", "/base/"),
        ("/api/proxy/simple/", "/base/"),
        ("/api/proxy/simple//a///b", "/base/a/b"),
        ("/api/proxy/simple/a%2Fb%20c/%41", "/base/a%2Fb%20c/%41"),
        ("/api/proxy/simple/%252e%252e/x", "/base/%252e%252e/x"),
    ] {
        let m = unique();
        let r = get_auth(&format!("{req}?x=%2F/../..&{m}"));
        assert_eq!(r.status, 200, "{req}");
        assert_eq!(
            upstream_a(&m).target,
            format!("{want}?x=%2F/../..&{m}"),
            "{req}"
        );
    }
    // the target's own query first, then the request's
    let m = unique();
    assert_eq!(get_auth(&format!("/api/proxy/query/a?{m}")).status, 200);
    assert_eq!(upstream_a(&m).target, format!("/q/a?k=v&{m}"));
}

#[test]
fn path_rewrite_first_matching_rule_with_groups() {
    let m = unique();
    assert_eq!(get_auth(&format!("/api/proxy/rewrite/a/b?{m}")).status, 200);
    assert_eq!(upstream_a(&m).target, format!("/t/AAA/b?{m}"));
    let m = unique();
    assert_eq!(
        get_auth(&format!("/api/proxy/rewrite/zz/d?{m}")).status,
        200
    );
    assert_eq!(upstream_a(&m).target, format!("/t/BBB/zz/d?{m}"));
    // no rule matches: the original path, behind the target's
    let m = unique();
    assert_eq!(get_auth(&format!("/api/proxy/rewrite?{m}")).status, 200);
    assert_eq!(upstream_a(&m).target, format!("/t/api/proxy/rewrite?{m}"));
}

#[test]
fn change_origin_true_and_false() {
    let m = unique();
    get_auth(&format!("/api/proxy/simple?{m}"));
    assert_eq!(
        upstream_a(&m).header("host"),
        Some(format!("127.0.0.1:{}", fixture().a.port).as_str())
    );
    let m = unique();
    assert_eq!(get_auth(&format!("/api/proxy/keephost/x?{m}")).status, 200);
    assert_eq!(upstream_a(&m).header("host"), Some("gateway.test"));
}

#[test]
fn dot_segments_and_bad_encodings_are_400_and_never_forwarded_deviation() {
    let f = fixture();
    for path in [
        "/api/proxy/simple/../forward",
        "/api/proxy/simple/%2e%2e/x",
        "/api/proxy/simple/%2E%2e/x",
        "/api/proxy/simple/.%2e/x",
        "/api/proxy/simple/a%2f..%2f..%2fx",
        "/api/proxy/simple/a%5c..%5cx",
        "/api/proxy/simple/./x",
        "/api/proxy/open/..;x=1/simple",
        "/api/proxy/simple/%zz",
        "/api/proxy/simple/%00",
    ] {
        let m = unique();
        let r = get_auth(&format!("{path}?{m}"));
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.json()["error"]["name"], "InputError", "{path}");
        f.a.assert_never(&m);
    }
    // a raw backslash path
    let m = unique();
    let r = f.envoy.send(&format!("GET /api/proxy/simple\\..\\forward?{m} HTTP/1.1\r\nhost: g\r\nauthorization: Bearer {TOKEN}\r\nconnection: close\r\n\r\n"));
    assert_eq!(r.status, 400);
    f.a.assert_never(&m);
}
