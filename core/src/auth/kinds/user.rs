//! Backstage user tokens (`vnd.backstage.user`, the older `aud: backstage`
//! form) and the limited user tokens of `obo` claims.

use super::{
    claim_cause, denied, denied_plain, exp_of, verify_with_key_set, Failure, KeyFailure, Success,
    INVALID, UNAVAILABLE,
};
use crate::auth::jwks::store::Source;
use crate::auth::jwt;
use crate::auth::jwt::{check_registered_claims, Jwt};
use crate::auth::token_cache::Verified;
use crate::auth::{AuthState, TYP_LIMITED_USER, TYP_USER};
use crate::config::Plan;
use crate::identity::Principal;
use crate::reply::Reason;
use serde_json::Value;

/// What a user-token verification yields before the caller decides what a
/// limited token means for it.
pub(crate) struct UserToken {
    pub(crate) sub: String,
    /// `ent`, lower-cased (full user tokens carry it; limited ones do not).
    pub(crate) ent: Option<Vec<String>>,
    pub(crate) limited: bool,
    pub(crate) exp: f64,
    pub(crate) generation: u64,
    pub(crate) url: String,
}

/// Backstage's user-token rules (typ `vnd.backstage.user` or
/// `vnd.backstage.limited-user`, or the older `aud: backstage` form).
/// `Ok(None)` when the token is not a user token at all.
pub(crate) fn verify_user(
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
    let generation = match verify_with_key_set(state, &src, jwt, token, now_ms, typ) {
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
    let ent = jwt.payload.get("ent").and_then(|v| v.as_array()).map(|a| {
        a.iter()
            .filter_map(|e| e.as_str())
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
    });
    Ok(Some(UserToken {
        sub: sub.to_string(),
        ent,
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
                ownership: u.ent.map(std::sync::Arc::from),
                on_behalf: false,
            },
            exp: u.exp,
            deps: vec![(u.url, u.generation)],
        }),
    }
}
