//! Authentication: which kind of Backstage token a bearer token is, and
//! whether it is valid. Kinds are tried in Backstage's order (plugin, user,
//! static, legacy, jwks); the first kind that claims a token decides it.

pub mod extract;
pub mod jwks;
pub mod jwt;
pub mod kinds;
pub mod token_cache;

use serde_json::Value;

use crate::config::Plan;
use crate::identity::{Ownership, Principal};
use crate::permission::Standing;
use crate::reply::Reason;
use jwks::store::{KeyStore, Source, Timing};
use token_cache::{TokenCache, Verified};

pub const TYP_PLUGIN: &str = "vnd.backstage.plugin";
pub const TYP_USER: &str = "vnd.backstage.user";
pub const TYP_LIMITED_USER: &str = "vnd.backstage.limited-user";
/// The `sub` every legacy (HS256 shared-secret) token carries.
pub const LEGACY_SUBJECT: &str = "backstage-server";

/// A refused token: the status, Backstage's error name and message. The
/// message is static text or built from configuration only; it never holds
/// the token, a claim value or a key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub status: u16,
    pub reason: Reason,
    pub name: &'static str,
    pub message: String,
    /// Who was refused, when the token itself was valid (an access
    /// restriction): the access log names them.
    pub principal: Option<Principal>,
}

