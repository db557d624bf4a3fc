//! Authentication: which kind of Backstage token a bearer token is, and
//! whether it is valid. Kinds are tried in Backstage's order (plugin, user,
//! static, legacy, jwks); the first kind that claims a token decides it.

pub mod extract;
pub mod jwt;

use jwt_simple::algorithms::{HS256Key, MACLike};
use serde_json::Value;

use crate::config::Plan;
use crate::reply::Reason;

pub const TYP_PLUGIN: &str = "vnd.backstage.plugin";
pub const TYP_USER: &str = "vnd.backstage.user";
pub const TYP_LIMITED_USER: &str = "vnd.backstage.limited-user";
/// The `sub` every legacy (HS256 shared-secret) token carries.
pub const LEGACY_SUBJECT: &str = "backstage-server";

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A Backstage user (`user:default/jane`).
    User(String),
    /// A plugin (`plugin:catalog`) or an external caller (`external:…`, or a
    /// static token's configured subject).
    Service(String),
}

/// A refused token: the status, Backstage's error name and message. The
/// message is static text or built from configuration only; it never holds
/// the token, a claim value or a key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub status: u16,
    pub reason: Reason,
    pub name: &'static str,
    pub message: String,
}

impl Denial {
    fn unauthenticated(reason: Reason, message: &str) -> Denial {
        Denial {
            status: 401,
            reason,
            name: "AuthenticationError",
            message: message.to_string(),
        }
    }
}

/// The kind of token, decided from its shape before any verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plugin,
    User,
    /// Everything else: static, legacy and jwks are tried in turn.
    External,
}

/// Backstage's recognition rules: header `typ` for plugin and user tokens,
/// or a payload `aud` of exactly the string `backstage` for the older user
/// token form.
pub fn classify(token: &str) -> Kind {
    let Some(header) = jwt::decode_header(token) else {
        return Kind::External;
    };
    match header.get("typ").and_then(Value::as_str) {
        Some(TYP_PLUGIN) => return Kind::Plugin,
        Some(TYP_USER) | Some(TYP_LIMITED_USER) => return Kind::User,
        _ => {}
    }
    match jwt::decode(token) {
        Some(j) if j.payload.get("aud").and_then(Value::as_str) == Some("backstage") => Kind::User,
        _ => Kind::External,
    }
}

/// Constant-time equality (for static tokens and MACs).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// 403 when an external caller's access restrictions do not name this
/// proxy's plugin id.
fn restrict(
    plan: &Plan,
    restrictions: Option<&Vec<String>>,
    principal: Principal,
) -> Result<Principal, Denial> {
    match restrictions {
        Some(plugins) if !plugins.contains(&plan.gateway.plugin_id) => {
            let list: Vec<String> = plugins.iter().map(|p| format!("'{p}'")).collect();
            Err(Denial {
                status: 403,
                reason: Reason::AccessRestricted,
                name: "NotAllowedError",
                message: format!(
                    "This token's access is restricted to plugin(s) {}",
                    list.join(", ")
                ),
            })
        }
        _ => Ok(principal),
    }
}

/// Authenticates one bearer token at time `now` (Unix seconds).
pub fn authenticate(plan: &Plan, token: &str, now: u64) -> Result<Principal, Denial> {
    match classify(token) {
        // Verification of plugin and user tokens needs the Backstage key sets
        // (fetched through Envoy); until then such tokens claim the request
        // and are refused.
        Kind::Plugin | Kind::User => Err(Denial::unauthenticated(
            Reason::IllegalToken,
            "Illegal token",
        )),
        Kind::External => authenticate_external(plan, token, now),
    }
}

fn authenticate_external(plan: &Plan, token: &str, now: u64) -> Result<Principal, Denial> {
    // static: exact, constant-time match against every configured token.
    let mut matched = None;
    for entry in &plan.auth.static_tokens {
        if ct_eq(entry.token.as_slice(), token.as_bytes()) && matched.is_none() {
            matched = Some(entry);
        }
    }
    if let Some(entry) = matched {
        return restrict(
            plan,
            entry.restrictions.as_ref(),
            Principal::Service(entry.subject.clone()),
        );
    }
    if let Some(result) = authenticate_legacy(plan, token, now) {
        return result;
    }
    Err(Denial::unauthenticated(
        Reason::IllegalToken,
        "Illegal token",
    ))
}

/// Legacy tokens: HS256, `sub` = `backstage-server`, no `aud`, verified
/// against each configured secret in turn. `None` when the token is not a
/// legacy token or no secret verifies it (the next kind is tried).
fn authenticate_legacy(plan: &Plan, token: &str, now: u64) -> Option<Result<Principal, Denial>> {
    if plan.auth.legacy.is_empty() {
        return None;
    }
    let jwt = jwt::decode(token)?;
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
    Some(restrict(
        plan,
        entry.restrictions.as_ref(),
        Principal::Service(entry.subject.clone()),
    ))
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

#[cfg(test)]
mod tests;
