//! Classes an attacker's run against the released filter found (issue
//! "Hostile traffic"), each through real Envoy over HTTP/1.1 (raw bytes)
//! and cleartext HTTP/2 (exact pseudo-headers), asserting on what the
//! upstream saw, not only on the status.

use backstage_proxy_testkit as support;

use std::sync::OnceLock;

use support::*;

const TOKEN: &str = "static-token-hostile-0123";

struct Gw {
    envoy: Envoy,
    up: Upstream,
}

fn gw() -> &'static Gw {
    static GW: OnceLock<Gw> = OnceLock::new();
    GW.get_or_init(|| {
        let up = Upstream::start(&[]);
        let u = format!("http://127.0.0.1:{}", up.port);
        let config = serde_json::json!({
            "proxy": {"endpoints": {
                "/x": {"target": u, "credentials": "dangerously-allow-unauthenticated"},
                "/rw": {"target": u, "credentials": "dangerously-allow-unauthenticated",
                        "pathRewrite": {"^/api/proxy/rw/\\?to=(.*)$": "/$1"}},
                "/files": {"target": format!("{u}/files"), "credentials": "dangerously-allow-unauthenticated"},
                "/files/admin": {"target": format!("{u}/files/admin")},
                "/fwd": {"target": u, "credentials": "forward"},
                "/xfwd": {"target": u, "xfwd": true}
            }},
            "backend": {"auth": {"externalAccess": [
                {"type": "static", "options": {"token": TOKEN, "subject": "ci"}}
            ]}}
        });
        let opts = EnvoyOptions::new(config.to_string())
            .cluster(cluster_for_port(up.port), up.port);
        Gw {
            envoy: Envoy::start(opts),
            up,
        }
    })
}

/// GET `path` over HTTP/1.1 (raw) and over HTTP/2, with `extra` headers.
fn both(path: &str, extra: &[(&str, &str)]) -> [Response; 2] {
    let g = gw();
    let mut raw = format!("GET {path} HTTP/1.1\r\nhost: gw.test\r\nconnection: close\r\n");
    for (n, v) in extra {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    let h1 = http(g.envoy.port, &raw).unwrap();
    let mut h = vec![
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "gw.test"),
        (":path", path),
    ];
    h.extend_from_slice(extra);
    [h1, h2(g.envoy.port, &h)]
}

/// Runs `f` with a fresh mark (sent as `user-agent`, which the allow-list
/// lets through) and asserts no request carrying it reached the upstream.
fn nothing_reaches_upstream(f: impl FnOnce(&str)) {
    let mark = unique();
    f(&mark);
    gw().up.assert_never(&mark);
}

#[test]
fn upstream_paths_that_read_as_another_host_or_climb_never_leave() {
    for sep in ["\\", "%5C", "%5c", "%2F", "%2f"] {
        for path in [
            format!("/api/proxy/x/{sep}evil.example/a"),
            format!("/api/proxy/X/{sep}{sep}evil.example"),
            format!("/api/proxy/rw/?to={sep}evil.example/a"),
            format!("/api/proxy/rw/?to=/{sep}evil.example"),
        ] {
            nothing_reaches_upstream(|mark| {
                for r in both(&path, &[("user-agent", mark)]) {
                    assert_eq!(r.status, 400, "{path}: {}", r.text());
                }
            });
        }
    }
    for climb in ["/x/../../admin", "%2e%2e/admin", "..%5cadmin", ".%2E/admin"] {
        let path = format!("/api/proxy/rw/?to={climb}");
        nothing_reaches_upstream(|mark| {
            for r in both(&path, &[("user-agent", mark)]) {
                assert_eq!(r.status, 400, "{path}: {}", r.text());
            }
        });
    }
    // An ordinary rewrite and an encoded slash inside the path still pass.
    for (path, seen) in [
        ("/api/proxy/rw/?to=v4/projects", "/v4/projects"),
        (
            "/api/proxy/x/projects/group%2Fproject",
            "/projects/group%2Fproject",
        ),
    ] {
        for r in both(path, &[]) {
            assert_eq!(r.status, 200, "{path}");
        }
        assert!(gw().up.all().iter().any(|s| s.target == seen), "{seen}");
    }
}

#[test]
fn an_open_endpoint_does_not_open_a_nested_protected_target() {
    let bearer = format!("Bearer {TOKEN}");
    for path in [
        "/api/proxy/files/admin/x",
        "/api/proxy/files/%61dmin/x",
        "/api/proxy/files/admin%2Fx",
        "/api/proxy/files/admin;v=1/x",
        "/api/proxy/files/ADMIN/x",
        "/api/proxy/files/%41%44%4D%49%4E",
    ] {
        nothing_reaches_upstream(|mark| {
            for r in both(path, &[("user-agent", mark)]) {
                assert_eq!(r.status, 401, "{path}: {}", r.text());
            }
        });
        let mark = unique();
        let marked = format!("{path}?{mark}");
        for r in both(&marked, &[("authorization", &bearer)]) {
            assert_eq!(r.status, 200, "{path}");
        }
        let seen = gw().up.find(&mark).unwrap();
        assert_eq!(seen.header("authorization"), None);
    }
    for r in both("/api/proxy/files/administrator/x", &[]) {
        assert_eq!(r.status, 200, "a sibling, not the protected target");
    }
}

#[test]
fn trace_and_connect_are_refused_in_any_letter_case() {
    let g = gw();
    let bearer = format!("Bearer {TOKEN}");
    for method in ["TRACE", "trace", "Trace", "tRaCe"] {
        nothing_reaches_upstream(|mark| {
            let r = h2(
                g.envoy.port,
                &[
                    (":method", method),
                    (":scheme", "http"),
                    (":authority", "gw.test"),
                    (":path", "/api/proxy/fwd/x"),
                    ("authorization", &bearer),
                    ("user-agent", mark),
                ],
            );
            assert_eq!(r.status, 405, "h2 {method}: {}", r.text());
            let raw = format!("{method} /api/proxy/fwd/x HTTP/1.1\r\nhost: gw.test\r\nauthorization: {bearer}\r\nuser-agent: {mark}\r\nconnection: close\r\n\r\n");
            let r = http(g.envoy.port, &raw).unwrap();
            assert!(
                r.status == 405 || r.status == 400,
                "h1 {method}: {} {}",
                r.status,
                r.text()
            );
        });
    }
}

#[test]
fn x_forwarded_proto_comes_from_the_connection_not_from_scheme() {
    let g = gw();
    let mark = unique();
    let path = format!("/api/proxy/xfwd/a?{mark}");
    let bearer = format!("Bearer {TOKEN}");
    let r = h2(
        g.envoy.port,
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "gw.test"),
            (":path", &path),
            ("authorization", &bearer),
            ("x-forwarded-proto", "https"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = g.up.find(&mark).unwrap();
    assert_eq!(seen.all("x-forwarded-proto"), vec!["http"]);
    assert_eq!(seen.header("x-forwarded-port"), Some("80"));
}
