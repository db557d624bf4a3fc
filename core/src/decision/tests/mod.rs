use super::*;
use crate::auth::AuthState;
use crate::config::parse;

const TOKEN: &str = "static-token-abc";

fn plan_with(endpoints: &str, auth_extra: &str) -> Plan {
    let cfg = format!(
        r#"{{"proxy":{{"endpoints":{endpoints}}},"backend":{{"baseUrl":"http://backstage:7007","auth":{{{auth_extra}"externalAccess":[
            {{"type":"static","options":{{"token":"{TOKEN}","subject":"ci"}}}},
            {{"type":"static","options":{{"token":"catalog-only-tok","subject":"bot"}},"accessRestrictions":[{{"plugin":"catalog"}}]}}]}}}}}}"#
    );
    parse(cfg.as_bytes(), &|_| Some("injected-secret".into())).unwrap()
}

fn plan() -> Plan {
    plan_with(
        r#"{
        "/simple": "http://upstream.test/base",
        "/forward": {"target":"http://upstream.test","credentials":"forward"},
        "/pub": {"target":"http://pub.test","credentials":"dangerously-allow-unauthenticated"},
        "/pub/priv": {"target":"http://priv.test","headers":{"Authorization":"Token ${X}"}},
        "/methods": {"target":"http://upstream.test","allowedMethods":["GET","DELETE"]},
        "/openget": {"target":"http://upstream.test","credentials":"dangerously-allow-unauthenticated","allowedMethods":["GET"],"allowedHeaders":["Authorization"]},
        "/keephost": {"target":"https://upstream.test:8443","changeOrigin":false},
        "/port": "https://upstream.test:8443/p",
        "/xfwd": {"target":"http://upstream.test","xfwd":true},
        "/inject": {"target":"http://upstream.test","headers":{"X-Api-Key":"k1","Host":"ignored.example"},"allowedHeaders":["X-Custom"]}
    }"#,
        "",
    )
}

struct Req {
    method: &'static str,
    path: &'static str,
    headers: Vec<(String, Vec<u8>)>,
}

fn req(method: &'static str, path: &'static str) -> Req {
    Req {
        method,
        path,
        headers: vec![(":authority".into(), b"gw.example:8080".to_vec())],
    }
}

impl Req {
    fn h(mut self, name: &str, value: &str) -> Req {
        self.headers
            .push((name.to_string(), value.as_bytes().to_vec()));
        self
    }
    fn bearer(self, t: &str) -> Req {
        self.h("authorization", &format!("Bearer {t}"))
    }
    fn decide(&self, plan: &Plan) -> Decision<'static> {
        let request = Request {
            method: self.method,
            path: Some(self.path),
            authority: "gw.example:8080",
            downstream_tls: false,
            headers: &header_view(&self.headers),
            client_address: Some("10.1.2.3:5555"),
            now_ms: 1_800_000_000_000,
        };
        decide(plan, &mut AuthState::new(plan), &request).into_owned()
    }
}

fn reply(d: Decision) -> Reply {
    match d {
        Decision::Reply { reply, .. } => reply,
        other => panic!("expected a local reply, got {other:?}"),
    }
}

fn fwd(d: Decision) -> Forward {
    match d {
        Decision::Forward(f) => f,
        other => panic!("expected forward, got {other:?}"),
    }
}

fn set<'a>(f: &'a Forward, name: &str) -> Option<&'a str> {
    f.set
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_ref())
}

fn body(r: &Reply) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn outside_the_prefix_passes_through_minus_the_cluster_header() {
    let p = plan();
    let d = req("GET", "/api/catalog/entities")
        .h("x-backstage-proxy-cluster", "evil")
        .decide(&p);
    assert_eq!(
        d,
        Decision::PassThrough {
            remove: vec![
                "x-backstage-proxy-cluster".into(),
                "x-backstage-proxy-cluster-xfwd".into(),
                "x-backstage-proxy-ratelimit-endpoint".into(),
                "x-backstage-proxy-ratelimit-principal".into(),
            ]
        }
    );
    assert!(matches!(
        req("GET", "/api/proxyx").decide(&p),
        Decision::PassThrough { .. }
    ));
}

