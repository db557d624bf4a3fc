//! The upstream path and what reaches it: paths that read as another host,
//! `x-forwarded-proto`, nested targets, query tokens, the authority.

use super::*;

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Issue class: the path the upstream receives is judged, not only the one
/// that arrived. `/\evil.example/a` reaches Node's `new URL` and browsers
/// as `//evil.example/a`; a `pathRewrite` that moves query text into the
/// path must not smuggle dot segments past the check.
#[test]
fn upstream_paths_that_read_as_another_host_or_climb_are_refused() {
    let p = plan_with(
        r#"{
        "/x": {"target":"http://up.test","credentials":"dangerously-allow-unauthenticated"},
        "/based": {"target":"http://up.test/base","credentials":"dangerously-allow-unauthenticated"},
        "/rw": {"target":"http://up.test","credentials":"dangerously-allow-unauthenticated","pathRewrite":{"^/api/proxy/rw/\\?to=(.*)$":"/$1"}},
        "/rwb": {"target":"http://up.test/base","credentials":"dangerously-allow-unauthenticated","pathRewrite":{"^/api/proxy/rwb/\\?to=(.*)$":"/$1"}}
    }"#,
        "",
    );
    let refused = |path: String| {
        let r = reply(req("GET", leak(path.clone())).decide(&p));
        assert_eq!(r.status, 400, "{path}");
    };
    for sep in ["\\", "%5C", "%5c", "%2F", "%2f"] {
        for path in [
            format!("/api/proxy/x/{sep}evil.example/a"),
            format!("/api/proxy/X/{sep}evil.example/a"),
            format!("/api/proxy/x/{sep}{sep}evil.example"),
            format!("/api/proxy/rw/?to={sep}evil.example/a"),
            format!("/api/proxy/rw/?to=/{sep}evil.example"),
        ] {
            refused(path);
        }
    }
    for climb in [
        "/base/../../admin",
        "%2e%2e/admin",
        "%2E%2E%2Fadmin",
        "..%5cadmin",
        "a/.;x/b",
        ".",
    ] {
        refused(format!("/api/proxy/rw/?to={climb}"));
        refused(format!("/api/proxy/rwb/?to={climb}"));
    }
    // The same text behind a base path is an ordinary segment; plain
    // rewrites and encoded slashes inside the path still pass (GitLab's
    // `/projects/group%2Fproject` is among the most common targets).
    let f = fwd(req("GET", "/api/proxy/based/\\evil.example/a").decide(&p));
    assert_eq!(set(&f, ":path"), Some("/base/\\evil.example/a"));
    let f = fwd(req("GET", "/api/proxy/x/projects/group%2Fproject").decide(&p));
    assert_eq!(set(&f, ":path"), Some("/projects/group%2Fproject"));
    let f = fwd(req("GET", "/api/proxy/rw/?to=v4/projects").decide(&p));
    assert_eq!(set(&f, ":path"), Some("/v4/projects"));
}

/// Issue class: `x-forwarded-proto` comes from the connection. Over
/// cleartext HTTP/2 a client sets `:scheme: https` at will; neither it nor a
/// client `x-forwarded-proto` may reach the upstream as the gateway's word.
#[test]
fn x_forwarded_proto_comes_from_the_connection_never_from_scheme() {
    let p = plan();
    let headers: Vec<(String, Vec<u8>)> = vec![
        (":scheme".into(), b"https".to_vec()),
        (":authority".into(), b"gw.example".to_vec()),
        ("x-forwarded-proto".into(), b"https".to_vec()),
        (
            "authorization".into(),
            format!("Bearer {TOKEN}").into_bytes(),
        ),
    ];
    for (tls, proto, port) in [(false, "http", "80"), (true, "https", "443")] {
        let request = Request {
            method: "GET",
            path: Some("/api/proxy/xfwd/a"),
            authority: "gw.example",
            downstream_tls: tls,
            headers: &header_view(&headers),
            client_address: Some("10.1.2.3:5555"),
            now_ms: 1_800_000_000_000,
        };
        let f = fwd(decide(&p, &mut AuthState::new(&p), &request).into_owned());
        assert_eq!(set(&f, "x-forwarded-proto"), Some(proto), "tls={tls}");
        assert_eq!(set(&f, "x-forwarded-port"), Some(port), "tls={tls}");
    }
}

