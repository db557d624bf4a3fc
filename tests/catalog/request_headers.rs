//! F. Request header policy (`docs/security.md#the-cases`).

use std::io::Write;
use std::time::Duration;

use backstage_proxy_testkit::*;

use crate::fixture::*;

#[test]
fn f01_f10_f11_f14_the_upstream_sees_exactly_the_allowed_headers() {
    let g = gw(false);
    let (r, m) = g.raw(
        "POST",
        "/api/proxy/svc/x",
        true,
        "cookie: backstage-auth=abc\r\nx-forwarded-for: 6.6.6.6\r\nx-forwarded-host: evil.test\r\n\
         origin: http://evil.test\r\nreferer: http://evil.test/\r\naccept-encoding: gzip\r\n\
         x-api-key: client-key\r\nproxy-authorization: Basic eA==\r\nx-envoy-original-path: /admin\r\n\
         x-envoy-retry-on: 5xx\r\nx-envoy-upstream-rq-timeout-ms: 1\r\nx-envoy-internal: true\r\n\
         x-http-method-override: DELETE\r\nx-request-id: client-id\r\n\
         accept: application/json\r\ncontent-type: text/plain\r\nuser-agent: catalog\r\n\
         accept-language: en\r\ncache-control: no-cache\r\npragma: no-cache\r\ncontent-length: 2\r\n\r\nhi",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = g.up.find(&m).unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.body, b"hi");
    let mut names: Vec<&str> = seen.names();
    names.sort_unstable();
    // allowed client headers + Envoy's own framing; nothing else
    assert_eq!(
        names,
        vec![
            "accept",
            "accept-language",
            "cache-control",
            "content-length",
            "content-type",
            "host",
            "pragma",
            "user-agent",
        ],
        "upstream saw {:?}",
        seen.headers
    );
}

#[test]
fn f02_f03_f04_allowed_names_any_case_underscores_dropped_repeats_kept() {
    let g = gw(false);
    let (r, m) = g.raw(
        "GET",
        "/api/proxy/inject/x",
        true,
        "X-CUSTOM: one\r\nx-custom: two\r\nx_custom: underscore\r\nx-other: a\r\nx-other: b\r\n",
    );
    assert_eq!(r.status, 200);
    let seen = g.up.find(&m).unwrap();
    assert_eq!(seen.all("x-custom"), vec!["one", "two"]);
    assert!(seen.header("x_custom").is_none());
    assert!(seen.header("x-other").is_none());
}

#[test]
fn f05_f06_f07_hop_by_hop_headers_and_connection_nominations() {
    let g = gw(false);
    let (r, m) = g.raw(
        "GET",
        "/api/proxy/inject/x",
        true,
        "keep-alive: timeout=5\r\nproxy-connection: keep-alive\r\nte: gzip\r\nx-injected: client-value\r\n",
    );
    assert_eq!(r.status, 200);
    let seen = g.up.find(&m).unwrap();
    for h in ["keep-alive", "proxy-connection", "te", "connection"] {
        assert!(seen.header(h).is_none(), "{h} forwarded");
    }
    // the endpoint's injected header replaces the client's
    assert_eq!(seen.all("x-injected"), vec![INJECTED]);

    // `Connection: close, X-Injected`: the injected value still arrives
    let m2 = unique();
    let raw = format!(
        "GET /api/proxy/inject/x?m={m2} HTTP/1.1\r\nhost: g\r\nauthorization: {}\r\nconnection: close, X-Injected, X-Custom\r\nx-custom: c\r\n\r\n",
        s1()
    );
    let r = g.envoy.send(&raw);
    assert_eq!(r.status, 200);
    let seen = g.up.find(&m2).unwrap();
    assert_eq!(seen.all("x-injected"), vec![INJECTED]);
    assert!(seen
        .header("connection")
        .is_none_or(|c| !c.to_ascii_lowercase().contains("x-injected")));

    // an upgrade on an endpoint without `ws` is refused, not forwarded
    for upgrade in ["websocket", "h2c"] {
        let (r, m) = g.raw(
            "GET",
            "/api/proxy/svc/x",
            true,
            &format!("upgrade: {upgrade}\r\n"),
        );
        assert_ne!(r.status, 101);
        if r.status == 200 {
            assert!(g.up.find(&m).unwrap().header("upgrade").is_none());
        } else {
            g.up.assert_never(&m);
        }
    }
}

#[test]
fn f08_ambiguous_framing_is_refused_by_envoy() {
    let g = gw(false);
    for framing in [
        "transfer-encoding: chunked\r\ncontent-length: 3\r\n",
        "content-length: 3\r\ncontent-length: 4\r\n",
    ] {
        let m = unique();
        let raw = format!(
            "POST /api/proxy/svc/x?m={m} HTTP/1.1\r\nhost: g\r\nauthorization: {}\r\n{framing}connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            s1()
        );
        let status = http(g.envoy.port, &raw).map(|r| r.status).unwrap_or(0);
        assert!(
            status == 400 || status == 0,
            "{framing:?} answered {status}"
        );
        g.up.assert_never(&m);
    }
}

#[test]
fn f09_obs_text_in_header_values_is_decided_normally() {
    let g = gw(false);
    let m = unique();
    let mut raw = format!(
        "GET /api/proxy/inject/x?m={m} HTTP/1.1\r\nhost: g\r\nauthorization: {}\r\n",
        s1()
    )
    .into_bytes();
    raw.extend_from_slice(
        b"x-custom: caf\xe9 \xff\xfe\r\nuser-agent: \xc3\x28\r\nconnection: close\r\n\r\n",
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", g.envoy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&raw).unwrap();
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );
    if text.starts_with("HTTP/1.1 200") {
        assert!(g.up.find(&m).is_some());
    }
    // the same header bytes without credentials: still 401
    let m = unique();
    let mut raw = format!("GET /api/proxy/svc/x?m={m} HTTP/1.1\r\nhost: g\r\n").into_bytes();
    raw.extend_from_slice(b"authorization: Bearer \xff\xfe\xfd\r\nconnection: close\r\n\r\n");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", g.envoy.port)).unwrap();
    s.write_all(&raw).unwrap();
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("HTTP/1.1 401") || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );
    g.up.assert_never(&m);
}

#[test]
fn f13_many_headers_hit_envoys_limits_without_trapping() {
    let g = gw(false);
    let many: String = (0..90).map(|i| format!("x-h{i}: v{i}\r\n")).collect();
    let (r, m) = g.raw("GET", "/api/proxy/svc/x", true, &many);
    assert_eq!(r.status, 200);
    assert!(g.up.find(&m).unwrap().header("x-h1").is_none());
    let too_many: String = (0..200).map(|i| format!("x-h{i}: v{i}\r\n")).collect();
    let (r, m) = g.raw("GET", "/api/proxy/svc/x", true, &too_many);
    assert_eq!(r.status, 431);
    g.up.assert_never(&m);
    g.routed("/api/proxy/svc/after", "/base/after", "after the limits");
}
