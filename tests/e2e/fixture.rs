//! The suite's shared gateway: one Envoy, two recording upstreams and a
//! port with nothing listening, with an endpoint for each rule, and the
//! requests the tests send through it.

use std::sync::OnceLock;

use backstage_proxy_testkit::*;

pub const TOKEN: &str = "static-token-0123456789";
pub const LEGACY_SECRET: &[u8] = b"legacy-shared-secret-for-tests-0";
pub const API_KEY: &str = "vm-env-api-key-value";
pub const UPSTREAM_TOKEN: &str = "vm-env-upstream-token";

pub struct Fixture {
    pub envoy: Envoy,
    pub a: Upstream,
    pub b: Upstream,
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let a = Upstream::start(&[
            ("set-cookie", "a=1; Path=/"),
            ("set-cookie", "b=2; Path=/"),
            ("x-upstream-internal", "secret-internal"),
            ("cache-control", "no-store"),
            ("location", "/elsewhere"),
            ("server", "upstream-server"),
        ]);
        let b = Upstream::start(&[]);
        // A port with nothing listening: the upstream-down case.
        let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (ap, bp) = (a.port, b.port);
        let config = format!(
            r#"{{
          "proxy": {{
            "endpoints": {{
              "/simple": "http://127.0.0.1:{ap}/base",
              "noslash": "http://127.0.0.1:{ap}/noslash",
              "/forward": {{ "target": "http://127.0.0.1:{ap}", "credentials": "forward" }},
              "/open": {{ "target": "http://127.0.0.1:{ap}/open", "credentials": "dangerously-allow-unauthenticated" }},
              "/open/priv": {{ "target": "http://127.0.0.1:{bp}/priv", "headers": {{ "Authorization": "Token ${{UPSTREAM_TOKEN}}" }} }},
              "/open-fwd": {{ "target": "http://127.0.0.1:{ap}", "credentials": "dangerously-allow-unauthenticated", "allowedHeaders": ["Authorization"] }},
              "/methods": {{ "target": "http://127.0.0.1:{ap}", "allowedMethods": ["GET", "DELETE"] }},
              "/headers": {{ "target": "http://127.0.0.1:{ap}", "headers": {{ "X-Api-Key": "${{API_KEY}}" }}, "allowedHeaders": ["X-Custom", "Set-Cookie"] }},
              "/rewrite": {{ "target": "http://127.0.0.1:{ap}/t", "pathRewrite": {{ "^/api/proxy/rewrite/a/": "/AAA/", "^/api/proxy/rewrite/(\\w+)/": "/BBB/$1/" }} }},
              "/nested": "http://127.0.0.1:{ap}/outer",
              "/nested/inner": "http://127.0.0.1:{bp}/inner",
              "/keephost": {{ "target": "http://127.0.0.1:{ap}", "changeOrigin": false }},
              "/xfwd": {{ "target": "http://127.0.0.1:{ap}", "xfwd": true }},
              "/ws": {{ "target": "http://127.0.0.1:{ap}/sock", "ws": true }},
              "/down": "http://127.0.0.1:{down}",
              "/query": "http://127.0.0.1:{ap}/q?k=v"
            }}
          }},
          "backend": {{
            "baseUrl": "http://127.0.0.1:7007",
            "auth": {{
              "keys": [{{ "secret": "{legacy}" }}],
              "externalAccess": [
                {{ "type": "static", "options": {{ "token": "{TOKEN}", "subject": "ci" }} }},
                {{ "type": "static", "options": {{ "token": "catalog-only-token", "subject": "bot" }}, "accessRestrictions": [{{ "plugin": "catalog" }}] }}
              ]
            }}
          }}
        }}"#,
            legacy = b64url(LEGACY_SECRET),
        );
        let envoy = Envoy::start(
            EnvoyOptions::new(config)
                .cluster(cluster_for_port(ap), ap)
                .cluster(cluster_for_port(bp), bp)
                .cluster(cluster_for_port(down), down)
                .env("API_KEY", API_KEY)
                .env("UPSTREAM_TOKEN", UPSTREAM_TOKEN),
        );
        Fixture { envoy, a, b }
    })
}

pub fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

pub fn auth() -> (&'static str, String) {
    ("authorization", bearer(TOKEN))
}

pub fn get(path: &str, headers: &[(&str, &str)]) -> Response {
    fixture().envoy.get(path, headers)
}

pub fn get_auth(path: &str) -> Response {
    let (n, v) = auth();
    get(path, &[(n, &v)])
}

pub fn upstream_a(mark: &str) -> Seen {
    fixture()
        .a
        .find(mark)
        .unwrap_or_else(|| panic!("upstream A never saw {mark}"))
}