/// Issue class (`docs/contract.md#4-credentials-per-endpoint`,
/// `docs/behaviour.md#deviations-from-backstage`): an open endpoint whose target
/// contains a protected endpoint's target must not reach the protected
/// path by another spelling that common upstreams decode or strip.
#[test]
fn an_open_endpoint_does_not_open_a_nested_protected_target() {
    let p = plan_with(
        r#"{
        "/files": {"target":"http://up.test/files","credentials":"dangerously-allow-unauthenticated"},
        "/files/admin": {"target":"http://up.test/files/admin"},
        "/root": {"target":"http://up.test","credentials":"dangerously-allow-unauthenticated","pathRewrite":{"^/api/proxy/root/(.*)$":"/files/$1"}},
        "/same-a": {"target":"http://same.test/x","credentials":"dangerously-allow-unauthenticated"},
        "/same-b": {"target":"http://same.test/x"},
        "/other-port": {"target":"http://up.test:8080/files","credentials":"dangerously-allow-unauthenticated"}
    }"#,
        "",
    );
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("proxy.endpoints./files:") && w.contains("'/files/admin'")),
        "{:?}",
        p.warnings
    );
    for path in [
        "/api/proxy/files/admin/x",
        "/api/proxy/files/admin",
        "/api/proxy/files/%61dmin/x",
        "/api/proxy/files/%61%64%6D%69%6E",
        "/api/proxy/files/admin%2Fx",
        "/api/proxy/files/admin%2fx",
        "/api/proxy/files/admin;v=1/x",
        "/api/proxy/files/admin;/x",
        "/api/proxy/files/ADMIN/x",
        "/api/proxy/files//admin/x",
        "/api/proxy/files/%2Fadmin/x",
        "/api/proxy/root/admin/x",
        "/api/proxy/root/%61dmin",
    ] {
        let r = reply(req("GET", path).decide(&p));
        assert_eq!(r.status, 401, "{path}");
        let f = fwd(req("GET", path).bearer(TOKEN).decide(&p));
        assert!(
            f.principal.is_some(),
            "{path}: authenticated with the nested endpoint's credentials"
        );
    }
    // Not under the protected target: stays open.
    for path in [
        "/api/proxy/files/administrator/x",
        "/api/proxy/files/other/admin",
        "/api/proxy/files/%2561dmin",
        "/api/proxy/root/other",
        "/api/proxy/same-a/anything",
        "/api/proxy/other-port/admin/x",
    ] {
        let f = fwd(req("GET", path).decide(&p));
        assert_eq!(f.principal, None, "{path}");
    }
    // Every endpoint open (dangerouslyDisableDefaultAuthPolicy): nothing nests.
    let all_open = plan_with(
        r#"{"/f": {"target":"http://up.test/files","credentials":"dangerously-allow-unauthenticated"},
            "/f/a": {"target":"http://up.test/files/admin"}}"#,
        r#""dangerouslyDisableDefaultAuthPolicy":true,"#,
    );
    assert!(all_open.nested_stricter.iter().all(Vec::is_empty));
    fwd(req("GET", "/api/proxy/f/admin").decide(&all_open));
}

/// `?access_token=` is never a credential here (`docs/contract.md#reading-the-credential`), and the 401 body
/// reflects `request.url` as sent, as Backstage's does: the client already
/// holds what it sent, and nothing else (logs, other users) sees the body.
/// Decided: parity with Backstage, no redaction.
#[test]
fn a_query_token_is_no_credential_and_the_url_is_reflected_as_backstage_does() {
    let p = plan();
    let url = format!("/api/proxy/simple/x?access_token={TOKEN}&y=1");
    let r = reply(req("GET", leak(url.clone())).decide(&p));
    assert_eq!(r.status, 401);
    assert_eq!(body(&r)["error"]["message"], "Missing credentials");
    assert_eq!(body(&r)["request"]["url"], url.as_str());
}

#[test]
fn with_authority_rewrite_by_route_the_filter_leaves_authority_alone() {
    // Istio and Envoy Gateway re-select the virtual host by :authority after
    // the filter's edits: there the route rewrites it, the filter does not.
    let cfg = format!(
        r#"{{"gateway":{{"authorityRewrite":"route"}},"proxy":{{"endpoints":{{"/a":"https://upstream.test:8443/p","/b":{{"target":"http://b.test","headers":{{"Host":"h.example"}},"changeOrigin":false}}}}}},
            "backend":{{"auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{TOKEN}","subject":"ci"}}}}]}}}}}}"#
    );
    let p = parse(cfg.as_bytes(), &|_| None).unwrap();
    for path in ["/api/proxy/a/x", "/api/proxy/b/x"] {
        let f = fwd(req("GET", path).bearer(TOKEN).decide(&p));
        assert_eq!(set(&f, ":authority"), None, "{path}");
        assert!(set(&f, "x-backstage-proxy-cluster").is_some());
        assert!(!f.remove.iter().any(|n| n == "host" || n == ":authority"));
    }
    let bad = br#"{"gateway":{"authorityRewrite":"envoy"}}"#;
    let errs = parse(bad, &|_| None).unwrap_err();
    assert_eq!(errs[0].path, "gateway.authorityRewrite");
}