#[test]
fn missing_credentials_is_backstages_401() {
    let r = reply(req("GET", "/api/proxy/simple/x?y=1").decide(&plan()));
    assert_eq!(r.status, 401);
    assert_eq!(
        String::from_utf8(r.body.clone()).unwrap(),
        r#"{"error":{"name":"AuthenticationError","message":"Missing credentials"},"request":{"method":"GET","url":"/api/proxy/simple/x?y=1"},"response":{"statusCode":401}}"#
    );
    assert_eq!(r.reason, Some(Reason::MissingCredentials));
    for bad in ["Basic abc", "Bearer a b", "Bearer"] {
        let r = reply(
            req("GET", "/api/proxy/simple")
                .h("authorization", bad)
                .decide(&plan()),
        );
        assert_eq!(body(&r)["error"]["message"], "Missing credentials", "{bad}");
    }
    // cookies and query tokens are not credentials
    let r = reply(
        req("GET", "/api/proxy/simple?access_token=static-token-abc")
            .h("cookie", "backstage-auth=static-token-abc")
            .decide(&plan()),
    );
    assert_eq!(r.status, 401);
}

#[test]
fn illegal_token_multiple_and_oversized() {
    let r = reply(
        req("GET", "/api/proxy/simple")
            .bearer("nope-nope")
            .decide(&plan()),
    );
    assert_eq!(
        (r.status, body(&r)["error"]["message"].as_str()),
        (401, Some("Illegal token"))
    );
    let r = reply(
        req("GET", "/api/proxy/simple")
            .bearer(TOKEN)
            .bearer(TOKEN)
            .decide(&plan()),
    );
    assert_eq!(
        (r.status, r.reason),
        (401, Some(Reason::MultipleCredentials))
    );
    let big = "a".repeat(16 * 1024 + 1);
    let r = Req {
        method: "GET",
        path: "/api/proxy/simple",
        headers: vec![("authorization".into(), format!("Bearer {big}").into_bytes())],
    }
    .decide(&plan());
    let r = reply(r);
    assert_eq!((r.status, r.reason), (401, Some(Reason::TokenTooLarge)));
}

#[test]
fn unknown_routes_401_then_404_and_404_when_the_policy_is_disabled() {
    let r = reply(req("GET", "/api/proxy/unknown/x").decide(&plan()));
    assert_eq!(r.status, 401);
    let r = reply(
        req("GET", "/api/proxy/unknown/x")
            .bearer(TOKEN)
            .decide(&plan()),
    );
    assert_eq!((r.status, r.body.len(), r.headers.len()), (404, 0, 0));
    let r = reply(req("GET", "/api/proxy").bearer(TOKEN).decide(&plan()));
    assert_eq!(r.status, 404);
    let p = plan_with(
        r#"{"/a":"http://t"}"#,
        r#""dangerouslyDisableDefaultAuthPolicy":true,"#,
    );
    assert_eq!(
        reply(req("GET", "/api/proxy/unknown").decide(&p)).status,
        404
    );
    let f = fwd(req("GET", "/api/proxy/a/x").bearer("garbage").decide(&p));
    assert!(
        f.remove.iter().any(|n| n == "authorization"),
        "require still strips the header"
    );
}

