//! Origin patterns and CORS answers: any pattern either compiles or is
//! refused with a reason, never panics, and never compiles into something
//! that matches a `/` inside a part; any origin and request headers get an
//! answer whose header values are what was configured or sent.
#![no_main]
use backstage_proxy_core::cors::glob::Pattern;
use backstage_proxy_core::cors::{Answer, Policy, DEFAULT_METHODS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (pattern, origin) = text.split_once('\n').unwrap_or((text, "https://a.example"));
    let Ok(p) = Pattern::compile(pattern) else { return };
    let matched = p.matches(origin);
    // A pattern without `/`, `!` or `{` has one part: it never matches an
    // origin with a `/` between two other characters.
    if !pattern.contains(['/', '!', '{', '\\']) && origin.trim_matches('/').contains('/') {
        assert!(!matched, "{pattern:?} matched {origin:?}");
    }
    // The `null` origin only by an explicit entry, never by a pattern.
    let matched = if origin == "null" { pattern == "null" } else { matched };
    let policy = Policy {
        null_origin: pattern == "null",
        origins: Some(vec![p]),
        methods: DEFAULT_METHODS.to_string(),
        allowed_headers: None,
        exposed_headers: None,
        credentials: true,
        max_age: None,
        preflight_continue: false,
        success_status: 204,
    };
    match policy.answer("OPTIONS", Some(origin), Some(pattern)) {
        Answer::None => assert!(!matched),
        Answer::Preflight { headers, .. } | Answer::Decorate(headers) => {
            assert!(matched);
            for (name, value) in headers {
                match name {
                    "access-control-allow-origin" => assert_eq!(value, origin),
                    "access-control-allow-headers" => assert_eq!(value, pattern),
                    _ => {}
                }
            }
        }
    }
});
