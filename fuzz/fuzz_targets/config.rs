//! The configuration parser: never panics; a plan it accepts is usable.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(plan) = backstage_proxy_core::config::parse(data, &|_| Some("v".to_string())) {
        for e in &plan.endpoints {
            assert!(e.key.is_empty() || e.key.starts_with('/'));
            assert!(!e.key.ends_with('/'));
        }
    }
});
