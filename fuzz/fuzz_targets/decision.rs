//! The whole decision over arbitrary methods, paths and header lists: never
//! panics, and never forwards a protected endpoint without credentials.
#![no_main]
use std::sync::OnceLock;

use backstage_proxy_wasm::auth::AuthState;
use backstage_proxy_wasm::config::{parse, Plan};
use backstage_proxy_wasm::decision::{decide, Decision, Request};
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
    let req = Request { method: &method, path: path.as_deref(), authority: "gw", scheme: "http", headers: &headers, client_address: Some("1.2.3.4:5"), now_ms: 0 };
    let p = plan();
    if let Decision::Forward(f) = decide(p, &mut AuthState::new(p), &req) {
        let ep = &p.endpoints[f.endpoint];
        if ep.key != "/pub" {
            assert!(authorized, "{method} {path:?} forwarded to {} without credentials", ep.key);
        }
    }
});
