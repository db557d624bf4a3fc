//! User, plugin and external tokens against key sets, natively. Tokens are
//! minted by backstage-proxy-mint (testkit/mint/) with independent signers.
//! One module per topic; `catalog`: the attack catalogue's group C, case by case.

mod catalog;
mod external;
mod key_sets;
mod plugin;
mod signatures;
mod user;

use super::super::jwks::set::parse_key_set;
use super::super::jwks::store::Source;
use super::super::{authenticate, AuthState, Outcome};
use crate::config::{parse, Plan};
pub(super) use crate::identity::Principal;
use crate::reply::Reason;

use backstage_proxy_mint::*;

const NOW: u64 = 1_800_000_000;
const AUTH_URL: &str = "http://backstage:7007/api/auth/.well-known/jwks.json";
const CATALOG_URL: &str = "http://backstage:7007/api/catalog/.backstage/auth/v1/jwks.json";
const IDP_URL: &str = "https://idp.example/jwks";

fn plan() -> Plan {
    let cfg = r#"{"backend":{"baseUrl":"http://backstage:7007","auth":{"externalAccess":[
        {"type":"jwks","options":{"url":"https://idp.example/jwks","issuer":"https://idp.example","audience":"edge-gateway","subjectPrefix":"idp"}},
        {"type":"jwks","options":{"url":"https://other.example/jwks","issuer":"https://other.example","algorithm":"EdDSA"},"accessRestrictions":[{"plugin":"catalog"}]}
    ]}}}"#;
    parse(cfg.as_bytes(), &|_| None).unwrap()
}

/// Drives one authentication, serving key sets from `sets` whenever the
/// filter would fetch; returns the outcome and the URLs fetched.
fn drive(
    p: &Plan,
    state: &mut AuthState,
    token: &str,
    now: u64,
    sets: &[(&str, String)],
) -> (Outcome, Vec<String>) {
    let mut fetched = Vec::new();
    for _ in 0..4 {
        match authenticate(p, state, token, now * 1000) {
            Outcome::Pending(src) => {
                fetched.push(src.url.clone());
                state.keys.start(&src.url, now * 1000);
                match sets
                    .iter()
                    .find(|(u, _)| *u == src.url)
                    .map(|(_, b)| parse_key_set(b.as_bytes()))
                {
                    Some(Ok(set)) => state.keys.succeeded(&src.url, set, now * 1000),
                    _ => state.keys.failed(&src.url, now * 1000),
                }
            }
            other => return (other, fetched),
        }
    }
    panic!("still pending after 4 rounds");
}

fn ok(o: &Outcome) -> Principal {
    match o {
        Outcome::Authenticated(p, ..) => p.clone(),
        other => panic!("expected success, got {other:?}"),
    }
}

fn denied(o: &Outcome) -> (u16, Reason, String) {
    match o {
        Outcome::Denied(d) => (d.status, d.reason, d.message.clone()),
        other => panic!("expected a denial, got {other:?}"),
    }
}
