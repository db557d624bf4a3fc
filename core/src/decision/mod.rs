//! One request's headers in, one decision out. No host calls: the filter
//! feeds this and applies what it returns.
//!
//! - [`handle`]: the whole request path, as the filter runs it: CORS
//!   first, then [`decide`], then the endpoint's budgets; its
//!   [`Verdict`] is all the filter applies.
//! - [`decide`]: the steps of the pipeline (`docs/contract.md`): path
//!   safety, the proxy's own key set, the endpoint, credentials, methods,
//!   who may call, upgrades, the upstream path, and the edits.
//! - [`response`]: what the response keeps, and what it says of a refusal
//!   by Envoy's rate limit filter.

mod access;
mod budget;
mod forward;
mod handle;
mod permissions;
pub mod response;

use std::borrow::Cow;

pub use budget::{counter_keys, hand_to_service};
pub use handle::{
    handle, key_set_unavailable, permission_unavailable, After, Answer, Asking, Continue, Record,
    Verdict,
};

use crate::audit::Outcome;
use crate::auth::jwks::store::Source;
use crate::auth::{self, extract::Extracted, AuthState, Outcome as AuthOutcome};
use crate::config::{Credentials, Endpoint, Plan};
use crate::identity::{Ownership, Principal};
use crate::path;
use crate::permission::ask::Question;
use crate::permission::Standing;
use crate::reply::{self, Reason, Reply};
use crate::routing::{self, Location};

#[cfg(test)]
use forward::{authority_port, strip_port};

/// Where the permission backend's `authorize` is, and the cluster that
/// reaches it: the Backstage backend's, as for its key sets.
pub fn permission_target(plan: &Plan) -> Option<Source> {
    Source::backend(plan, crate::permission::ask::AUTHORIZE_PATH)
}

/// The path of the proxy plugin's own key set, below the prefix.
pub const OWN_JWKS_PATH: &str = "/.backstage/auth/v1/jwks.json";

/// Envoy's router finds no route for a request without this header, so the
/// filter never removes it; the shipped route configuration removes it
/// before the request leaves unless the endpoint has `xfwd`.
pub const ENVOY_OWNED: [&str; 1] = ["x-forwarded-proto"];

/// Methods refused when an endpoint has no `allowedMethods`.
const REFUSED_BY_DEFAULT: [&str; 2] = ["TRACE", "CONNECT"];
/// What a 405 for a refused-by-default method offers instead.
const DEFAULT_ALLOW: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// A header as the host holds it: name (lower-cased by Envoy) and raw
/// value, both borrowed.
pub type Header<'a> = (&'a str, &'a [u8]);

/// A borrowed view of owned headers (the Wasm filter's copy, tests).
pub fn header_view(headers: &[(String, Vec<u8>)]) -> Vec<Header<'_>> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect()
}

/// What the filter knows of a request when its headers arrive.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    /// `:path` as sent (path and query).
    pub path: Option<&'a str>,
    pub authority: &'a str,
    /// Whether the downstream connection is TLS, from the connection
    /// itself (never `:scheme`, which an HTTP/2 client sets at will).
    pub downstream_tls: bool,
    /// Every header, pseudo-headers included, names lower-cased by Envoy,
    /// borrowed from the host's own copy (the native module reads them in
    /// place: [`Header`]).
    pub headers: &'a [Header<'a>],
    /// The client's address (`ip:port` or `ip`), for `xfwd`.
    pub client_address: Option<&'a str>,
    /// Unix milliseconds.
    pub now_ms: u64,
}

