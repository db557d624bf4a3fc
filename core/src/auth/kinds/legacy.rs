//! Legacy tokens: HS256 signed with a shared secret (`backend.auth.keys`
//! and `externalAccess` entries of `type: legacy`).

use jwt_simple::algorithms::{HS256Key, MACLike};
use serde_json::Value;

use super::exp_of;
use crate::auth::token_cache::Verified;
use crate::auth::{ct_eq, jwt, Denial, LEGACY_SUBJECT};
use crate::config::Plan;
use crate::identity::Principal;
use crate::reply::Reason;

/// Legacy tokens: HS256, `sub` = `backstage-server`, no `aud`, verified
/// against each configured secret in turn: who it speaks for, with the
/// entry's restrictions (applied by the caller), and its `exp`. `None` when
/// the token is not a legacy token or no secret verifies it (the next kind
/// is tried).
pub(crate) fn authenticate(
    plan: &Plan,
    decoded: Option<&jwt::Jwt<'_>>,
    now: u64,
) -> Option<Result<(Verified, f64), Denial>> {
    if plan.auth.legacy.is_empty() {
        return None;
    }
    let jwt = decoded?;
    if jwt.header_str("alg") != Some("HS256") || jwt.claim_str("sub") != Some(LEGACY_SUBJECT) {
        return None;
    }
    if jwt.payload.get("aud").is_some_and(is_truthy) {
        return None;
    }
    let entry = plan.auth.legacy.iter().find(|entry| {
        let key = HS256Key::from_bytes(&entry.key);
        ct_eq(
            &key.authentication_tag(jwt.signing_input.as_bytes()),
            &jwt.signature,
        )
    })?;
    let invalid = || {
        Some(Err(Denial::unauthenticated(
            Reason::InvalidToken,
            "Invalid token",
        )))
    };
    if jwt.has_unsupported_header() {
        return invalid();
    }
    // Backstage accepts a legacy token without `exp`; here every JWT must expire.
    if jwt::check_registered_claims(&jwt.payload, now, plan.gateway.clock_skew_seconds, &["exp"])
        .is_err()
    {
        return invalid();
    }
    Some(Ok((
        Verified {
            principal: Principal::External(entry.subject.clone()),
            restrictions: entry.restrictions.clone(),
            ownership: None,
            on_behalf: false,
        },
        exp_of(&jwt.payload),
    )))
}

/// JavaScript truthiness of a JSON value (Backstage checks `if (aud)`).
fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}
