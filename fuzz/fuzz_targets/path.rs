//! Path safety, routing and rewriting: a forwarded path stays under its
//! endpoint's target path and never holds a dot segment.
#![no_main]
use std::sync::OnceLock;

use backstage_proxy_core::config::{parse, Plan};
use backstage_proxy_core::path;
use backstage_proxy_core::routing::{self, Location};
use libfuzzer_sys::fuzz_target;

fn plan() -> &'static Plan {
    static P: OnceLock<Plan> = OnceLock::new();
    P.get_or_init(|| {
        parse(
            br#"{"proxy":{"endpoints":{"/a":"http://a/base-a","/a/b":"http://b/base-b","/":"http://root/r",
                "/rw":{"target":"http://rw/t","pathRewrite":{"^/api/proxy/rw/([^/]*)(.*)$":"/x/$1$2","x":"y"}}}}}"#,
            &|_| None,
        )
        .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let split = path::split_path(raw);
    let safe = path::check_path_safety(split.path).is_ok();
    let canonical = path::collapse_slashes(split.path);
    let Location::Under(rest) = routing::locate(plan(), &canonical) else { return };
    let Some((_, ep)) = routing::match_endpoint(plan(), &rest) else { return };
    if !safe {
        return;
    }
    if let Some(up) = routing::upstream_path(ep, raw, &rest, split.query) {
        let base = ep.target.path.trim_end_matches('/');
        assert!(up.starts_with(&format!("{base}/")) || up == base, "{raw:?} -> {up:?}");
        let p = up.split('?').next().unwrap_or_default();
        if ep.path_rewrite.is_none() {
            assert!(path::check_path_safety(p).is_ok(), "{raw:?} -> {up:?}");
        }
    }
});