/// Header names and values borrow from the plan or the request where they
/// can: a forwarded request allocates only what it computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Not under the prefix: continue, only dropping a client-sent cluster header.
    PassThrough { remove: Vec<Cow<'a, str>> },
    /// Answer locally.
    Reply {
        reply: Reply,
        endpoint: Option<usize>,
        /// Who was refused, when the token was valid (an access policy).
        principal: Option<Principal>,
        /// What the access log and the counters call it.
        outcome: Outcome,
        /// The permissions asked and their answers, for the access log.
        permission: Option<String>,
    },
    /// Continue to Envoy's router with these edits.
    Forward(Forward<'a>),
    /// Pause: the token needs this key set; fetch it and decide again.
    NeedKeys(Source),
    /// Pause: the permission backend must answer this question first; ask
    /// it and decide again (or refuse, `permission_unavailable`).
    NeedPermission {
        question: Question,
        endpoint: usize,
        principal: Option<Principal>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward<'a> {
    pub endpoint: usize,
    /// Request headers to remove, all their values (lower-cased names).
    pub remove: Vec<Cow<'a, str>>,
    /// Request headers to set (replacing), including `:path`, `:authority`
    /// when it changes, and the cluster header.
    pub set: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub principal: Option<Principal>,
    /// The endpoints under whose targets the request lands upstream, the
    /// one it came through first: their budgets apply to it.
    pub landed: Vec<usize>,
    /// The permissions asked and their answers, for the access log.
    pub permission: Option<String>,
}

fn owned(names: Vec<Cow<'_, str>>) -> Vec<Cow<'static, str>> {
    names
        .into_iter()
        .map(|n| Cow::Owned(n.into_owned()))
        .collect()
}

impl Decision<'_> {
    /// The same decision, owning its strings (for callers that keep it
    /// longer than the request).
    pub fn into_owned(self) -> Decision<'static> {
        match self {
            Decision::PassThrough { remove } => Decision::PassThrough {
                remove: owned(remove),
            },
            Decision::Reply {
                reply,
                endpoint,
                principal,
                outcome,
                permission,
            } => Decision::Reply {
                reply,
                endpoint,
                principal,
                outcome,
                permission,
            },
            Decision::Forward(f) => Decision::Forward(Forward {
                endpoint: f.endpoint,
                remove: owned(f.remove),
                set: f
                    .set
                    .into_iter()
                    .map(|(n, v)| (Cow::Owned(n.into_owned()), Cow::Owned(v.into_owned())))
                    .collect(),
                principal: f.principal,
                landed: f.landed,
                permission: f.permission,
            }),
            Decision::NeedKeys(source) => Decision::NeedKeys(source),
            Decision::NeedPermission {
                question,
                endpoint,
                principal,
            } => Decision::NeedPermission {
                question,
                endpoint,
                principal,
            },
        }
    }

    /// The same decision, with the permissions asked on its way written
    /// for the access log.
    fn with_permission(mut self, asked: Option<String>) -> Self {
        match &mut self {
            Decision::Reply { permission, .. } => *permission = asked,
            Decision::Forward(f) => f.permission = asked,
            _ => {}
        }
        self
    }

    /// A refusal, with nobody to name.
    fn refused(reply: Reply, endpoint: Option<usize>) -> Decision<'static> {
        Decision::refused_as(reply, endpoint, None)
    }

    /// A refusal of `principal`, whose credentials were verified: the
    /// access log names who was refused, whatever refused them.
    fn refused_as(
        reply: Reply,
        endpoint: Option<usize>,
        principal: Option<Principal>,
    ) -> Decision<'static> {
        let outcome = reply.reason.map_or(Outcome::OwnJwks, Outcome::Denied);
        Decision::Reply {
            reply,
            endpoint,
            principal,
            outcome,
            permission: None,
        }
    }
}

impl Request<'_> {
    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    fn header_values(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .collect()
    }

    /// All values of a header, joined with `, ` as Node joins them; `None`
    /// if absent or not UTF-8.
    pub fn joined(&self, name: &str) -> Option<String> {
        let mut out: Option<String> = None;
        for &(n, v) in self.headers {
            if n == name {
                let v = std::str::from_utf8(v).ok()?;
                match &mut out {
                    None => out = Some(v.to_string()),
                    Some(o) => {
                        o.push_str(", ");
                        o.push_str(v);
                    }
                }
            }
        }
        out
    }

    /// A 4xx with Backstage's JSON body for this request.
    fn error(&self, status: u16, reason: Reason, name: &str, message: &str) -> Reply {
        reply::error(
            status,
            reason,
            name,
            message,
            self.method,
            self.path.unwrap_or_default(),
        )
    }
}

