//! The policy classes of `docs/security.md` (N), decided in real Envoy over
//! HTTP/1.1 and HTTP/2: one reading of where a request lands for access
//! and budgets in every spelling servers accept, rule methods as servers
//! compare them, budgets that one caller cannot drain for everyone, CORS
//! only under the prefix, the `null` origin, `Vary`, descriptor headers,
//! and an access log a principal cannot disguise itself in.

use backstage_proxy_testkit as support;

use support::*;

const CI: &str = "policies-token-ci-000001";
const OPS: &str = "policies-token-ops-00001";
const DISGUISED: &str = "policies-token-bidi-0001";
const APP: &str = "https://app.example.com";

struct Gw {
    envoy: Envoy,
    up: Upstream,
    log: std::path::PathBuf,
    _dir: TempDir,
}

fn gateway() -> Gw {
    let up = Upstream::start(&[("vary", "Accept-Encoding")]);
    let p = up.port;
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{
              "/files":{{"target":"http://127.0.0.1:{p}/files","allowedHeaders":["Vary","x-backstage-proxy-ratelimit-principal"]}},
              "/admin":"http://127.0.0.1:{p}/files/admin",
              "/m":"http://127.0.0.1:{p}/m",
              "/pd":"http://127.0.0.1:{p}/pd"}}}},
            "backend":{{"cors":{{"origin":["{APP}","https://*.example.org"],"credentials":true}},
              "auth":{{"externalAccess":[
                {{"type":"static","options":{{"token":"{CI}","subject":"ci"}}}},
                {{"type":"static","options":{{"token":"{OPS}","subject":"ops"}}}},
                {{"type":"static","options":{{"token":"{DISGUISED}","subject":"ops\u202egnirts"}}}}]}}}},
            "gateway":{{
              "access":{{
                "/admin":{{"allow":["subject:ops"],"rules":[{{"path":"/public","allow":["subject:ci"]}}]}},
                "/m":{{"allow":["subject:ci","subject:ops"],"rules":[{{"methods":["POST"],"allow":["subject:ops"]}},{{"methods":["GET"],"path":"/reports","allow":["subject:ops"]}}]}}}},
              "rateLimits":{{"/pd":{{"perPrincipal":{{"requests":2,"seconds":3600}},"total":{{"requests":5,"seconds":3600}}}}}}}}}}"#
    );
    let dir = TempDir::new("policies");
    let log = dir.0.join("access.log");
    let mut opts = EnvoyOptions::new(config).cluster(cluster_for_port(p), p);
    opts.access_log = Some(log.clone());
    Gw {
        envoy: Envoy::start(opts),
        up,
        log,
        _dir: dir,
    }
}

/// One request over HTTP/1.1 (raw, so any spelling of the path goes as
/// written) and the same over HTTP/2: the two statuses, and whether each
/// reached the upstream.
fn both(g: &Gw, method: &str, path: &str, token: &str) -> [(u16, bool); 2] {
    let m1 = unique();
    let raw = format!(
        "{method} {path}{sep}{m1} HTTP/1.1\r\nhost: gw.test\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n",
        sep = if path.contains('?') { "&" } else { "?" }
    );
    let h1 = http(g.envoy.port, &raw).unwrap();
    let m2 = unique();
    let bearer = format!("Bearer {token}");
    let target = format!("{path}{}{m2}", if path.contains('?') { "&" } else { "?" });
    let h2r = h2(
        g.envoy.port,
        &[
            (":method", method),
            (":scheme", "http"),
            (":authority", "gw.test"),
            (":path", &target),
            ("authorization", &bearer),
        ],
    );
    [
        (h1.status, g.up.find(&m1).is_some()),
        (h2r.status, g.up.find(&m2).is_some()),
    ]
}

#[test]
fn n12_a_policy_holds_in_every_spelling_whichever_endpoint_the_request_came_through() {
    let g = gateway();
    for path in [
        "/api/proxy/files/admin/secret",
        "/api/proxy/files/admin%5Csecret",
        "/api/proxy/files/admin%5csecret",
        "/api/proxy/files/admin\\secret",
        "/api/proxy/files/ADMIN/secret",
        "/api/proxy/files/adm%69n/secret",
        "/api/proxy/files/adm%C4%B1n/secret",
        "/api/proxy/files/adm%C4%B0n/secret",
        "/api/proxy/files//admin/secret",
        "/api/proxy/files/admin;x=1/secret",
    ] {
        for (status, reached) in both(&g, "GET", path, CI) {
            assert_eq!((status, reached), (403, false), "ci {path}");
        }
        for (status, reached) in both(&g, "GET", path, OPS) {
            assert_eq!((status, reached), (200, true), "ops {path}");
        }
    }
    // The policy's rule is read below its own target, whichever way in.
    for path in [
        "/api/proxy/admin/public/x",
        "/api/proxy/files/admin/public/x",
    ] {
        for (status, _) in both(&g, "GET", path, CI) {
            assert_eq!(status, 200, "{path}");
        }
    }
    // Beside the inner target, the outer endpoint is as open as it is.
    for (status, _) in both(&g, "GET", "/api/proxy/files/administrator", CI) {
        assert_eq!(status, 200);
    }
}

