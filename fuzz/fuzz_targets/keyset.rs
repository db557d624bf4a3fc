//! Key-set parsing never panics; a parsed set only holds usable keys.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = backstage_proxy_core::auth::jwks::set::parse_key_set(data) {
        assert!(!set.keys.is_empty());
        for k in &set.keys {
            assert!(["ES256", "ES384", "RS256", "PS256", "EdDSA"].iter().any(|a| k.supports(a)));
        }
    }
});