/// Headers only the filter may set: the destination, and the rate limit
/// descriptors. A gateway's rate limits can read those on any route, also
/// outside the prefix, and also where `gateway.rateLimitService` is no
/// longer set but a rate limit configuration was left behind: a client's
/// copies are removed always.
fn internal_headers(plan: &Plan) -> Vec<Cow<'_, str>> {
    vec![
        Cow::Borrowed(plan.gateway.cluster_header.as_str()),
        Cow::Borrowed(plan.gateway.xfwd_marker.as_str()),
        Cow::Borrowed(crate::ratelimit::ENDPOINT_HEADER),
        Cow::Borrowed(crate::ratelimit::PRINCIPAL_HEADER),
    ]
}

/// A request under the prefix, as the steps read it.
pub struct Located<'r> {
    /// `:path`'s path part, as sent.
    path: &'r str,
    /// The path after the prefix, slashes collapsed.
    rest: String,
    query: Option<&'r str>,
}

impl Located<'_> {
    /// The path after the prefix, slashes collapsed (what endpoint keys
    /// match).
    pub fn rest(&self) -> &str {
        &self.rest
    }
}

/// Where a request stands, read once: under the prefix (`Some`), or not
/// the filter's (`None`, also for a request without `:path`).
pub fn locate<'r>(plan: &Plan, req: &Request<'r>) -> Option<Located<'r>> {
    let split = path::split_path(req.path?);
    let canonical = path::collapse_slashes(split.path);
    match routing::locate(plan, &canonical) {
        Location::Outside => None,
        Location::Under(rest) => Some(Located {
            path: split.path,
            rest,
            query: split.query,
        }),
    }
}

/// A request outside the prefix: on, without the headers only the filter
/// may set.
fn pass_through(plan: &Plan) -> Decision<'_> {
    Decision::PassThrough {
        remove: internal_headers(plan),
    }
}

/// The pipeline's steps, in order (`docs/contract.md#request-pipeline`).
pub fn decide<'a>(plan: &'a Plan, auth: &mut AuthState, req: &Request<'a>) -> Decision<'a> {
    match locate(plan, req) {
        None => pass_through(plan),
        Some(at) => decide_located(plan, auth, req, &at),
    }
}

/// Who presents a request: the bearer token in its `Authorization`,
/// verified with the VM's state, or (for the tool's `explain`) a principal
/// taken as already verified (a user's permissions are then asked, never
/// answered; any other principal is taken as unrestricted).
pub enum Caller<'s> {
    Token(&'s mut AuthState),
    Assumed(Principal, Ownership),
}

/// [`decide`] for a request [`locate`] found under the prefix.
pub fn decide_located<'a>(
    plan: &'a Plan,
    auth: &mut AuthState,
    req: &Request<'a>,
    at: &Located<'a>,
) -> Decision<'a> {
    decide_as(plan, &mut Caller::Token(auth), req, at)
}