#[test]
fn n13_rule_methods_hold_in_any_letter_case_and_get_for_head() {
    let g = gateway();
    for method in ["POST", "post", "Post"] {
        let [h1, h2r] = both(&g, method, "/api/proxy/m/incidents", CI);
        // HTTP/1.1 methods are case-sensitive tokens; Envoy passes `post`
        // on, and the rule holds for it as servers that compare methods
        // ignoring case would run their POST handler.
        assert_eq!(h2r, (403, false), "h2 {method}");
        assert!(h1 == (403, false) || h1.0 == 400, "h1 {method}: {h1:?}");
        assert_eq!(
            both(&g, method, "/api/proxy/m/incidents", OPS)[1],
            (200, true),
            "h2 {method}"
        );
    }
    for method in ["GET", "HEAD", "head"] {
        assert_eq!(
            both(&g, method, "/api/proxy/m/reports", CI)[1].0,
            403,
            "h2 {method}"
        );
    }
    assert_eq!(both(&g, "GET", "/api/proxy/m/other", CI)[1].0, 200);
}

#[test]
fn n14_one_caller_over_its_budget_cannot_lock_everyone_out() {
    let g = gateway();
    let call = |token: &str| {
        let m = unique();
        let r = g.envoy.get(
            &format!("/api/proxy/pd/x?{m}"),
            &[("authorization", &format!("Bearer {token}"))],
        );
        (r, m)
    };
    // ci's own budget is 2; its 28 refused requests spend nothing.
    for i in 0..30 {
        let (r, m) = call(CI);
        if i < 2 {
            assert_eq!(r.status, 200, "ci {i}");
        } else {
            assert_eq!(r.status, 429, "ci {i}");
            assert!(r.header("retry-after").is_some());
            g.up.assert_never(&m);
        }
    }
    // The total (5) still holds 3 for the others (2 each at most), then
    // it is spent for everyone.
    for (i, token) in [OPS, OPS, DISGUISED].iter().enumerate() {
        assert_eq!(call(token).0.status, 200, "other {i}");
    }
    assert_eq!(call(DISGUISED).0.status, 429);
    assert_eq!(
        g.envoy
            .counter("wasmcustom.backstage_proxy.endpoint.pd.denied.rate_limited"),
        29
    );
}

#[test]
fn n15_cors_only_under_the_prefix_null_only_by_name_vary_merged() {
    let g = gateway();
    let preflight = |path: &str, origin: &str| {
        g.envoy.request(
            "OPTIONS",
            path,
            &[
                ("origin", origin),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "authorization"),
            ],
        )
    };
    let r = preflight("/api/proxy/files/x", APP);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    // Another application's preflight is its own.
    for path in ["/elsewhere/x", "/api/proxyx/files", "/"] {
        let r = preflight(path, APP);
        assert_ne!(r.status, 204, "{path}");
        assert_eq!(r.header("access-control-allow-origin"), None, "{path}");
        assert_eq!(r.header("access-control-allow-credentials"), None, "{path}");
    }
    // The null origin is not a pattern's: no CORS, the credentials check.
    let r = preflight("/api/proxy/files/x", "null");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("access-control-allow-origin"), None);
    // The upstream's Vary keeps CORS's Origin beside it.
    let r = g.envoy.get(
        "/api/proxy/files/x",
        &[("authorization", &format!("Bearer {CI}")), ("origin", APP)],
    );
    assert_eq!(r.status, 200);
    let vary = r.all("vary").join(", ").to_ascii_lowercase();
    assert!(
        vary.contains("accept-encoding") && vary.contains("origin"),
        "{vary}"
    );
}

#[test]
fn n16_descriptor_headers_never_pass_and_the_log_shows_principals_as_they_are() {
    let g = gateway();
    let m = unique();
    let r = g.envoy.get(
        &format!("/api/proxy/files/x?{m}"),
        &[
            ("authorization", &format!("Bearer {DISGUISED}")),
            (
                "x-backstage-proxy-ratelimit-principal",
                "user:default/victim",
            ),
        ],
    );
    assert_eq!(r.status, 200);
    let seen = g.up.find(&m).unwrap();
    assert_eq!(seen.header("x-backstage-proxy-ratelimit-principal"), None);
    let text = wait_for_lines(&g.log, 1);
    assert!(
        !text.contains('\u{202e}'),
        "a raw bidi control in the log: {text}"
    );
    let line: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["decision"] == "allowed")
        .unwrap();
    assert_eq!(line["principal"], "ops\\u{202e}gnirts");
}
