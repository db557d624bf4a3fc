//! The whole decision over arbitrary methods, paths and header lists: never
//! panics, never forwards a protected endpoint without credentials, and the
//! header policy holds in both directions: after the decision's edits the
//! upstream sees only allow-listed headers, the injected values and the
//! endpoint's own cluster; the client sees only allow-listed response headers.
#![no_main]
use std::sync::OnceLock;

use backstage_proxy_core::auth::AuthState;
use backstage_proxy_core::config::{parse, Plan};
use backstage_proxy_core::decision::{decide, header_view, response_removals, Decision, Request, ENVOY_OWNED};
use libfuzzer_sys::fuzz_target;

fn plan() -> &'static Plan {
    static P: OnceLock<Plan> = OnceLock::new();
    P.get_or_init(|| {
        parse(
            br#"{"proxy":{"endpoints":{"/pub":{"target":"http://pub/p","credentials":"dangerously-allow-unauthenticated"},
                "/pub/priv":{"target":"http://priv/s","headers":{"Authorization":"Token secret"}},
                "/m":{"target":"http://m","allowedMethods":["GET"],"xfwd":true,"allowedHeaders":["x-a"]}}},
                "backend":{"auth":{"externalAccess":[{"type":"static","options":{"token":"static-token-0123","subject":"ci"}}]}}}"#,
            &|_| None,
        )
        .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    // method \n path \n (name: value \n)*
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or("GET").to_string();
    let path = lines.next().map(str::to_string);
    let headers: Vec<(String, Vec<u8>)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().as_bytes().to_vec()))
        .collect();
    let authorized = headers.iter().filter(|(n, _)| n == "authorization").count() == 1
        && headers.iter().any(|(n, v)| n == "authorization" && v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ") && v.ends_with(b" static-token-0123"));
    let req = Request { method: &method, path: path.as_deref(), authority: "gw", downstream_tls: false, headers: &header_view(&headers), client_address: Some("1.2.3.4:5"), now_ms: 0 };
    let p = plan();
    if let Decision::Forward(f) = decide(p, &mut AuthState::new(p), &req) {
        let ep = &p.endpoints[f.endpoint];
        if ep.key != "/pub" {
            assert!(authorized, "{method} {path:?} forwarded to {} without credentials", ep.key);
        }
        // Apply the edits as the filter does (remove every value, then set).
        let mut after: Vec<(String, String)> = headers
            .iter()
            .filter(|(n, _)| !f.remove.iter().any(|r| r.eq_ignore_ascii_case(n)))
            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        for (n, v) in &f.set {
            after.retain(|(m, _)| !m.eq_ignore_ascii_case(n));
            after.push((n.to_string(), v.to_string()));
        }
        for (n, v) in &after {
            if n.starts_with(':') || ENVOY_OWNED.contains(&n.as_str()) {
                continue;
            }
            let ours = f.set.iter().any(|(s, _)| s.eq_ignore_ascii_case(n));
            assert!(ours || ep.request_allow.contains(n.as_str()), "{n} reached {} unallowed", ep.key);
            if let Some((_, want)) = ep.headers.iter().find(|(h, _)| h.eq_ignore_ascii_case(n)) {
                assert_eq!(v, want, "injected {n} replaced by the client's");
            }
        }
        let cluster = after.iter().filter(|(n, _)| *n == p.gateway.cluster_header).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
        assert_eq!(cluster, [ep.cluster.as_str()], "cluster header");
        // The same names as response headers: only allow-listed ones stay.
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        let removed = response_removals(p, f.endpoint, names.iter().copied());
        for n in names {
            if !n.starts_with(':') && !removed.iter().any(|r| r.eq_ignore_ascii_case(n)) {
                assert!(ep.response_allow.contains(&n.to_ascii_lowercase()), "response {n} kept for {}", ep.key);
            }
        }
    }
});