#[test]
fn an_open_parent_never_opens_a_protected_child() {
    for endpoints in [
        r#"{"/pub":{"target":"http://pub.test","credentials":"dangerously-allow-unauthenticated"},"/pub/priv":{"target":"http://priv.test","headers":{"Authorization":"Token x"}}}"#,
        r#"{"/pub/priv":{"target":"http://priv.test","headers":{"Authorization":"Token x"}},"/pub":{"target":"http://pub.test","credentials":"dangerously-allow-unauthenticated"}}"#,
    ] {
        let p = plan_with(endpoints, "");
        assert_eq!(
            reply(req("GET", "/api/proxy/pub/priv/x").decide(&p)).status,
            401
        );
        assert_eq!(
            reply(req("GET", "/api/proxy/PUB/Priv").decide(&p)).status,
            401
        );
        let f = fwd(req("GET", "/api/proxy/pub/priv/x").bearer(TOKEN).decide(&p));
        assert_eq!(set(&f, ":authority"), Some("priv.test"));
        assert_eq!(set(&f, "authorization"), Some("Token x"));
        let f = fwd(req("GET", "/api/proxy/pub/other").decide(&p));
        assert_eq!(set(&f, ":authority"), Some("pub.test"));
    }
}

#[test]
fn own_key_set_is_served_without_credentials() {
    for path in [
        "/api/proxy/.backstage/auth/v1/jwks.json",
        "/API/proxy/.backstage/auth/v1/JWKS.json?x=1",
    ] {
        let r = reply(req("GET", path).decide(&plan()));
        assert_eq!((r.status, r.body.as_slice()), (200, &br#"{"keys":[]}"#[..]));
        assert_eq!(r.reason, None);
    }
    assert_eq!(
        reply(req("POST", "/api/proxy/.backstage/auth/v1/jwks.json").decide(&plan())).status,
        401
    );
}

#[test]
fn unsafe_paths_are_400_before_anything_else() {
    for path in [
        "/api/proxy/pub/../simple",
        "/api/proxy/pub/%2e%2e/simple",
        "/api/proxy/simple/%00",
    ] {
        let r = reply(req("GET", path).bearer(TOKEN).decide(&plan()));
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(body(&r)["error"]["name"], "InputError");
    }
}

#[test]
fn methods_405_with_allow_after_credentials() {
    let p = plan();
    assert_eq!(
        reply(req("POST", "/api/proxy/methods").decide(&p)).status,
        401
    );
    let r = reply(req("POST", "/api/proxy/methods").bearer(TOKEN).decide(&p));
    assert_eq!(r.status, 405);
    assert!(r.headers.contains(&("allow".into(), "GET, DELETE".into())));
    assert_eq!(body(&r)["response"]["statusCode"], 405);
    for m in ["HEAD", "OPTIONS", "get"] {
        assert_eq!(
            reply(req(m, "/api/proxy/methods").bearer(TOKEN).decide(&p)).status,
            405,
            "{m}"
        );
    }
    fwd(req("DELETE", "/api/proxy/methods/x")
        .bearer(TOKEN)
        .decide(&p));
    // open endpoint: no credentials needed to learn the method is wrong
    assert_eq!(
        reply(req("PUT", "/api/proxy/openget").decide(&p)).status,
        405
    );
    // default: TRACE and CONNECT refused in any letter case (HTTP/2 lets a
    // client send `trace`), on every credentials policy; others (even
    // extension methods) forwarded
    for m in [
        "TRACE", "CONNECT", "trace", "Trace", "tRACE", "connect", "CoNNeCT",
    ] {
        for path in [
            "/api/proxy/simple",
            "/api/proxy/forward/x",
            "/api/proxy/pub",
        ] {
            let r = reply(req(m, path).bearer(TOKEN).decide(&p));
            assert_eq!(r.status, 405, "{m} {path}");
        }
    }
    // ...unless allowedMethods lists them, which stays exact
    let lists = plan_with(
        r#"{"/t": {"target":"http://up.test","allowedMethods":["TRACE"]}}"#,
        "",
    );
    fwd(req("TRACE", "/api/proxy/t").bearer(TOKEN).decide(&lists));
    assert_eq!(
        reply(req("trace", "/api/proxy/t").bearer(TOKEN).decide(&lists)).status,
        405
    );
    fwd(req("PROPFIND", "/api/proxy/simple")
        .bearer(TOKEN)
        .decide(&p));
}

#[test]
fn require_strips_authorization_forward_keeps_it() {
    let p = plan();
    let f = fwd(req("GET", "/api/proxy/simple/a").bearer(TOKEN).decide(&p));
    assert!(f.remove.iter().any(|n| n == "authorization"));
    assert_eq!(f.principal, Some(Principal::External("ci".into())));
    let f = fwd(req("GET", "/api/proxy/forward/a").bearer(TOKEN).decide(&p));
    assert!(!f.remove.iter().any(|n| n == "authorization"));
    assert_eq!(
        set(&f, "authorization"),
        None,
        "forwarded verbatim, not rewritten"
    );
    // open endpoint with Authorization allow-listed forwards whatever was sent
    let f = fwd(req("GET", "/api/proxy/openget")
        .bearer("not-valid")
        .decide(&p));
    assert!(!f.remove.iter().any(|n| n == "authorization"));
    assert_eq!(f.principal, None);
    // open endpoint without it strips
    let f = fwd(req("GET", "/api/proxy/pub").bearer("not-valid").decide(&p));
    assert!(f.remove.iter().any(|n| n == "authorization"));
}

#[test]
fn forward_sets_path_authority_cluster_and_injected_headers() {
    let p = plan();
    let f = fwd(req("GET", "/api/proxy/inject/a/b?c=d")
        .bearer(TOKEN)
        .h("x-api-key", "client-key")
        .h("x-custom", "1")
        .h("cookie", "a=b")
        .decide(&p));
    assert_eq!(set(&f, ":path"), Some("/a/b?c=d"));
    assert_eq!(
        set(&f, ":authority"),
        Some("upstream.test"),
        "changeOrigin wins over an injected Host"
    );
    assert_eq!(set(&f, "x-api-key"), Some("k1"));
    assert_eq!(
        set(&f, "x-backstage-proxy-cluster"),
        Some("http_upstream.test_80")
    );
    assert!(f.remove.iter().any(|n| n == "cookie"));
    assert!(!f.remove.iter().any(|n| n == "x-custom"));
    assert!(
        !f.remove.iter().any(|n| n == "x-api-key"),
        "set, not removed"
    );
    let f = fwd(req("GET", "/api/proxy/port/x").bearer(TOKEN).decide(&p));
    assert_eq!(set(&f, ":authority"), Some("upstream.test:8443"));
    assert_eq!(set(&f, ":path"), Some("/p/x"));
    assert_eq!(
        set(&f, "x-backstage-proxy-cluster"),
        Some("https_upstream.test_8443")
    );
    let f = fwd(req("GET", "/api/proxy/keephost/x").bearer(TOKEN).decide(&p));
    assert_eq!(
        set(&f, ":authority"),
        None,
        "changeOrigin false keeps the client's Host"
    );
}

#[test]
fn xfwd_headers_are_the_gateways_not_the_clients() {
    let p = plan();
    let f = fwd(req("GET", "/api/proxy/xfwd")
        .bearer(TOKEN)
        .h("x-forwarded-for", "6.6.6.6")
        .h("x-forwarded-host", "evil")
        .decide(&p));
    assert_eq!(set(&f, "x-forwarded-for"), Some("10.1.2.3"));
    assert_eq!(set(&f, "x-forwarded-host"), Some("gw.example:8080"));
    assert_eq!(set(&f, "x-forwarded-proto"), Some("http"));
    assert_eq!(set(&f, "x-forwarded-port"), Some("8080"));
    assert_eq!(set(&f, "x-backstage-proxy-cluster-xfwd"), Some("1"));
    let f = fwd(req("GET", "/api/proxy/simple")
        .bearer(TOKEN)
        .h("x-forwarded-for", "6.6.6.6")
        .h("x-forwarded-proto", "https")
        .decide(&p));
    assert!(f.remove.iter().any(|n| n == "x-forwarded-for"));
    assert!(
        !f.remove.iter().any(|n| n == "x-forwarded-proto"),
        "Envoy needs it to route; the route removes it"
    );
    assert_eq!(set(&f, "x-backstage-proxy-cluster-xfwd"), None);
    assert_eq!(strip_port("[::1]:80"), "::1");
    assert_eq!(strip_port("::1"), "::1");
    assert_eq!(authority_port("[::1]:8443"), Some("8443"));
    assert_eq!(authority_port("host"), None);
}

#[test]
fn access_restricted_static_token_is_403() {
    let r = reply(
        req("GET", "/api/proxy/simple/x")
            .bearer("catalog-only-tok")
            .decide(&plan()),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        r#"{"error":{"name":"NotAllowedError","message":"This token's access is restricted to plugin(s) 'catalog'"},"request":{"method":"GET","url":"/api/proxy/simple/x"},"response":{"statusCode":403}}"#
    );
}

#[test]
fn refused_rewrite_is_400() {
    let p = plan_with(
        r#"{"/r":{"target":"http://t/base","pathRewrite":{"^/api/proxy/r/":"//evil/"}}}"#,
        "",
    );
    let r = reply(req("GET", "/api/proxy/r/x").bearer(TOKEN).decide(&p));
    assert_eq!((r.status, r.reason), (400, Some(Reason::InvalidRewrite)));
}

#[test]
fn a_request_without_path_passes_through() {
    let p = plan();
    let request = Request {
        method: "CONNECT",
        path: None,
        authority: "x:443",
        downstream_tls: false,
        headers: &[],
        client_address: None,
        now_ms: 0,
    };
    assert!(matches!(
        decide(&p, &mut AuthState::new(&p), &request),
        Decision::PassThrough { .. }
    ));
}

#[test]
fn response_policy_uses_the_endpoint() {
    let p = plan();
    let idx = p.endpoints.iter().position(|e| e.key == "/inject").unwrap();
    let removed = response_removals(
        &p,
        idx,
        [
            "set-cookie",
            "x-custom",
            "x-api-key",
            "content-type",
            "location",
        ]
        .into_iter(),
    );
    assert_eq!(removed, ["set-cookie", "x-api-key", "location"]);
}

#[test]
fn upgrades_only_for_ws_endpoints() {
    let p = plan_with(
        r#"{"/ws":{"target":"http://t","ws":true},"/plain":"http://t"}"#,
        "",
    );
    let f = fwd(req("GET", "/api/proxy/ws/x")
        .bearer(TOKEN)
        .h("upgrade", "websocket")
        .h("sec-websocket-key", "k")
        .decide(&p));
    assert!(
        !f.remove.iter().any(|n| n == "upgrade")
            && !f.remove.iter().any(|n| n == "sec-websocket-key")
    );
    assert_eq!(
        reply(
            req("GET", "/api/proxy/ws/x")
                .h("upgrade", "websocket")
                .decide(&p)
        )
        .status,
        401
    );
    let r = reply(
        req("GET", "/api/proxy/plain")
            .bearer(TOKEN)
            .h("upgrade", "websocket")
            .decide(&p),
    );
    assert_eq!((r.status, r.reason), (403, Some(Reason::UpgradeNotAllowed)));
}

/// The status `decision::handle` answers a request with (200 when it goes
/// on, 0 while it waits for a key set), budgets counted in `shared`.
fn handled_status(
    p: &Plan,
    shared: &mut crate::shared_data::InMemory,
    method: &'static str,
    path: &'static str,
    token: &str,
) -> u16 {
    use crate::decision::{handle, Verdict};
    let r = req(method, path).bearer(token);
    let request = Request {
        method,
        path: Some(path),
        authority: "gw",
        downstream_tls: false,
        headers: &header_view(&r.headers),
        client_address: None,
        now_ms: 1_800_000_000_000,
    };
    match handle(p, &mut AuthState::new(p), shared, &request) {
        Verdict::Continue(_) => 200,
        Verdict::Answer(a) => a.reply.status,
        Verdict::Wait(_) | Verdict::Ask(_) => 0,
    }
}

mod landing;
mod order;
mod permissions;
mod upstream;