/// [`decide_located`] for a given [`Caller`]: the same steps, whoever the
/// caller is.
pub fn decide_as<'a>(
    plan: &'a Plan,
    caller: &mut Caller<'_>,
    req: &Request<'a>,
    at: &Located<'a>,
) -> Decision<'a> {
    let raw_path = req.path.unwrap_or_default();
    // 1. Path safety.
    if path::check_path_safety(at.path).is_err() {
        return Decision::refused(unsafe_path(req), None);
    }
    // 2. The proxy plugin's own key set.
    if matches!(req.method, "GET" | "HEAD")
        && at
            .rest
            .trim_end_matches('/')
            .eq_ignore_ascii_case(OWN_JWKS_PATH)
    {
        return Decision::refused(reply::own_jwks(), None);
    }
    // 3. Endpoint match, and where the request lands upstream.
    let matched = routing::match_endpoint(plan, &at.rest);
    let upstream =
        matched.and_then(|(_, e)| routing::upstream_path(e, raw_path, &at.rest, at.query));
    let landed = matched.map_or_else(Vec::new, |(i, _)| landed(plan, i, upstream.as_deref()));
    // 4. Credentials.
    let (principal, ownership, standing) = match credentials(plan, caller, req, matched, &landed) {
        Ok(who) => who,
        Err(d) => return *d,
    };
    // 5. No endpoint.
    let Some((idx, endpoint)) = matched else {
        return Decision::refused_as(reply::not_found(), None, principal);
    };
    // 6. Methods.
    if let Some(r) = check_method(endpoint, req.method, raw_path) {
        return Decision::refused_as(r, Some(idx), principal);
    }
    // 7. Who may call it (`gateway.access`), by every endpoint it lands under.
    let who = principal.as_ref().map(|p| (p, &ownership));
    let needed = match access::check_access(plan, req, idx, at, upstream.as_deref(), &landed, who) {
        Ok(needed) => needed,
        Err(r) => return Decision::refused_as(r, Some(idx), principal),
    };
    let asked = match permissions::check(
        caller,
        standing.as_ref(),
        req,
        idx,
        principal.as_ref(),
        &needed,
    ) {
        permissions::Checked::Held(asked) => asked,
        permissions::Checked::Decided(d) => return d,
    };
    after_access(req, plan, idx, endpoint, upstream, landed, principal).with_permission(asked)
}

/// Steps 8 and 9, for a request its access policies admit.
fn after_access<'a>(
    req: &Request<'a>,
    plan: &'a Plan,
    idx: usize,
    endpoint: &'a Endpoint,
    upstream: Option<String>,
    landed: Vec<usize>,
    principal: Option<Principal>,
) -> Decision<'a> {
    // 8. Upgrades (WebSocket) only for endpoints that ask for them.
    if !endpoint.ws && req.has_header("upgrade") {
        let r = req.error(
            403,
            Reason::UpgradeNotAllowed,
            "NotAllowedError",
            "Upgrade is not enabled for this endpoint",
        );
        return Decision::refused_as(r, Some(idx), principal);
    }
    // 9. The upstream path, then headers, host and cluster.
    match checked_upstream(req, endpoint, upstream) {
        Ok(path) => {
            let mut fwd = forward::forward(plan, endpoint, idx, req, path, principal);
            fwd.landed = landed;
            Decision::Forward(fwd)
        }
        Err(r) => Decision::refused_as(r, Some(idx), principal),
    }
}

/// The one reading of where a request lands, for every decision
/// (`docs/contract.md#where-a-request-lands-decides`): the endpoint it came
/// through, then every other endpoint on the same origin under whose
/// target its upstream path lands, as servers read paths
/// ([`path::lands_under`]).
pub fn landed(plan: &Plan, idx: usize, upstream: Option<&str>) -> Vec<usize> {
    let mut out = vec![idx];
    let (Some(related), Some(upstream)) = (plan.landing.get(idx), upstream) else {
        return out;
    };
    out.extend(related.iter().copied().filter(|&j| {
        plan.endpoints
            .get(j)
            .is_some_and(|e| path::lands_under(upstream, &e.target.path))
    }));
    out
}

fn unsafe_path(req: &Request<'_>) -> Reply {
    req.error(
        400,
        Reason::UnsafePath,
        "InputError",
        "Invalid request path",
    )
}