impl Denial {
    pub(crate) fn unauthenticated(reason: Reason, message: &str) -> Denial {
        Denial {
            status: 401,
            reason,
            name: "AuthenticationError",
            message: message.to_string(),
            principal: None,
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
    classify_decoded(token, jwt::decode(token).as_ref())
}

/// [`classify`] for a token already decoded (`None` when it is not a
/// well-formed JWS; its header alone may still name a kind).
fn classify_decoded(token: &str, decoded: Option<&jwt::Jwt<'_>>) -> Kind {
    let typ_kind = |typ: Option<&str>| match typ {
        Some(TYP_PLUGIN) => Some(Kind::Plugin),
        Some(TYP_USER) | Some(TYP_LIMITED_USER) => Some(Kind::User),
        _ => None,
    };
    match decoded {
        Some(j) => {
            typ_kind(j.header_str("typ")).unwrap_or(if j.claim_str("aud") == Some("backstage") {
                Kind::User
            } else {
                Kind::External
            })
        }
        None => jwt::decode_header(token)
            .and_then(|h| typ_kind(h.get("typ").and_then(Value::as_str)))
            .unwrap_or(Kind::External),
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
/// proxy's plugin id; else how its permissions are decided.
fn restrict(plan: &Plan, v: &Verified) -> Result<Standing, Denial> {
    let Some(list) = &v.restrictions else {
        return Ok(standing(v, None));
    };
    match list.iter().find(|r| r.plugin == plan.gateway.plugin_id) {
        Some(own) => Ok(standing(v, Some(&own.permission))),
        None => {
            let names: Vec<String> = list.iter().map(|r| format!("'{}'", r.plugin)).collect();
            Err(Denial {
                status: 403,
                reason: Reason::AccessRestricted,
                name: "NotAllowedError",
                message: format!(
                    "This token's access is restricted to plugin(s) {}",
                    names.join(", ")
                ),
                principal: Some(v.principal.clone()),
            })
        }
    }
}

/// How a verified caller's permissions are decided
/// (`docs/permissions.md#who-is-asked`): a user by the permission backend,
/// a plugin acting for a user by nobody, a service principal by its
/// restrictions for this plugin id.
fn standing(v: &Verified, own: Option<&crate::permission::Restriction>) -> Standing {
    match (&v.principal, v.on_behalf) {
        (Principal::User(_), false) => Standing::User,
        (Principal::User(_), true) => Standing::OnBehalf,
        _ => Standing::Service(own.cloned().map(std::sync::Arc::new)),
    }
}

/// The outcome of authenticating one token.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The principal, a full user token's ownership (`ent`), and how its
    /// permissions are decided.
    Authenticated(Principal, Ownership, Standing),
    Denied(Denial),
    /// The token needs a key set this VM does not have yet: fetch it, then
    /// ask again.
    Pending(Source),
}

/// Per-VM authentication state: key sets, verified tokens, and the
/// permission backend's answers.
#[derive(Debug)]
pub struct AuthState {
    pub keys: KeyStore,
    pub tokens: TokenCache,
    pub permissions: crate::permission::cache::Decisions,
    /// Verified-token cache hits and misses (signature checks done).
    pub cache_hits: u64,
    pub cache_misses: u64,
}

impl AuthState {
    pub fn new(plan: &Plan) -> AuthState {
        AuthState {
            keys: KeyStore::new(Timing::from(&plan.gateway), pinned_sources(plan)),
            tokens: TokenCache::new(plan.gateway.token_cache_size),
            permissions: crate::permission::cache::Decisions::new(
                plan.gateway.permission_cache_size,
                plan.gateway.permission_cache_seconds,
            ),
            cache_hits: 0,
            cache_misses: 0,
        }
    }
}

/// The key sets the configuration names: Backstage's user-token set (when
/// a backend is configured) and each external `jwks` entry's.
pub fn pinned_sources(plan: &Plan) -> Vec<Source> {
    let plugins = plan.gateway.plugins.iter().flatten();
    Source::user(plan)
        .into_iter()
        .chain(plan.auth.jwks.iter().map(Source::external))
        .chain(plugins.filter_map(|id| Source::plugin(plan, id)))
        .collect()
}

/// Authenticates one bearer token at `now_ms` (Unix milliseconds).
pub fn authenticate(plan: &Plan, state: &mut AuthState, token: &str, now_ms: u64) -> Outcome {
    let now = now_ms / 1000;
    let skew = plan.gateway.clock_skew_seconds;
    if let Some(v) = state.tokens.get(token, now, skew, &state.keys) {
        state.cache_hits += 1;
        return admit_restricted(plan, v);
    }
    // Decoded once; every kind works from the same parse.
    let decoded = jwt::decode(token);
    let result = match classify_decoded(token, decoded.as_ref()) {
        Kind::Plugin => kinds::plugin::plugin(plan, state, token, decoded.as_ref(), now_ms),
        Kind::User => kinds::user::user_token(plan, state, token, decoded.as_ref(), now_ms),
        Kind::External => {
            return authenticate_external(plan, state, token, decoded.as_ref(), now_ms)
        }
    };
    cache_and_admit(plan, state, token, result)
}

/// Records a successful verification in the cache and turns the result
/// into an outcome.
fn cache_and_admit(
    plan: &Plan,
    state: &mut AuthState,
    token: &str,
    result: Result<kinds::Success, kinds::Failure>,
) -> Outcome {
    match result {
        Ok(ok) => {
            state.cache_misses += 1;
            state
                .tokens
                .insert(token, ok.verified.clone(), ok.exp, ok.deps);
            admit_restricted(plan, ok.verified)
        }
        Err(kinds::Failure::Pending(src)) => Outcome::Pending(src),
        Err(kinds::Failure::Denied(d)) => Outcome::Denied(d),
    }
}

/// A verified token's principal, unless its access restrictions exclude
/// this proxy.
fn admit_restricted(plan: &Plan, v: Verified) -> Outcome {
    match restrict(plan, &v) {
        Ok(standing) => Outcome::Authenticated(v.principal, v.ownership, standing),
        Err(d) => Outcome::Denied(d),
    }
}

fn authenticate_external(
    plan: &Plan,
    state: &mut AuthState,
    token: &str,
    decoded: Option<&jwt::Jwt<'_>>,
    now_ms: u64,
) -> Outcome {
    let now = now_ms / 1000;
    // Static and legacy tokens are cached like verified JWTs, so that a
    // repeated one costs one lookup, as a cached user token does (static
    // tokens never expire; nothing they depend on changes within a VM).
    if let Some(entry) = kinds::static_token::matching(plan, token) {
        let verified = Verified {
            principal: Principal::External(entry.subject.clone()),
            restrictions: entry.restrictions.clone(),
            ownership: None,
            on_behalf: false,
        };
        state
            .tokens
            .insert(token, verified.clone(), f64::INFINITY, Vec::new());
        return admit_restricted(plan, verified);
    }
    if let Some(result) = kinds::legacy::authenticate(plan, decoded, now) {
        return match result {
            Ok((verified, exp)) => {
                state.cache_misses += 1;
                state
                    .tokens
                    .insert(token, verified.clone(), exp, Vec::new());
                admit_restricted(plan, verified)
            }
            Err(d) => Outcome::Denied(d),
        };
    }
    match kinds::external::external(plan, state, token, decoded, now_ms) {
        Some(result) => cache_and_admit(plan, state, token, result),
        None => Outcome::Denied(Denial::unauthenticated(
            Reason::IllegalToken,
            "Illegal token",
        )),
    }
}

#[cfg(test)]
mod tests;
