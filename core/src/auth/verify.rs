//! Verification of the token kinds that need remote key sets: Backstage
//! user tokens, plugin (service) tokens with their `obo` claim, and
//! external `jwks` entries. Messages follow Backstage's (jose's error names
//! and fixed texts), never quoting the token, a claim value or a key id.

use serde_json::Value;

use super::jwks::store::{KidRefetch, Lookup, Source};
use super::jwt::{self, check_registered_claims, ClaimError, Jwt};
use super::token_cache::Verified;
use super::{AuthState, Denial, Principal, TYP_LIMITED_USER, TYP_PLUGIN, TYP_USER};
use crate::config::{JwksProvider, Plan};
use crate::reply::Reason;

pub struct Success {
    pub verified: Verified,
    /// The earliest `exp` of the tokens involved (Unix seconds).
    pub exp: f64,
    pub deps: Vec<(String, u64)>,
}

pub enum Failure {
    Pending(Source),
    Denied(Denial),
}

/// A jose-style cause: error name and fixed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cause(pub &'static str, pub &'static str);

const SIGNATURE: Cause = Cause(
    "JWSSignatureVerificationFailed",
    "signature verification failed",
);
const NO_KEY: Cause = Cause(
    "JWKSNoMatchingKey",
    "no applicable key found in the JSON Web Key Set",
);
const ALG: Cause = Cause(
    "JOSEAlgNotAllowed",
    "\"alg\" (Algorithm) Header Parameter value not allowed",
);
const INVALID: Cause = Cause("JWSInvalid", "Invalid Compact JWS");
const CRIT: Cause = Cause(
    "JOSENotSupported",
    "Extension Header Parameter not recognized",
);
const AUD: Cause = Cause("JWTClaimValidationFailed", "unexpected \"aud\" claim value");
const UNAVAILABLE: Cause = Cause("JWKSUnavailable", "the key set could not be fetched");

fn claim_cause(e: ClaimError) -> Cause {
    match e {
        ClaimError::Expired => Cause("JWTExpired", "\"exp\" claim timestamp check failed"),
        ClaimError::NotYetValid => Cause(
            "JWTClaimValidationFailed",
            "\"nbf\" claim timestamp check failed",
        ),
        ClaimError::Missing("iat") => {
            Cause("JWTClaimValidationFailed", "missing required \"iat\" claim")
        }
        ClaimError::Missing("exp") => {
            Cause("JWTClaimValidationFailed", "missing required \"exp\" claim")
        }
        ClaimError::Missing("sub") => {
            Cause("JWTClaimValidationFailed", "missing required \"sub\" claim")
        }
        ClaimError::Missing("aud") => {
            Cause("JWTClaimValidationFailed", "missing required \"aud\" claim")
        }
        ClaimError::Missing(_) => Cause("JWTClaimValidationFailed", "missing required claim"),
        ClaimError::Malformed("exp") => {
            Cause("JWTClaimValidationFailed", "\"exp\" claim must be a number")
        }
        ClaimError::Malformed("nbf") => {
            Cause("JWTClaimValidationFailed", "\"nbf\" claim must be a number")
        }
        ClaimError::Malformed("iat") => {
            Cause("JWTClaimValidationFailed", "\"iat\" claim must be a number")
        }
        ClaimError::Malformed(_) => Cause("JWTInvalid", "JWT Claims Set claims of the wrong type"),
    }
}

fn denied(reason: Reason, prefix: &str, cause: Cause) -> Failure {
    Failure::Denied(Denial::unauthenticated(
        reason,
        &format!("{prefix}; caused by {}: {}", cause.0, cause.1),
    ))
}

fn denied_plain(reason: Reason, message: &str) -> Failure {
    Failure::Denied(Denial::unauthenticated(reason, message))
}

/// Signature check of `jwt` with the key set of `src`: `Ok(generation)` of
/// the set that verified it.
fn verify_signature(
    state: &mut AuthState,
    src: &Source,
    jwt: &Jwt<'_>,
    token: &str,
    now_ms: u64,
    typ: Option<&str>,
) -> Result<u64, KeyFailure> {
    if jwt.has_unsupported_header() {
        return Err(KeyFailure::Cause(CRIT));
    }
    let alg = match jwt.header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        _ => return Err(KeyFailure::Cause(INVALID)),
    };
    if alg == "none" || alg.starts_with("HS") {
        return Err(KeyFailure::Cause(ALG));
    }
    let kid = match jwt.header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err(KeyFailure::Cause(INVALID)),
    };
    let (set, generation) = match state.keys.lookup(src, now_ms) {
        Lookup::Ready(set, g) => (set, g),
        Lookup::Wait => return Err(KeyFailure::Pending(src.clone())),
        Lookup::Unavailable => return Err(KeyFailure::Unavailable),
    };
    if let Some(k) = kid {
        if !set.has_kid(k) {
            return match state.keys.unknown_kid(src, now_ms) {
                KidRefetch::Wait => Err(KeyFailure::Pending(src.clone())),
                KidRefetch::Refused => Err(KeyFailure::Cause(NO_KEY)),
            };
        }
    }
    let mut any = false;
    for key in set.candidates(kid, alg) {
        any = true;
        if key.verify_signature(jwt, token, alg, typ) {
            return Ok(generation);
        }
    }
    Err(KeyFailure::Cause(if any { SIGNATURE } else { NO_KEY }))
}