#[test]
fn an_access_policy_refuses_others_with_403_and_always_needs_credentials() {
    for disable in ["", r#""dangerouslyDisableDefaultAuthPolicy":true,"#] {
        let cfg = format!(
            r#"{{"gateway":{{"access":{{"/pd":{{"allow":["subject:ci"],"rules":[{{"methods":["DELETE"],"path":"/incidents","allow":["user"]}}]}}}}}},
                "proxy":{{"endpoints":{{"/pd":"http://pd.test"}}}},
                "backend":{{"auth":{{{disable}"externalAccess":[
                    {{"type":"static","options":{{"token":"{TOKEN}","subject":"ci"}}}},
                    {{"type":"static","options":{{"token":"bot-token-123456","subject":"bot"}}}}]}}}}}}"#
        );
        let p = parse(cfg.as_bytes(), &|_| None).unwrap();
        fwd(req("GET", "/api/proxy/pd/x").bearer(TOKEN).decide(&p));
        let r = reply(
            req("GET", "/api/proxy/pd/x")
                .bearer("bot-token-123456")
                .decide(&p),
        );
        assert_eq!(r.status, 403);
        assert_eq!(r.reason, Some(Reason::NotAllowedByPolicy));
        let b = body(&r);
        assert_eq!(b["error"]["name"], "NotAllowedError");
        assert_eq!(b["response"]["statusCode"], 403);
        assert_eq!(b["request"]["url"], "/api/proxy/pd/x");
        // A policy needs a principal, whatever the default policy says.
        let r = reply(req("GET", "/api/proxy/pd/x").decide(&p));
        assert_eq!(r.status, 401, "{disable}");
        // The rule, in any spelling of its path.
        for path in [
            "/api/proxy/pd/incidents/1",
            "/api/proxy/pd/%69ncidents",
            "/api/proxy/PD/Incidents;a=b",
        ] {
            let r = reply(req("DELETE", path).bearer(TOKEN).decide(&p));
            assert_eq!(r.status, 403, "{path}");
        }
        fwd(req("DELETE", "/api/proxy/pd/other")
            .bearer(TOKEN)
            .decide(&p));
    }
}

/// `auth` (http-proxy's basic-auth option) reaches the upstream as Node
/// sends it: `Basic` credentials only when nothing else leaves an
/// Authorization on the outgoing request (the caller's forwarded token or
/// an injected header win), and never next to a second Authorization.
#[test]
fn auth_is_sent_only_where_the_outgoing_request_has_no_authorization() {
    // Buffer.from('squ_abc:').toString('base64') is 'c3F1X2FiYzo='.
    let basic = "Basic c3F1X2FiYzo=";
    let p = plan_with(
        r#"{
        "/require": {"target":"http://up.test","auth":"squ_abc:"},
        "/forward": {"target":"http://up.test","auth":"squ_abc:","credentials":"forward"},
        "/injected": {"target":"http://up.test","auth":"squ_abc:","headers":{"Authorization":"Token t"}},
        "/open": {"target":"http://up.test","auth":"squ_abc:","credentials":"dangerously-allow-unauthenticated"},
        "/open-allowed": {"target":"http://up.test","auth":"squ_abc:","credentials":"dangerously-allow-unauthenticated","allowedHeaders":["Authorization"]}
    }"#,
        "",
    );
    let bearer = format!("Bearer {TOKEN}");
    let cases: [(&'static str, Option<&str>, Option<&str>); 7] = [
        // The gateway's credential is removed; Node adds the Basic one.
        ("/api/proxy/require/x", Some(&bearer), Some(basic)),
        // The caller's token is forwarded; Node adds nothing.
        ("/api/proxy/forward/x", Some(&bearer), None),
        // The injected header wins (http-proxy sets it first).
        ("/api/proxy/injected/x", Some(&bearer), Some("Token t")),
        ("/api/proxy/open/x", None, Some(basic)),
        // Not allowed through: removed, then Basic.
        (
            "/api/proxy/open/x",
            Some("Bearer client-value"),
            Some(basic),
        ),
        // Allowed through: the caller's own wins.
        (
            "/api/proxy/open-allowed/x",
            Some("Bearer client-value"),
            None,
        ),
        ("/api/proxy/open-allowed/x", None, Some(basic)),
    ];
    for (path, sent, want_set) in cases {
        let r = match sent {
            Some(v) => req("GET", path).h("authorization", v),
            None => req("GET", path),
        };
        let f = fwd(r.decide(&p));
        let set_auth: Vec<&str> = f
            .set
            .iter()
            .filter(|(n, _)| n == "authorization")
            .map(|(_, v)| v.as_ref())
            .collect();
        assert_eq!(
            set_auth,
            want_set.into_iter().collect::<Vec<_>>(),
            "{path} {sent:?}"
        );
        // Exactly one Authorization leaves: ours (set replaces), or the
        // caller's where it is not removed.
        let removed = f.remove.iter().any(|n| n == "authorization");
        let callers_kept = sent.is_some() && !removed;
        assert!(set_auth.len() <= 1, "{path} {sent:?}");
        let leaving = if set_auth.is_empty() {
            usize::from(callers_kept)
        } else {
            1
        };
        assert_eq!(leaving, 1, "{path} {sent:?}");
    }
}
