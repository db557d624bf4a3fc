//! External `jwks` entries of `backend.auth.externalAccess`.

use super::{exp_of, verify_with_key_set, Failure, KeyFailure, Success};
use crate::auth::jwks::store::Source;
use crate::auth::jwt::{check_registered_claims, Jwt};
use crate::auth::token_cache::Verified;
use crate::auth::AuthState;
use crate::config::{JwksProvider, Plan};
use crate::identity::Principal;
use serde_json::Value;

pub(crate) fn intersects(claim: Option<&Value>, allowed: &[String]) -> bool {
    match claim {
        Some(Value::String(s)) => allowed.iter().any(|a| a == s),
        Some(Value::Array(items)) => items
            .iter()
            .any(|v| v.as_str().is_some_and(|s| allowed.iter().any(|a| a == s))),
        _ => false,
    }
}

/// External `jwks` entries, in order; `None` when none verifies the token
/// (the caller answers "Illegal token").
pub fn external(
    plan: &Plan,
    state: &mut AuthState,
    token: &str,
    decoded: Option<&Jwt<'_>>,
    now_ms: u64,
) -> Option<Result<Success, Failure>> {
    if plan.auth.jwks.is_empty() {
        return None;
    }
    let jwt = decoded?;
    let skew = plan.gateway.clock_skew_seconds;
    for provider in &plan.auth.jwks {
        if !applies(provider, jwt, now_ms / 1000, skew) {
            continue;
        }
        let src = Source::external(provider);
        match verify_with_key_set(state, &src, jwt, token, now_ms, jwt.header_str("typ")) {
            Ok(generation) => {
                let sub = jwt.claim_str("sub").unwrap_or_default();
                let subject = match &provider.subject_prefix {
                    Some(p) => format!("external:{p}:{sub}"),
                    None => format!("external:{sub}"),
                };
                return Some(Ok(Success {
                    verified: Verified {
                        principal: Principal::External(subject),
                        restrictions: provider.restrictions.clone(),
                        ownership: None,
                        on_behalf: false,
                    },
                    exp: exp_of(&jwt.payload),
                    deps: vec![(src.url, generation)],
                }));
            }
            Err(KeyFailure::Pending(s)) => return Some(Err(Failure::Pending(s))),
            Err(_) => continue,
        }
    }
    None
}

/// The checks that need no key: an entry whose issuer, audience or
/// algorithm lists exclude the token, or whose claims fail, is skipped
/// without fetching its key set.
pub(crate) fn applies(provider: &JwksProvider, jwt: &Jwt<'_>, now: u64, skew: u64) -> bool {
    if let Some(issuers) = &provider.issuers {
        if !intersects(jwt.payload.get("iss"), issuers)
            || !jwt.payload.get("iss").is_some_and(Value::is_string)
        {
            return false;
        }
    }
    if let Some(audiences) = &provider.audiences {
        if !intersects(jwt.payload.get("aud"), audiences) {
            return false;
        }
    }
    if let Some(algs) = &provider.algorithms {
        if !jwt
            .header_str("alg")
            .is_some_and(|a| algs.iter().any(|x| x == a))
        {
            return false;
        }
    }
    if jwt.claim_str("sub").is_none_or(str::is_empty) {
        return false;
    }
    // Backstage accepts an external token without `exp`; here every JWT must
    // expire (`docs/behaviour.md#deviations-from-backstage`).
    check_registered_claims(&jwt.payload, now, skew, &["exp"]).is_ok()
}
