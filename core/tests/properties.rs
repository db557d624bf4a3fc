//! Property tests of the core's invariants (the fuzz targets in fuzz/ check
//! the same ones without a time limit).
//!
//! - Any request is refused, passed through, or forwarded to the cluster of
//!   the endpoint whose key prefixes its path, under that target's base path;
//!   never another endpoint's.
//! - A forwarded path never holds a dot segment, raw or encoded.
//! - No input makes the configuration parser, the token parser, the key-set
//!   parser or the decision panic.

use backstage_proxy_core::auth::{self, AuthState};
use backstage_proxy_core::config::{parse, Plan};
use backstage_proxy_core::decision::{decide, header_view, Decision, Request};
use proptest::prelude::*;

const TOKEN: &str = "static-token-0123456789";

fn plan() -> Plan {
    let cfg = format!(
        r#"{{"proxy":{{"endpoints":{{
            "/pub":{{"target":"http://pub.test/p","credentials":"dangerously-allow-unauthenticated"}},
            "/pub/priv":"http://priv.test/secret",
            "/a":"http://a.test/base-a",
            "/a/b":"http://ab.test/base-ab",
            "/r":{{"target":"http://r.test/base-r","pathRewrite":{{"^/api/proxy/r/(\\w+)":"/x/$1"}}}}
        }}}},"backend":{{"auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{TOKEN}","subject":"ci"}}}}]}}}}}}"#
    );
    parse(cfg.as_bytes(), &|_| None).unwrap()
}

/// Path segments that exercise matching, case, encodings and traversal.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("api".to_string()),
        Just("proxy".to_string()),
        Just("PROXY".to_string()),
        Just("pub".to_string()),
        Just("priv".to_string()),
        Just("a".to_string()),
        Just("A".to_string()),
        Just("b".to_string()),
        Just("r".to_string()),
        Just("..".to_string()),
        Just(".".to_string()),
        Just("%2e%2e".to_string()),
        Just("%2E.".to_string()),
        Just("..;x".to_string()),
        Just("a%2f..".to_string()),
        Just("%5c..".to_string()),
        Just("".to_string()),
        Just("%zz".to_string()),
        Just("%00".to_string()),
        "[a-zA-Z0-9._~%-]{0,6}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(segment(), 0..8),
        prop::option::of("[a-z=&/.%]{0,10}"),
        any::<bool>(),
    )
        .prop_map(|(segs, q, prefix)| {
            let mut p = if prefix {
                "/api/proxy".to_string()
            } else {
                String::new()
            };
            for s in segs {
                p.push('/');
                p.push_str(&s);
            }
            if p.is_empty() {
                p.push('/');
            }
            if let Some(q) = q {
                p.push('?');
                p.push_str(&q);
            }
            p
        })
}

fn has_dot_segment(path: &str) -> bool {
    let decoded = path
        .replace("%2e", ".")
        .replace("%2E", ".")
        .replace("%2f", "/")
        .replace("%2F", "/")
        .replace("%5c", "/")
        .replace("%5C", "/")
        .replace('\\', "/");
    decoded.split('/').any(|s| {
        let s = s.split(';').next().unwrap_or("");
        s == "." || s == ".."
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn requests_reach_only_their_own_endpoint_under_its_base_path(p in path(), with_token in any::<bool>(), method in prop_oneof![Just("GET"), Just("POST"), Just("TRACE"), Just("get")]) {
        let plan = plan();
        let mut headers = vec![(":authority".to_string(), b"gw".to_vec())];
        if with_token {
            headers.push(("authorization".to_string(), format!("Bearer {TOKEN}").into_bytes()));
        }
        let req = Request { method, path: Some(&p), authority: "gw", downstream_tls: false, headers: &header_view(&headers), client_address: None, now_ms: 0 };
        match decide(&plan, &mut AuthState::new(&plan), &req) {
            Decision::Forward(f) => {
                let ep = &plan.endpoints[f.endpoint];
                let path_only = p.split('?').next().unwrap();
                // the endpoint chosen is the longest key that prefixes the path
                let lower = path_only.to_ascii_lowercase();
                let collapsed: String = lower.split('/').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("/");
                let rest = collapsed.strip_prefix("api/proxy").unwrap();
                let best = plan.endpoints.iter().filter(|e| {
                    let k = e.key.trim_start_matches('/');
                    rest == format!("/{k}") || rest.starts_with(&format!("/{k}/"))
                }).max_by_key(|e| e.key.len()).unwrap();
                prop_assert_eq!(&best.key, &ep.key);
                let up = f.set.iter().find(|(n, _)| n == ":path").map(|(_, v)| v.clone()).unwrap();
                prop_assert!(up.starts_with(&format!("{}/", ep.target.path.trim_end_matches('/'))), "{} -> {}", p, up);
                prop_assert!(!has_dot_segment(up.split('?').next().unwrap()), "{} -> {}", p, up);
                let cluster = f.set.iter().find(|(n, _)| n == "x-backstage-proxy-cluster").map(|(_, v)| v.clone()).unwrap();
                prop_assert_eq!(cluster, ep.cluster.clone());
                // protected endpoints are only reached with credentials
                if ep.key != "/pub" {
                    prop_assert!(with_token);
                }
            }
            Decision::Reply { reply, .. } => prop_assert!([200, 400, 401, 403, 404, 405].contains(&reply.status)),
            Decision::PassThrough { .. } => {
                let lower = p.to_ascii_lowercase();
                let collapsed: String = lower.split('?').next().unwrap().split('/').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("/");
                prop_assert!(!(collapsed == "api/proxy" || collapsed.starts_with("api/proxy/")), "{} passed through", p);
            }
            Decision::NeedKeys(_) => prop_assert!(false, "no key set is configured"),
            Decision::NeedPermission { .. } => prop_assert!(false, "no permission is configured"),
        }
    }

    #[test]
    fn the_config_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), json in "[\\[\\]{}\":,a-z0-9/ .$]{0,200}") {
        let _ = parse(&bytes, &|_| Some("v".into()));
        let _ = parse(json.as_bytes(), &|_| None);
    }

    #[test]
    fn token_parsing_never_panics(token in "[A-Za-z0-9_.=+/-]{0,300}") {
        let plan = plan();
        let mut state = AuthState::new(&plan);
        let _ = auth::authenticate(&plan, &mut state, &token, 1_800_000_000_000);
        let _ = auth::jwt::decode(&token);
        let _ = auth::classify(&token);
    }

    #[test]
    fn key_set_parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400), json in "[\\[\\]{}\":,a-zA-Z0-9_-]{0,300}") {
        let _ = auth::jwks::set::parse_key_set(&bytes);
        let _ = auth::jwks::set::parse_key_set(format!("{{\"keys\":[{json}]}}").as_bytes());
    }
}
