//! `docs/contract.md#headers`: request and response headers, upgrades, upstream failure.

use backstage_proxy_testkit::*;

use crate::fixture::*;

#[test]
fn request_allow_list_removes_every_other_header_and_all_its_values() {
    let m = unique();
    let raw = format!(
        "GET /api/proxy/simple?{m} HTTP/1.1\r\nhost: gateway.test\r\nauthorization: Bearer {TOKEN}\r\n\
         cookie: a=1\r\ncookie: b=2\r\nx-forwarded-for: 6.6.6.6\r\nx-forwarded-host: evil\r\norigin: https://evil\r\n\
         referer: https://evil/\r\naccept-encoding: gzip\r\nx-api-key: client-key\r\nproxy-authorization: Basic x\r\n\
         x-envoy-original-path: /public\r\nx-envoy-upstream-rq-timeout-ms: 1\r\nx-http-method-override: DELETE\r\nx-real-ip: 1.1.1.1\r\n\
         forwarded: for=1.1.1.1\r\nx_custom: underscore\r\n\
         accept: application/json\r\naccept-language: en\r\ncache-control: no-cache\r\ncontent-type: text/plain\r\n\
         content-language: en\r\nexpires: 0\r\nlast-modified: x\r\npragma: no-cache\r\nuser-agent: e2e\r\n\
         content-length: 3\r\nconnection: close\r\n\r\nabc"
    );
    let r = fixture().envoy.send(&raw);
    assert_eq!(r.status, 200);
    let seen = upstream_a(&m);
    let mut names: Vec<&str> = seen.names();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "accept",
            "accept-language",
            "cache-control",
            "content-language",
            "content-length",
            "content-type",
            "expires",
            "host",
            "last-modified",
            "pragma",
            "user-agent"
        ],
        "upstream saw {:?}",
        seen.headers
    );
    assert_eq!(seen.body, b"abc");
}

#[test]
fn allowed_and_injected_headers() {
    let m = unique();
    let raw = format!(
        "GET /api/proxy/headers?{m} HTTP/1.1\r\nhost: g\r\nauthorization: Bearer {TOKEN}\r\nx-custom: one\r\nX-CUSTOM: two\r\n\
         x-api-key: client-key\r\nx-other: o\r\nx-other: p\r\nconnection: close\r\n\r\n"
    );
    assert_eq!(fixture().envoy.send(&raw).status, 200);
    let seen = upstream_a(&m);
    let custom = seen.all("x-custom").join(",");
    assert!(
        custom == "one,two" || custom == "one, two",
        "both values of an allowed header: {custom:?}"
    );
    assert_eq!(
        seen.all("x-api-key"),
        [API_KEY],
        "the configured value replaces the client's"
    );
    assert!(seen.all("x-other").is_empty());
}

#[test]
fn response_allow_list_keeps_two_set_cookie_lines_only_when_allowed() {
    let m = unique();
    let r = get_auth(&format!("/api/proxy/headers?{m}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.all("set-cookie"), ["a=1; Path=/", "b=2; Path=/"]);
    assert_eq!(r.header("x-upstream-internal"), None);
    assert_eq!(r.header("x-api-key"), None);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = get_auth(&format!("/api/proxy/simple?{}", unique()));
    assert!(r.all("set-cookie").is_empty());
    assert_eq!(r.header("location"), None);
    assert_eq!(r.header("server"), None);
    assert_eq!(r.header("x-upstream-internal"), None);
    assert_eq!(r.header("content-type"), Some("application/json"));
    // Deviation: no helmet headers are added by the filter.
    assert_eq!(r.header("content-security-policy"), None);
    assert_eq!(r.header("x-frame-options"), None);
}

#[test]
fn xfwd_headers_are_computed_by_the_gateway() {
    let m = unique();
    let r = get(
        &format!("/api/proxy/xfwd?{m}"),
        &[
            ("authorization", &bearer(TOKEN)),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil"),
        ],
    );
    assert_eq!(r.status, 200);
    let seen = upstream_a(&m);
    assert_eq!(seen.all("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen.all("x-forwarded-host"), ["gateway.test"]);
    assert_eq!(seen.all("x-forwarded-proto"), ["http"]);
    assert_eq!(seen.all("x-forwarded-port"), ["80"]);
    assert!(seen.all("x-backstage-proxy-cluster-xfwd").is_empty());
    // without xfwd none of them reach the upstream
    let m = unique();
    get(
        &format!("/api/proxy/simple?{m}"),
        &[
            ("authorization", &bearer(TOKEN)),
            ("x-forwarded-proto", "https"),
        ],
    );
    let seen = upstream_a(&m);
    assert!(
        seen.names().iter().all(|n| !n.starts_with("x-forwarded")),
        "{:?}",
        seen.headers
    );
}

#[test]
fn the_cluster_header_never_leaves_and_cannot_be_forged() {
    let f = fixture();
    let m = unique();
    let forged = cluster_for_port(f.b.port);
    assert_eq!(
        get(
            &format!("/api/proxy/simple?{m}"),
            &[
                ("authorization", &bearer(TOKEN)),
                ("x-backstage-proxy-cluster", &forged)
            ]
        )
        .status,
        200
    );
    let seen = upstream_a(&m);
    assert!(
        seen.names()
            .iter()
            .all(|n| !n.starts_with("x-backstage-proxy")),
        "{:?}",
        seen.headers
    );
    f.b.assert_never(&m);
    // outside the prefix a forged header selects nothing
    let m = unique();
    let r = get(
        &format!("/elsewhere?{m}"),
        &[("x-backstage-proxy-cluster", &forged)],
    );
    assert_eq!(r.status, 404);
    f.b.assert_never(&m);
}

#[test]
fn websocket_upgrades_only_for_ws_endpoints_after_credentials_deviation() {
    let f = fixture();
    let upgrade = |path: &str, token: Option<&str>| {
        let auth = token
            .map(|t| format!("authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        f.envoy.send(&format!(
            "GET {path} HTTP/1.1\r\nhost: g\r\n{auth}connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
        ))
    };
    let m = unique();
    assert_eq!(
        upgrade(&format!("/api/proxy/ws/chat?{m}"), None).status,
        401
    );
    f.a.assert_never(&m);
    let m = unique();
    assert_eq!(
        upgrade(&format!("/api/proxy/ws/chat?{m}"), Some(TOKEN)).status,
        101
    );
    let seen = upstream_a(&m);
    assert_eq!(seen.target, format!("/sock/chat?{m}"));
    assert_eq!(seen.header("upgrade"), Some("websocket"));
    assert!(seen.header("sec-websocket-key").is_some());
    // an endpoint without ws refuses the upgrade
    let m = unique();
    let r = upgrade(&format!("/api/proxy/simple?{m}"), Some(TOKEN));
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["name"], "NotAllowedError");
    f.a.assert_never(&m);
}

#[test]
fn upstream_failure_is_envoys_local_reply_deviation() {
    let r = get_auth("/api/proxy/down/x");
    assert_eq!(r.status, 503);
    // Envoy's own local reply, not Backstage's plain-text 502/504 nor a
    // JSON error of the filter's.
    assert!(
        r.text()
            .starts_with("upstream connect error or disconnect/reset before headers"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert!(r.header("www-authenticate").is_none());
}
