//! G. Response header policy (`docs/security.md#the-cases`).

use std::io::Write;
use std::net::TcpListener;
use std::thread;

use backstage_proxy_testkit::*;

use crate::fixture::*;

#[test]
fn g01_g02_g03_the_client_sees_only_allowed_response_headers() {
    let g = gw(false);
    let (r, _) = g.raw("GET", "/api/proxy/svc/x", true, "");
    assert_eq!(r.status, 200);
    for h in [
        "set-cookie",
        "x-powered-by",
        "www-authenticate",
        "location",
        "content-encoding",
        "x-injected",
        "x-custom",
    ] {
        assert!(r.header(h).is_none(), "{h} reached the client");
    }
    // allow-listed (and only those): both set-cookie lines, separately;
    // the injected header's name is not thereby allowed back
    let (r, _) = g.raw("GET", "/api/proxy/inject/x", true, "");
    assert_eq!(r.status, 200);
    assert_eq!(r.all("set-cookie"), vec!["a=1", "b=2"]);
    assert_eq!(r.header("x-custom"), Some("upstream-custom"));
    assert!(r.header("x-injected").is_none());
    assert!(r.header("x-powered-by").is_none());
}

#[test]
fn g04_a_bare_cr_in_an_upstream_header_smuggles_no_second_header() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let bp = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut c = conn;
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut c, &mut buf);
            let _ = c.write_all(
                b"HTTP/1.1 200 OK\r\nx-split: a\rset-cookie: injected=1\r\ncontent-length: 2\r\n\r\nok",
            );
        }
    });
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/bad":{{"target":"http://127.0.0.1:{bp}","credentials":"dangerously-allow-unauthenticated","allowedHeaders":["set-cookie"]}}}}}}}}"#
    );
    let envoy = Envoy::start(EnvoyOptions::new(config).cluster(cluster_for_port(bp), bp));
    // Envoy's codec (1.39, balsa) reads a bare CR as part of the field, not
    // as a line end: one `x-split` header, which the allow-list drops; the
    // smuggled `set-cookie` never exists as a header of its own.
    let r = envoy.get("/api/proxy/bad/x", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), "ok");
    assert!(r.header("set-cookie").is_none(), "{r:?}");
    assert!(
        r.headers.iter().all(|(_, v)| !v.contains("injected=1")),
        "{r:?}"
    );
}
