//! One request's headers in, one decision out. No host calls: the filter
//! feeds this and applies what it returns.

use std::borrow::Cow;

use crate::auth::jwks::store::Source;
use crate::auth::{self, extract::Extracted, AuthState, Outcome, Principal};
use crate::config::{Credentials, Endpoint, Plan};
use crate::headers;
use crate::reply::{self, Reason, Reply};
use crate::routing::{self, Location};

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
    /// Every header, pseudo-headers included, names lower-cased by Envoy.
    pub headers: &'a [(String, Vec<u8>)],
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
    },
    /// Continue to Envoy's router with these edits.
    Forward(Forward<'a>),
    /// Pause: the token needs this key set; fetch it and decide again.
    NeedKeys(Source),
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
            } => Decision::Reply {
                reply,
                endpoint,
                principal,
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
            }),
            Decision::NeedKeys(source) => Decision::NeedKeys(source),
        }
    }
}

impl Request<'_> {
    fn header_values(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

pub fn decide<'a>(plan: &'a Plan, auth: &mut AuthState, req: &Request<'a>) -> Decision<'a> {
    // Headers only the filter may set: the destination, and with a rate
    // limit service the descriptors (a gateway's rate limits can read them
    // on any route, also outside the prefix).
    let internal = || {
        let mut out = vec![
            Cow::Borrowed(plan.gateway.cluster_header.as_str()),
            Cow::Borrowed(plan.gateway.xfwd_marker.as_str()),
        ];
        if plan.gateway.rate_limit_service.is_some() {
            out.push(Cow::Borrowed(crate::config::RATE_LIMIT_ENDPOINT_HEADER));
            out.push(Cow::Borrowed(crate::config::RATE_LIMIT_PRINCIPAL_HEADER));
        }
        out
    };
    let Some(raw_path) = req.path else {
        return Decision::PassThrough { remove: internal() };
    };
    let split = routing::split_path(raw_path);
    let canonical = routing::collapse_slashes(split.path);
    let rest = match routing::locate(plan, &canonical) {
        Location::Outside => return Decision::PassThrough { remove: internal() },
        Location::Under(rest) => rest,
    };
    let reply = |r: Reply, endpoint: Option<usize>| Decision::Reply {
        reply: r,
        endpoint,
        principal: None,
    };
    let url = raw_path;

    let unsafe_path = |endpoint: Option<usize>| {
        let r = reply::error(
            400,
            Reason::UnsafePath,
            "InputError",
            "Invalid request path",
            req.method,
            url,
        );
        Decision::Reply {
            reply: r,
            endpoint,
            principal: None,
        }
    };

    // 1. Path safety.
    if routing::check_path_safety(split.path).is_err() {
        return unsafe_path(None);
    }

    // 2. The proxy plugin's own key set.
    if matches!(req.method, "GET" | "HEAD")
        && rest
            .trim_end_matches('/')
            .eq_ignore_ascii_case(OWN_JWKS_PATH)
    {
        return reply(reply::own_jwks(), None);
    }

    // 3. Endpoint match.
    let matched = routing::match_endpoint(plan, &rest);

    // 4. Credentials, decided by the matched endpoint (or required when
    //    none), and by where the request lands upstream: under a nested
    //    endpoint's target with stricter credentials, those apply.
    let open = plan.disable_default_auth_policy
        || matched.is_some_and(|(i, e)| {
            e.credentials == Credentials::DangerouslyAllowUnauthenticated
                && !lands_under_stricter(plan, i, e, raw_path, &rest, split.query)
        });
    let endpoint_idx = matched.map(|(i, _)| i);
    // An access policy always needs a principal.
    let open = open && matched.is_none_or(|(_, e)| e.access.is_none());
    let mut principal = None;
    let mut ownership = None;
    if !open {
        match authenticate(plan, auth, req) {
            Outcome::Authenticated(p, o) => {
                principal = Some(p);
                ownership = o;
            }
            Outcome::Denied(denial) => {
                let r = reply::error(
                    denial.status,
                    denial.reason,
                    denial.name,
                    &denial.message,
                    req.method,
                    url,
                );
                return reply(r, endpoint_idx);
            }
            Outcome::Pending(source) => return Decision::NeedKeys(source),
        }
    }

    // 5. No endpoint.
    let Some((idx, endpoint)) = matched else {
        return reply(reply::not_found(), None);
    };

    // 6. Methods.
    if let Some(r) = check_method(endpoint, req.method, url) {
        return reply(r, Some(idx));
    }

    // 6b. Who may call it (`gateway.access`).
    if let (Some(policy), Some(p)) = (&endpoint.access, &principal) {
        let below = rest.get(endpoint.key.len()..).unwrap_or_default();
        if !policy.allows(req.method, below, p, &ownership) {
            let r = reply::error(
                403,
                Reason::NotAllowedByPolicy,
                "NotAllowedError",
                "This endpoint does not allow this caller",
                req.method,
                url,
            );
            return Decision::Reply {
                reply: r,
                endpoint: Some(idx),
                principal: principal.clone(),
            };
        }
    }

    // Upgrades (WebSocket) only for endpoints that ask for them.
    if !endpoint.ws && !req.header_values("upgrade").is_empty() {
        let r = reply::error(
            403,
            Reason::UpgradeNotAllowed,
            "NotAllowedError",
            "Upgrade is not enabled for this endpoint",
            req.method,
            url,
        );
        return reply(r, Some(idx));
    }

    // 7. Path, headers, host, cluster.
    let Some(path) = routing::upstream_path(endpoint, raw_path, &rest, split.query) else {
        let r = reply::error(
            400,
            Reason::InvalidRewrite,
            "InputError",
            "Rewritten path is not a valid path",
            req.method,
            url,
        );
        return reply(r, Some(idx));
    };
    if routing::check_upstream_path(&path, &endpoint.target.path).is_err() {
        return unsafe_path(Some(idx));
    }
    Decision::Forward(forward(plan, endpoint, idx, req, path, principal))
}

/// Whether a request forwarded through open endpoint `e` would land under
/// the target of a nested endpoint with stricter credentials.
fn lands_under_stricter(
    plan: &Plan,
    idx: usize,
    e: &Endpoint,
    raw_path: &str,
    rest: &str,
    query: Option<&str>,
) -> bool {
    let Some(inner) = plan.nested_stricter.get(idx).filter(|v| !v.is_empty()) else {
        return false;
    };
    let Some(upstream) = routing::upstream_path(e, raw_path, rest, query) else {
        return false;
    };
    inner.iter().any(|&b| {
        plan.endpoints
            .get(b)
            .is_some_and(|b| routing::lands_under(&upstream, &b.target.path))
    })
}

fn authenticate(plan: &Plan, auth: &mut AuthState, req: &Request<'_>) -> Outcome {
    let values = req.header_values("authorization");
    let denial = |reason, message: &str| {
        Outcome::Denied(auth::Denial {
            status: 401,
            reason,
            name: "AuthenticationError",
            message: message.to_string(),
        })
    };
    match auth::extract::extract(&values) {
        Extracted::None => denial(Reason::MissingCredentials, "Missing credentials"),
        Extracted::Multiple => denial(Reason::MultipleCredentials, "Multiple credentials"),
        Extracted::TooLarge => denial(Reason::TokenTooLarge, "Illegal token"),
        Extracted::Token(token) => auth::authenticate(plan, auth, token, req.now_ms),
    }
}

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

fn forward<'a>(
    plan: &'a Plan,
    endpoint: &'a Endpoint,
    idx: usize,
    req: &Request<'a>,
    path: String,
    principal: Option<Principal>,
) -> Forward<'a> {
    let names = req.headers.iter().map(|(n, _)| n.as_str());
    let mut remove = headers::request_removals(endpoint, names);
    remove.retain(|n| !ENVOY_OWNED.contains(&n.as_ref()));
    let mut set: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::with_capacity(endpoint.headers.len() + 3);

    for (name, value) in &endpoint.headers {
        // an injected Host is `upstream_authority`'s to decide
        if name != "host" {
            set.push((Cow::Borrowed(name.as_str()), Cow::Borrowed(value.as_str())));
        }
    }
    let marker = plan.gateway.xfwd_marker.as_str();
    if endpoint.xfwd {
        for (name, value) in forwarded_headers(req) {
            set.push((Cow::Borrowed(name), Cow::Owned(value)));
        }
        set.push((Cow::Borrowed(marker), Cow::Borrowed("1")));
    } else if !remove.iter().any(|n| n == marker)
        && req
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(marker))
    {
        remove.push(Cow::Borrowed(marker));
    }
    set.push((Cow::Borrowed(":path"), Cow::Owned(path)));
    if let Some(a) = endpoint
        .upstream_authority
        .as_ref()
        .filter(|_| !plan.gateway.route_rewrites_authority)
    {
        set.push((Cow::Borrowed(":authority"), Cow::Borrowed(a.as_str())));
    }
    let cluster_header = plan.gateway.cluster_header.as_str();
    remove.retain(|n| n != cluster_header);
    set.push((
        Cow::Borrowed(cluster_header),
        Cow::Borrowed(endpoint.cluster.as_str()),
    ));
    // Anything set is first removed so a client value never survives next
    // to ours (set replaces, but be explicit about every value).
    remove.retain(|n| !set.iter().any(|(s, _)| s == n));
    Forward {
        endpoint: idx,
        remove,
        set,
        principal,
    }
}

/// `x-forwarded-*` computed by the gateway, never taken from the client.
fn forwarded_headers(req: &Request<'_>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(addr) = req.client_address {
        out.push(("x-forwarded-for", strip_port(addr).to_string()));
    }
    let proto = if req.downstream_tls { "https" } else { "http" };
    let port = authority_port(req.authority)
        .map(str::to_string)
        .unwrap_or_else(|| if proto == "https" { "443" } else { "80" }.to_string());
    out.push(("x-forwarded-host", req.authority.to_string()));
    out.push(("x-forwarded-proto", proto.to_string()));
    out.push(("x-forwarded-port", port));
    out
}

fn strip_port(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => addr,
    }
}

fn authority_port(authority: &str) -> Option<&str> {
    let after_host = match authority.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map(|(_, after)| after)?,
        None => authority,
    };
    let (_, port) = after_host.rsplit_once(':')?;
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(port)
}

/// Response headers to remove for a forwarded request's endpoint.
pub fn response_removals<'a>(
    plan: &Plan,
    endpoint: usize,
    names: impl Iterator<Item = &'a str>,
) -> Vec<Cow<'a, str>> {
    match plan.endpoints.get(endpoint) {
        Some(ep) => headers::response_removals(ep, names),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
