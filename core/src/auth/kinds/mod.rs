//! The token kinds, one file each, tried in Backstage's order by
//! [`super::authenticate`]: [`plugin`], [`user`], then for everything else
//! [`static_token`], [`legacy`] and [`external`]. What they share lives
//! here: the outcome types, jose's error causes, and the signature check
//! against a remote key set. Messages follow Backstage's (jose's error
//! names and fixed texts), never quoting the token, a claim value or a key
//! id.

pub mod external;
pub mod legacy;
pub mod plugin;
pub mod static_token;
pub mod user;

use serde_json::Value;

use super::jwks::store::{KidRefetch, Lookup, Source};
use super::jwt::{ClaimError, Jwt};
use super::token_cache::Verified;
use super::{AuthState, Denial};
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

pub(crate) const SIGNATURE: Cause = Cause(
    "JWSSignatureVerificationFailed",
    "signature verification failed",
);
pub(crate) const NO_KEY: Cause = Cause(
    "JWKSNoMatchingKey",
    "no applicable key found in the JSON Web Key Set",
);
pub(crate) const ALG: Cause = Cause(
    "JOSEAlgNotAllowed",
    "\"alg\" (Algorithm) Header Parameter value not allowed",
);
pub(crate) const INVALID: Cause = Cause("JWSInvalid", "Invalid Compact JWS");
pub(crate) const CRIT: Cause = Cause(
    "JOSENotSupported",
    "Extension Header Parameter not recognized",
);
pub(crate) const AUD: Cause = Cause("JWTClaimValidationFailed", "unexpected \"aud\" claim value");
pub(crate) const UNAVAILABLE: Cause = Cause("JWKSUnavailable", "the key set could not be fetched");

pub(crate) fn claim_cause(e: ClaimError) -> Cause {
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

pub(crate) fn denied(reason: Reason, prefix: &str, cause: Cause) -> Failure {
    Failure::Denied(Denial::unauthenticated(
        reason,
        &format!("{prefix}; caused by {}: {}", cause.0, cause.1),
    ))
}

pub(crate) fn denied_plain(reason: Reason, message: &str) -> Failure {
    Failure::Denied(Denial::unauthenticated(reason, message))
}

/// Signature check of `jwt` with the key set of `src`: `Ok(generation)` of
/// the set that verified it.
pub(crate) fn verify_with_key_set(
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

pub(crate) enum KeyFailure {
    Pending(Source),
    Unavailable,
    Cause(Cause),
}

pub(crate) fn exp_of(payload: &serde_json::Map<String, Value>) -> f64 {
    payload
        .get("exp")
        .and_then(Value::as_f64)
        .unwrap_or(f64::INFINITY)
}

#[cfg(test)]
mod tests;
