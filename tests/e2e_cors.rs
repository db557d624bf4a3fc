//! CORS in real Envoy (`docs/contract.md#cors`): the filter answers as Backstage's `cors`
//! middleware does with `backend.cors`, before credentials, over HTTP/1.1
//! and HTTP/2; every response a browser reads (the upstream's, the filter's
//! 401, Envoy's own local replies) carries the allow-origin headers.

use backstage_proxy_testkit as support;

use support::*;

const TOKEN: &str = "static-token-0123456789";
const APP: &str = "http://localhost:3000";

fn gateway(up: &Upstream, cors: &str) -> Envoy {
    let p = up.port;
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":"http://127.0.0.1:{p}","/down":"http://127.0.0.1:1"}}}},
            "backend":{{"cors":{cors},"auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{TOKEN}","subject":"ci"}}}}]}}}}}}"#
    );
    Envoy::start(EnvoyOptions::new(config).cluster(cluster_for_port(p), p))
}

#[test]
fn a_preflight_from_the_app_is_answered_before_credentials_with_the_requested_headers() {
    let up = Upstream::start(&[]);
    let envoy = gateway(
        &up,
        r#"{"origin":["http://localhost:3000","https://*.example.com"],"credentials":true}"#,
    );
    let m = unique();
    for origin in [
        APP,
        "https://backstage.example.com",
        "HTTPS://APP.EXAMPLE.COM",
    ] {
        let r = envoy.request(
            "OPTIONS",
            &format!("/api/proxy/svc/x?{m}"),
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization,content-type",
                ),
            ],
        );
        assert_eq!(r.status, 204, "{origin}: {}", r.text());
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("GET,HEAD,PUT,PATCH,POST,DELETE")
        );
        assert_eq!(
            r.header("access-control-allow-headers"),
            Some("authorization,content-type"),
            "reflected, as Backstage does when allowedHeaders is not set"
        );
        assert_eq!(
            r.header("vary"),
            Some("Origin, Access-Control-Request-Headers")
        );
    }
    // Over HTTP/2 too.
    let port = envoy.port.to_string();
    let r = h2(
        envoy.port,
        &[
            (":method", "OPTIONS"),
            (":path", &format!("/api/proxy/svc/x?{m}")),
            (":authority", &format!("127.0.0.1:{port}")),
            (":scheme", "http"),
            ("origin", APP),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization"),
        ],
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("authorization")
    );
    up.assert_never(&m);
    assert_eq!(
        envoy.counter("wasmcustom.backstage_proxy.cors_preflight"),
        4
    );
}

#[test]
fn an_origin_not_allowed_gets_no_cors_and_meets_the_credentials_check() {
    let up = Upstream::start(&[]);
    let envoy = gateway(&up, r#"{"origin":"http://localhost:3000"}"#);
    let m = unique();
    for origin in [
        "http://localhost:3001",
        "http://evil.example",
        "http://localhost:3000.evil.example",
        "null",
    ] {
        let r = envoy.request(
            "OPTIONS",
            &format!("/api/proxy/svc/x?{m}"),
            &[
                ("origin", origin),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "authorization"),
            ],
        );
        assert_eq!(r.status, 401, "{origin}");
        assert_eq!(r.header("access-control-allow-origin"), None, "{origin}");
        assert_eq!(r.header("access-control-allow-headers"), None, "{origin}");
        let r = envoy.request(
            "GET",
            &format!("/api/proxy/svc/x?{m}"),
            &[
                ("origin", origin),
                ("authorization", &format!("Bearer {TOKEN}")),
            ],
        );
        assert_eq!(r.status, 200, "the request itself is the server's to serve");
        assert_eq!(r.header("access-control-allow-origin"), None, "{origin}");
    }
}

#[test]
fn every_response_the_app_reads_carries_the_allow_origin() {
    // The upstream sends its own CORS headers: the endpoint's allow-list
    // strips them, as Backstage's does, and the gateway's policy applies.
    let up = Upstream::start(&[
        ("access-control-allow-origin", "*"),
        ("access-control-expose-headers", "x-secret"),
    ]);
    let envoy = gateway(
        &up,
        r#"{"origin":"http://localhost:3000","credentials":true,"exposedHeaders":["Link"]}"#,
    );
    let m = unique();
    let auth = format!("Bearer {TOKEN}");
    let cors = |r: &Response, what: &str| {
        assert_eq!(r.all("access-control-allow-origin"), [APP], "{what}");
        assert_eq!(
            r.header("access-control-allow-credentials"),
            Some("true"),
            "{what}"
        );
        assert_eq!(r.all("access-control-expose-headers"), ["Link"], "{what}");
        assert!(
            r.all("vary").contains(&"Origin"),
            "{what}: {:?}",
            r.all("vary")
        );
    };
    let r = envoy.request(
        "GET",
        &format!("/api/proxy/svc/x?{m}"),
        &[("origin", APP), ("authorization", &auth)],
    );
    assert_eq!(r.status, 200);
    cors(&r, "upstream response");
    assert!(up.find(&m).is_some());
    // The filter's 401 (a browser without a token must see it).
    let r = envoy.request("GET", &format!("/api/proxy/svc/x?{m}"), &[("origin", APP)]);
    assert_eq!(r.status, 401);
    cors(&r, "the filter's 401");
    // The filter's 405 and 400.
    let r = envoy.request(
        "TRACE",
        &format!("/api/proxy/svc/x?{m}"),
        &[("origin", APP), ("authorization", &auth)],
    );
    assert_eq!(r.status, 405);
    cors(&r, "the filter's 405");
    let r = envoy.request(
        "GET",
        "/api/proxy/svc/%2e%2e/x",
        &[("origin", APP), ("authorization", &auth)],
    );
    assert_eq!(r.status, 400);
    cors(&r, "the filter's 400");
    // Envoy's own local replies: upstream unreachable, no route.
    let r = envoy.request(
        "GET",
        "/api/proxy/down/x",
        &[("origin", APP), ("authorization", &auth)],
    );
    assert!(r.status >= 500, "{}", r.status);
    cors(&r, "Envoy's upstream failure");
    // Outside the prefix the gateway's other applications answer CORS
    // themselves (docs/cors.md): Envoy's 404 there carries none of ours.
    let r = envoy.request("GET", "/elsewhere", &[("origin", APP)]);
    assert_eq!(r.status, 404);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("access-control-allow-credentials"), None);
}

#[test]
fn without_backend_cors_there_is_no_cors_at_all() {
    let up = Upstream::start(&[]);
    let p = up.port;
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":"http://127.0.0.1:{p}"}}}},"backend":{{"auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{TOKEN}","subject":"ci"}}}}]}}}}}}"#
    );
    let envoy = Envoy::start(EnvoyOptions::new(config).cluster(cluster_for_port(p), p));
    let r = envoy.request(
        "OPTIONS",
        "/api/proxy/svc/x",
        &[("origin", APP), ("access-control-request-method", "GET")],
    );
    assert_eq!(
        r.status, 401,
        "Backstage: the preflight meets the auth barrier"
    );
    assert_eq!(r.header("access-control-allow-origin"), None);
}
