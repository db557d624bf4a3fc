//! I. Methods (`docs/security.md#the-cases`).

use crate::fixture::*;

#[test]
fn i01_i02_i03_an_allowed_methods_list_is_exact() {
    let g = gw(false);
    let (r, m) = g.raw("GET", "/api/proxy/get-only/x", true, "");
    assert_eq!(r.status, 200);
    assert!(g.up.find(&m).is_some());
    for method in [
        "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "PROPFIND",
    ] {
        let (r, m) = g.raw(
            method,
            "/api/proxy/get-only/x",
            true,
            "content-length: 0\r\n",
        );
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET"), "{method}");
        g.up.assert_never(&m);
        // and credentials come first: no preflight bypass
        let (r, m) = g.raw(
            method,
            "/api/proxy/get-only/x",
            false,
            "content-length: 0\r\n",
        );
        assert_eq!(r.status, 401, "{method} without credentials");
        g.up.assert_never(&m);
    }
    // methods are case-sensitive tokens: `get` is not GET. Envoy's codec
    // refuses such tokens (400) before the filter; never forwarded.
    for method in ["get", "Get", "gEt"] {
        let (r, m) = g.raw(method, "/api/proxy/get-only/x", true, "");
        assert!(r.status == 400 || r.status == 405, "{method}: {}", r.status);
        g.up.assert_never(&m);
    }
}

#[test]
fn i04_trace_is_refused_and_extension_methods_are_forwarded() {
    let g = gw(false);
    let (r, m) = g.raw("TRACE", "/api/proxy/svc/x", true, "");
    assert_eq!(r.status, 405);
    g.up.assert_never(&m);
    let (r, m) = g.raw(
        "PROPFIND",
        "/api/proxy/svc/x",
        true,
        "content-length: 0\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(g.up.find(&m).unwrap().method, "PROPFIND");
    // CONNECT never reaches the filter's routes (a23); an unknown token
    // like FOO is refused by Envoy's codec or forwarded as sent
    let (r, m) = g.raw("FOO", "/api/proxy/svc/x", true, "content-length: 0\r\n");
    match r.status {
        400 => g.up.assert_never(&m),
        200 => assert_eq!(g.up.find(&m).unwrap().method, "FOO"),
        s => panic!("FOO answered {s}"),
    }
}
