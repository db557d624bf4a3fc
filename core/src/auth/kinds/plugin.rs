//! Plugin-to-plugin tokens (`vnd.backstage.plugin`), with their `obo`
//! claim; key sets learnt per plugin from the Backstage backend.

use super::user::{verify_user, UserToken};
use super::{
    claim_cause, denied, denied_plain, exp_of, verify_with_key_set, Failure, KeyFailure, Success,
    AUD, INVALID,
};
use crate::auth::jwks::store::Source;
use crate::auth::jwt;
use crate::auth::jwt::{check_registered_claims, Jwt};
use crate::auth::token_cache::Verified;
use crate::auth::{AuthState, TYP_PLUGIN};
use crate::config::Plan;
use crate::identity::Principal;
use crate::reply::Reason;
use serde_json::Value;

pub(crate) fn is_plugin_id(s: &str) -> bool {
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
    let sub = plugin_subject(jwt)?;
    check_claims(plan, jwt, now_ms)?;
    let no_jwks = "Received a plugin token where the source plugin unexpectedly does not have a JWKS endpoint";
    // With `gateway.plugins`, a plugin not listed has no key set to fetch:
    // refused as Backstage refuses a plugin whose key set is missing, and
    // nothing is fetched for it.
    let listed = |list: &Vec<String>| list.iter().any(|id| id.eq_ignore_ascii_case(sub));
    if plan.gateway.plugins.as_ref().is_some_and(|l| !listed(l)) {
        return Err(denied_plain(Reason::KeySetUnavailable, no_jwks));
    }
    // A listed plugin's key set is the pinned one, whatever the case of
    // `sub`.
    let sub_lower;
    let sub = if plan.gateway.plugins.is_some() {
        sub_lower = sub.to_ascii_lowercase();
        sub_lower.as_str()
    } else {
        sub
    };
    let Some(src) = Source::plugin(plan, sub) else {
        return Err(denied_plain(Reason::KeySetUnavailable, no_jwks));
    };
    let generation = match verify_with_key_set(state, &src, jwt, token, now_ms, Some(TYP_PLUGIN)) {
        Ok(g) => g,
        Err(KeyFailure::Pending(s)) => return Err(Failure::Pending(s)),
        Err(KeyFailure::Unavailable) => {
            return Err(denied_plain(Reason::KeySetUnavailable, no_jwks))
        }
        Err(KeyFailure::Cause(c)) => return Err(denied(Reason::InvalidPluginToken, prefix, c)),
    };
    let mut deps = vec![(src.url.clone(), generation)];
    let mut exp = exp_of(&jwt.payload);
    let on_behalf = jwt.payload.get("obo").is_some();
    let principal = match jwt.payload.get("obo") {
        None => Principal::Plugin(format!("plugin:{sub}")),
        Some(obo) => {
            let u = obo_user(plan, state, obo, now_ms)?;
            deps.push((u.url, u.generation));
            exp = exp.min(u.exp);
            Principal::User(u.sub)
        }
    };
    Ok(Success {
        verified: Verified {
            principal,
            restrictions: None,
            ownership: None,
            on_behalf,
        },
        exp,
        deps,
    })
}

/// The token's `sub`: Backstage stringifies whatever it is; only a plugin
/// id passes.
fn plugin_subject<'j>(jwt: &'j Jwt<'_>) -> Result<&'j str, Failure> {
    match jwt.payload.get("sub") {
        Some(Value::String(s)) if is_plugin_id(s) => Ok(s.as_str()),
        _ => Err(denied_plain(
            Reason::InvalidPluginToken,
            "Invalid plugin token: forbidden subject format",
        )),
    }
}

/// The registered claims, and the audience: this proxy's plugin id.
fn check_claims(plan: &Plan, jwt: &Jwt<'_>, now_ms: u64) -> Result<(), Failure> {
    let prefix = "Invalid plugin token";
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
    Ok(())
}

/// The user a plugin token acts for: its `obo` claim, verified as a user
/// token.
fn obo_user(
    plan: &Plan,
    state: &mut AuthState,
    obo: &Value,
    now_ms: u64,
) -> Result<UserToken, Failure> {
    let refused = || {
        denied_plain(
            Reason::InvalidPluginToken,
            "Invalid user token in plugin token obo claim",
        )
    };
    let Value::String(obo) = obo else {
        return Err(refused());
    };
    verify_user(plan, state, obo, jwt::decode(obo).as_ref(), now_ms)?.ok_or_else(refused)
}
