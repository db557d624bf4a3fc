//! `auth` (http-proxy's basic-auth option) against Backstage itself: the
//! same app-config served by the real Backstage proxy
//! (`@backstage/plugin-proxy-backend` in `examples/backstage`) and by the
//! gateway rendered from it, the same requests sent to both, and what
//! reaches the upstream compared (`docs/configuration.md#an-endpoint`).

mod common;

use std::path::Path;

use backstage_proxy_testkit::backstage::Backstage;
use backstage_proxy_testkit::{unique, Envoy, TempDir, Upstream};
use common::*;

const TOKEN: &str = "differential-static-token-01";

#[test]
fn auth_reaches_the_upstream_as_backstage_sends_it() {
    let up = Upstream::start(&[]);
    let endpoints = format!(
        r#"
backend:
  auth:
    externalAccess:
      - type: static
        options: {{ token: {TOKEN}, subject: ci }}
proxy:
  endpoints:
    /require: {{ target: "http://127.0.0.1:{p}/r", auth: "squ_token_51ab:" }}
    /forward: {{ target: "http://127.0.0.1:{p}/f", credentials: forward, auth: "squ_token_51ab:" }}
    /injected:
      target: http://127.0.0.1:{p}/i
      auth: "squ_token_51ab:"
      headers: {{ Authorization: "Token injected-value-77" }}
    /open: {{ target: "http://127.0.0.1:{p}/o", credentials: dangerously-allow-unauthenticated, auth: "user:pa ss:é" }}
    /open-allowed:
      target: http://127.0.0.1:{p}/oa
      credentials: dangerously-allow-unauthenticated
      allowedHeaders: [Authorization]
      auth: "squ_token_51ab:"
"#,
        p = up.port
    );
    let backstage = Backstage::start(&endpoints);
    let dir = TempDir::new("backstage-auth");
    let input = write(&dir.0, "app-config.yaml", &endpoints);
    let out = dir.0.join("envoy.yaml").display().to_string();
    let o = render_to(&input, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let envoy = Envoy::run_file(
        Path::new(&out),
        1,
        TempDir::new("backstage-auth-envoy"),
        &[],
        &[],
    )
    .unwrap_or_else(|(log, _)| panic!("{log}"));
    let bearer = format!("Bearer {TOKEN}");
    let cases: [(&str, Option<&str>); 7] = [
        ("/api/proxy/require/x", Some(&bearer)),
        ("/api/proxy/forward/x", Some(&bearer)),
        ("/api/proxy/injected/x", Some(&bearer)),
        ("/api/proxy/open/x", None),
        ("/api/proxy/open/x", Some(&bearer)),
        ("/api/proxy/open-allowed/x", Some(&bearer)),
        ("/api/proxy/open-allowed/x", None),
    ];
    let mut compared = 0;
    for (path, auth) in cases {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let (mb, mg) = (unique(), unique());
        let from_backstage = backstage.request("GET", &format!("{path}?{mb}"), &headers);
        let from_gateway = envoy.get(&format!("{path}?{mg}"), &headers).status;
        assert_eq!(from_gateway, from_backstage, "{path} {auth:?}: status");
        let (b, g) = (up.find(&mb), up.find(&mg));
        assert_eq!(
            b.is_some(),
            g.is_some(),
            "{path} {auth:?}: reached the upstream"
        );
        if let (Some(b), Some(g)) = (b, g) {
            assert_eq!(
                g.all("authorization"),
                b.all("authorization"),
                "{path} {auth:?}: the Authorization the upstream received"
            );
            if path == "/api/proxy/require/x" {
                // Buffer.from('squ_token_51ab:').toString('base64')
                assert_eq!(b.all("authorization"), ["Basic c3F1X3Rva2VuXzUxYWI6"]);
            }
            compared += 1;
        }
    }
    assert!(
        compared >= 6,
        "only {compared} requests reached the upstream"
    );
}