enum KeyFailure {
    Pending(Source),
    Unavailable,
    Cause(Cause),
}

fn exp_of(payload: &serde_json::Map<String, Value>) -> f64 {
    payload
        .get("exp")
        .and_then(Value::as_f64)
        .unwrap_or(f64::INFINITY)
}

/// What a user-token verification yields before the caller decides what a
/// limited token means for it.
struct UserToken {
    sub: String,
    limited: bool,
    exp: f64,
    generation: u64,
    url: String,
}

/// Backstage's user-token rules (typ `vnd.backstage.user` or
/// `vnd.backstage.limited-user`, or the older `aud: backstage` form).
/// `Ok(None)` when the token is not a user token at all.
fn verify_user(
    plan: &Plan,
    state: &mut AuthState,
    token: &str,
    decoded: Option<&Jwt<'_>>,
    now_ms: u64,
) -> Result<Option<UserToken>, Failure> {
    let prefix = "Invalid token";
    let Some(jwt) = decoded else {
        return match jwt::decode_header(token) {
            Some(h)
                if matches!(
                    h.get("typ").and_then(Value::as_str),
                    Some(TYP_USER | TYP_LIMITED_USER)
                ) =>
            {
                Err(denied(Reason::InvalidToken, prefix, INVALID))
            }
            _ => Ok(None),
        };
    };
    let typ = jwt.header_str("typ");
    let typed = matches!(typ, Some(TYP_USER | TYP_LIMITED_USER));
    if !typed && jwt.claim_str("aud") != Some("backstage") {
        return Ok(None);
    }
    let skew = plan.gateway.clock_skew_seconds;
    let now = now_ms / 1000;
    // Claims first: an expired or malformed token costs no fetch.
    let required: &[&'static str] = if typed { &["iat", "exp", "sub"] } else { &[] };
    if let Err(e) = check_registered_claims(&jwt.payload, now, skew, required) {
        return Err(denied(Reason::InvalidToken, prefix, claim_cause(e)));
    }
    let Some(src) = Source::user(plan) else {
        return Err(denied(Reason::KeySetUnavailable, prefix, UNAVAILABLE));
    };
    let generation = match verify_signature(state, &src, jwt, token, now_ms, typ) {
        Ok(g) => g,
        Err(KeyFailure::Pending(s)) => return Err(Failure::Pending(s)),
        Err(KeyFailure::Unavailable) => {
            return Err(denied(Reason::KeySetUnavailable, prefix, UNAVAILABLE))
        }
        Err(KeyFailure::Cause(c)) => return Err(denied(Reason::InvalidToken, prefix, c)),
    };
    if !typed && !jwt.payload.contains_key("exp") {
        return Err(denied_plain(
            Reason::InvalidToken,
            "User token is missing expiration",
        ));
    }
    let sub = jwt.claim_str("sub").unwrap_or_default();
    if sub.is_empty() {
        return Err(denied_plain(
            Reason::InvalidToken,
            "No user sub found in token",
        ));
    }
    Ok(Some(UserToken {
        sub: sub.to_string(),
        limited: typ == Some(TYP_LIMITED_USER),
        exp: exp_of(&jwt.payload),
        generation,
        url: src.url,
    }))
}

/// A user token presented as the bearer token.
pub fn user_token(
    plan: &Plan,
    state: &mut AuthState,
    token: &str,
    decoded: Option<&Jwt<'_>>,
    now_ms: u64,
) -> Result<Success, Failure> {
    match verify_user(plan, state, token, decoded, now_ms)? {
        None => Err(denied_plain(Reason::IllegalToken, "Illegal token")),
        Some(u) if u.limited => Err(denied_plain(
            Reason::IllegalLimitedUserToken,
            "Illegal limited user token",
        )),
        Some(u) => Ok(Success {
            verified: Verified {
                principal: Principal::User(u.sub),
                restrictions: None,
            },
            exp: u.exp,
            deps: vec![(u.url, u.generation)],
        }),
    }
}

fn is_plugin_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A plugin-to-plugin token (`typ: vnd.backstage.plugin`).
pub fn plugin(
    plan: &Plan,
    state: &mut AuthState,
    token: &str,
    decoded: Option<&Jwt<'_>>,
    now_ms: u64,
) -> Result<Success, Failure> {
    let prefix = "Invalid plugin token";
    let Some(jwt) = decoded else {
        return Err(denied(Reason::InvalidPluginToken, prefix, INVALID));
    };
    // Backstage stringifies whatever `sub` is; only a plugin id passes.
    let sub = match jwt.payload.get("sub") {
        Some(Value::String(s)) => s.as_str(),
        None => {
            return Err(denied_plain(
                Reason::InvalidPluginToken,
                "Invalid plugin token: forbidden subject format",
            ))
        }
        Some(_) => {
            return Err(denied_plain(
                Reason::InvalidPluginToken,
                "Invalid plugin token: forbidden subject format",
            ))
        }
    };
    if !is_plugin_id(sub) {
        return Err(denied_plain(
            Reason::InvalidPluginToken,
            "Invalid plugin token: forbidden subject format",
        ));
    }
    let skew = plan.gateway.clock_skew_seconds;
    if let Err(e) = check_registered_claims(
        &jwt.payload,
        now_ms / 1000,
        skew,
        &["iat", "exp", "sub", "aud"],
    ) {
        return Err(denied(Reason::InvalidPluginToken, prefix, claim_cause(e)));
    }
    let audience_ok = match jwt.payload.get("aud") {
        Some(Value::String(a)) => *a == plan.gateway.plugin_id,
        Some(Value::Array(items)) => items
            .iter()
            .any(|a| a.as_str() == Some(plan.gateway.plugin_id.as_str())),
        _ => false,
    };
    if !audience_ok {
        return Err(denied(Reason::InvalidPluginToken, prefix, AUD));
    }
    let no_jwks = "Received a plugin token where the source plugin unexpectedly does not have a JWKS endpoint";
    let Some(src) = Source::plugin(plan, sub) else {
        return Err(denied_plain(Reason::KeySetUnavailable, no_jwks));
    };
    let generation = match verify_signature(state, &src, jwt, token, now_ms, Some(TYP_PLUGIN)) {
        Ok(g) => g,
        Err(KeyFailure::Pending(s)) => return Err(Failure::Pending(s)),
        Err(KeyFailure::Unavailable) => {
            return Err(denied_plain(Reason::KeySetUnavailable, no_jwks))
        }
        Err(KeyFailure::Cause(c)) => return Err(denied(Reason::InvalidPluginToken, prefix, c)),
    };
    let mut deps = vec![(src.url.clone(), generation)];
    let mut exp = exp_of(&jwt.payload);
    let principal = match jwt.payload.get("obo") {
        None => Principal::Service(format!("plugin:{sub}")),
        Some(Value::String(obo)) => {
            match verify_user(plan, state, obo, jwt::decode(obo).as_ref(), now_ms)? {
                Some(u) => {
                    deps.push((u.url, u.generation));
                    exp = exp.min(u.exp);
                    Principal::User(u.sub)
                }
                None => {
                    return Err(denied_plain(
                        Reason::InvalidPluginToken,
                        "Invalid user token in plugin token obo claim",
                    ))
                }
            }
        }
        Some(_) => {
            return Err(denied_plain(
                Reason::InvalidPluginToken,
                "Invalid user token in plugin token obo claim",
            ))
        }
    };
    Ok(Success {
        verified: Verified {
            principal,
            restrictions: None,
        },
        exp,
        deps,
    })
}

fn intersects(claim: Option<&Value>, allowed: &[String]) -> bool {
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
        match verify_signature(state, &src, jwt, token, now_ms, jwt.header_str("typ")) {
            Ok(generation) => {
                let sub = jwt.claim_str("sub").unwrap_or_default();
                let subject = match &provider.subject_prefix {
                    Some(p) => format!("external:{p}:{sub}"),
                    None => format!("external:{sub}"),
                };
                return Some(Ok(Success {
                    verified: Verified {
                        principal: Principal::Service(subject),
                        restrictions: provider.restrictions.clone(),
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
fn applies(provider: &JwksProvider, jwt: &Jwt<'_>, now: u64, skew: u64) -> bool {
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
    // expire (SPEC §11).
    check_registered_claims(&jwt.payload, now, skew, &["exp"]).is_ok()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod catalog;
