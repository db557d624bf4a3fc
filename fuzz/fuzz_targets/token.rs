//! Token parsing and verification of every kind never panics, and nothing
//! but the configured static token and legacy secret authenticates.
#![no_main]
use std::sync::OnceLock;

use backstage_proxy_core::auth::jwks::set::parse_key_set;
use backstage_proxy_core::auth::jwks::store::Source;
use backstage_proxy_core::auth::{authenticate, AuthState, Outcome};
use backstage_proxy_core::config::{parse, Plan};
use libfuzzer_sys::fuzz_target;

const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"},
 {"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"k2"}]}"#;

fn plan() -> &'static Plan {
    static P: OnceLock<Plan> = OnceLock::new();
    P.get_or_init(|| {
        parse(
            br#"{"backend":{"baseUrl":"http://b:7007","auth":{"keys":[{"secret":"c2VjcmV0LXNlY3JldA"}],"externalAccess":[
                {"type":"static","options":{"token":"static-token-0123","subject":"ci"}},
                {"type":"jwks","options":{"url":"http://idp/jwks"}}]}}}"#,
            &|_| None,
        )
        .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let p = plan();
    let mut state = AuthState::new(p);
    for url in ["http://b:7007/api/auth/.well-known/jwks.json", "http://idp/jwks"] {
        let src = Source { url: url.into(), cluster: "c".into(), authority: "h".into(), path: "/".into() };
        let _ = state.keys.lookup(&src, 0);
        state.keys.start(url, 0);
        state.keys.succeeded(url, parse_key_set(JWKS.as_bytes()).unwrap(), 0);
    }
    for _ in 0..3 {
        match authenticate(p, &mut state, token, 1_800_000_000_000) {
            Outcome::Authenticated(..) => {
                // only the static token can pass: the legacy secret and the
                // key sets' private keys are unknown to the fuzzer
                assert_eq!(token, "static-token-0123");
                break;
            }
            Outcome::Pending(src) => {
                state.keys.start(&src.url, 0);
                state.keys.failed(&src.url, 0);
            }
            Outcome::Denied(d) => {
                assert!(d.status == 401 || d.status == 403);
                // (a short input can be a word of a fixed message, e.g. "legal token")
                assert!(token.len() < 16 || !d.message.contains(token));
                break;
            }
        }
    }
});