/// Step 4: credentials, decided by the matched endpoint (or required when
/// none), and by where the request lands upstream: under a nested
/// endpoint's target with stricter credentials, those apply. An access
/// policy of any endpoint it lands under always needs a principal. `Err`
/// is the decision to return.
fn credentials(
    plan: &Plan,
    caller: &mut Caller<'_>,
    req: &Request<'_>,
    matched: Option<(usize, &Endpoint)>,
    landed: &[usize],
) -> Result<(Option<Principal>, Ownership, Option<Standing>), Box<Decision<'static>>> {
    let stricter_inside = |i: usize| {
        plan.nested_stricter
            .get(i)
            .is_some_and(|inner| landed.iter().any(|j| inner.contains(j)))
    };
    let open = plan.disable_default_auth_policy
        || matched.is_some_and(|(i, e)| {
            e.credentials == Credentials::DangerouslyAllowUnauthenticated && !stricter_inside(i)
        });
    let policed = landed
        .iter()
        .any(|&j| plan.endpoints.get(j).is_some_and(|e| e.access.is_some()));
    if open && !policed {
        return Ok((None, None, None));
    }
    let outcome = match caller {
        Caller::Token(auth) => authenticate(plan, auth, req),
        Caller::Assumed(p, o) => {
            let standing = match p {
                Principal::User(_) => Standing::User,
                _ => Standing::Service(None),
            };
            AuthOutcome::Authenticated(p.clone(), o.clone(), standing)
        }
    };
    match outcome {
        AuthOutcome::Authenticated(p, o, standing) => Ok((Some(p), o, Some(standing))),
        AuthOutcome::Denied(denial) => {
            let r = req.error(denial.status, denial.reason, denial.name, &denial.message);
            Err(Box::new(Decision::refused_as(
                r,
                matched.map(|(i, _)| i),
                denial.principal,
            )))
        }
        AuthOutcome::Pending(source) => Err(Box::new(Decision::NeedKeys(source))),
    }
}

/// Step 9: the path and query the upstream receives, or the refusal.
fn checked_upstream(
    req: &Request<'_>,
    endpoint: &Endpoint,
    upstream: Option<String>,
) -> Result<String, Reply> {
    let Some(path) = upstream else {
        return Err(req.error(
            400,
            Reason::InvalidRewrite,
            "InputError",
            "Rewritten path is not a valid path",
        ));
    };
    if path::check_upstream_path(&path, &endpoint.target.path).is_err() {
        return Err(unsafe_path(req));
    }
    Ok(path)
}

fn authenticate(plan: &Plan, auth: &mut AuthState, req: &Request<'_>) -> AuthOutcome {
    let values = req.header_values("authorization");
    let denial =
        |reason, message: &str| AuthOutcome::Denied(auth::Denial::unauthenticated(reason, message));
    match auth::extract::extract(&values) {
        Extracted::None => denial(Reason::MissingCredentials, "Missing credentials"),
        Extracted::Multiple => denial(Reason::MultipleCredentials, "Multiple credentials"),
        Extracted::TooLarge => denial(Reason::TokenTooLarge, "Illegal token"),
        Extracted::Token(token) => auth::authenticate(plan, auth, token, req.now_ms),
    }
}

/// Step 6: `Some` 405 when the method is not allowed.
fn check_method(endpoint: &Endpoint, method: &str, url: &str) -> Option<Reply> {
    let allow = match &endpoint.allowed_methods {
        Some(list) if list.iter().any(|m| m == method) => return None,
        Some(list) => list.join(", "),
        // In any letter case: HTTP/2 lets a client send `trace`, which an
        // upstream may well treat as TRACE.
        None if REFUSED_BY_DEFAULT
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method)) =>
        {
            DEFAULT_ALLOW.to_string()
        }
        None => return None,
    };
    let mut r = reply::error(
        405,
        Reason::MethodNotAllowed,
        "MethodNotAllowedError",
        "Method not allowed",
        method,
        url,
    );
    r.headers.push(("allow".to_string(), allow));
    Some(r)
}

/// Response headers to remove for a forwarded request's endpoint.
pub fn response_removals<'a>(
    plan: &Plan,
    endpoint: usize,
    names: impl Iterator<Item = &'a str>,
) -> Vec<Cow<'a, str>> {
    match plan.endpoints.get(endpoint) {
        Some(ep) => crate::headers::response_removals(ep, names),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
