//! Configuration: the JSON a user gives the filter, validated completely at
//! load time and compiled into an immutable [`Plan`].
//!
//! Every error names its JSON path (`proxy.endpoints./pd.credentials: …`).
//! The filter and the command-line tool share this code, so they report the
//! same errors for the same input.

use std::fmt;

use regex_lite::Regex;
use serde_json::{Map, Value};

use crate::url::Url;

pub const DEFAULT_PREFIX: &str = "/api/proxy";
pub const DEFAULT_CLUSTER_HEADER: &str = "x-backstage-proxy-cluster";
pub const DEFAULT_PLUGIN_ID: &str = "proxy";
pub const DEFAULT_TOKEN_CACHE_SIZE: usize = 1024;
pub const DEFAULT_JWKS_CACHE_SECONDS: u64 = 600;
pub const DEFAULT_JWKS_FETCH_TIMEOUT_MS: u64 = 5000;
pub const DEFAULT_JWKS_REFETCH_COOLDOWN_SECONDS: u64 = 30;
pub const DEFAULT_JWKS_MAX_BYTES: usize = 64 * 1024;
/// Largest compiled `pathRewrite` regex accepted (bytes of program).
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Request and response headers Backstage always lets through.
pub const SAFE_HEADERS: [&str; 11] = [
    "cache-control",
    "content-language",
    "content-length",
    "content-type",
    "expires",
    "last-modified",
    "pragma",
    "host",
    "accept",
    "accept-language",
    "user-agent",
];

/// Header names an endpoint may not inject: framing and hop-by-hop headers
/// belong to Envoy, pseudo-headers are not headers.
const NOT_INJECTABLE: [&str; 7] = [
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// Signature algorithms a `jwks` entry may list.
pub const JWS_ALGORITHMS: [&str; 13] = [
    "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
    "HS256", "HS384", "HS512",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path of the offending value, e.g. `proxy.endpoints./pd.credentials`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    Require,
    Forward,
    DangerouslyAllowUnauthenticated,
}

impl Credentials {
    pub fn as_str(self) -> &'static str {
        match self {
            Credentials::Require => "require",
            Credentials::Forward => "forward",
            Credentials::DangerouslyAllowUnauthenticated => "dangerously-allow-unauthenticated",
        }
    }
}

/// One `pathRewrite` rule: a compiled regex and its JavaScript-style
/// replacement string.
#[derive(Clone, Debug)]
pub struct RewriteRule {
    pub pattern: String,
    pub regex: Regex,
    pub replacement: String,
}

#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Normalised key: starts with `/`, no trailing `/`; the root key is "".
    pub key: String,
    /// The key as written in the configuration (for logs and errors).
    pub raw_key: String,
    pub target: Url,
    pub cluster: String,
    pub credentials: Credentials,
    /// Injected headers: lower-cased name, resolved value.
    pub headers: Vec<(String, String)>,
    pub allowed_methods: Option<Vec<String>>,
    /// Lower-cased request header names let through.
    pub request_allow: crate::fasthash::FastSet<String>,
    /// Lower-cased response header names let through.
    pub response_allow: crate::fasthash::FastSet<String>,
    /// `None`: the default rewrite. `Some([])`: no rewrite at all.
    pub path_rewrite: Option<Vec<RewriteRule>>,
    pub change_origin: bool,
    /// The `:authority` the upstream gets, derived at load: the target's
    /// with `changeOrigin` (which wins over an injected Host, as in
    /// http-proxy), else an injected `host` header's value, else `None`
    /// (the client's).
    pub upstream_authority: Option<String>,
    pub xfwd: bool,
    pub ws: bool,
    /// Options that belong to Envoy's cluster and route configuration; kept
    /// for the configuration generator.
    pub envoy: EnvoyOptions,
    /// `gateway.access` for this endpoint: who may call it.
    pub access: Option<crate::access::Policy>,
    /// `gateway.rateLimits` for this endpoint: its request budgets.
    pub rate_limit: Option<crate::ratelimit::RateLimit>,
    /// Its name in stats ([`stat_names`]).
    pub stat_name: String,
}

/// Each endpoint's name in stats: its key without the leading `/`, every
/// character outside `[A-Za-z0-9_-]` as `_` (a `.` would split Envoy's stat
/// name, and exporters rewrite the rest anyway), `root` for the root key,
/// and `_2`, `_3`, … after a name another endpoint already has.
fn stat_names(endpoints: &mut [Endpoint]) {
    let mut taken = crate::fasthash::set();
    for e in endpoints.iter_mut() {
        let base: String = e
            .key
            .trim_start_matches('/')
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let base = if base.is_empty() {
            "root".to_string()
        } else {
            base
        };
        let mut name = base.clone();
        let mut n = 1;
        while !taken.insert(name.clone()) {
            n += 1;
            name = format!("{base}_{n}");
        }
        e.stat_name = name;
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvoyOptions {
    pub secure: Option<bool>,
    pub timeout_ms: Option<u64>,
    pub proxy_timeout_ms: Option<u64>,
    pub follow_redirects: Option<bool>,
}

#[derive(Clone, Debug)]
pub struct StaticToken {
    pub token: Vec<u8>,
    pub subject: String,
    pub restrictions: Option<Vec<String>>,
}

#[derive(Clone, Debug)]
pub struct LegacySecret {
    pub key: Vec<u8>,
    pub subject: String,
    pub restrictions: Option<Vec<String>>,
}

#[derive(Clone, Debug)]
pub struct JwksProvider {
    pub url: Url,
    pub raw_url: String,
    pub cluster: String,
    pub issuers: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    pub algorithms: Option<Vec<String>>,
    pub subject_prefix: Option<String>,
    pub restrictions: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    pub static_tokens: Vec<StaticToken>,
    pub legacy: Vec<LegacySecret>,
    pub jwks: Vec<JwksProvider>,
}

/// Where the Backstage backend is, for user and plugin key sets.
#[derive(Clone, Debug)]
pub struct Backend {
    pub url: Url,
    pub cluster: String,
}

#[derive(Clone, Debug)]
pub struct Gateway {
    pub prefix: String,
    pub cluster_header: String,
    /// `<clusterHeader>-xfwd`: marks requests whose route keeps
    /// `x-forwarded-proto` (endpoints with `xfwd`).
    pub xfwd_marker: String,
    pub plugin_id: String,
    pub clock_skew_seconds: u64,
    pub token_cache_size: usize,
    pub jwks_cache_seconds: u64,
    pub jwks_fetch_timeout_ms: u64,
    pub jwks_refetch_cooldown_seconds: u64,
    pub jwks_max_bytes: usize,
    /// `gateway.authorityRewrite: route`: the filter leaves `:authority` as
    /// sent and the gateway's route for the endpoint's destination header
    /// rewrites it (`changeOrigin`, an injected `Host`). Istio and Envoy
    /// Gateway pick the virtual host again after the filter's edits, by
    /// `:authority`; a rewritten one would leave the gateway's hostnames.
    pub route_rewrites_authority: bool,
    /// `gateway.auditTrail` (default on): the principal, endpoint and
    /// decision as filter state for the access log (three host calls, about
    /// 14,000 instructions per request: off where nothing logs them).
    pub audit_trail: bool,
    /// `gateway.rateLimitService`: budgets are decided by Envoy's global
    /// rate limit filter and its service, for every replica together.
    pub rate_limit_service: Option<RateLimitService>,
    /// `gateway.plugins`: the Backstage plugins that exist. Tokens of any
    /// other plugin are refused without a fetch; these plugins' key sets
    /// are fetched at start and never rationed. `None`: any plugin, key
    /// sets learnt from requests (bounded, rationed).
    pub plugins: Option<Vec<String>>,
}

/// Envoy's global rate limit service (envoyproxy/ratelimit or any server
/// of `envoy.service.ratelimit.v3.RateLimitService`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitService {
    /// gRPC address; `https` for TLS.
    pub url: crate::url::Url,
    /// Its Envoy cluster.
    pub cluster: String,
    /// The descriptors' domain.
    pub domain: String,
    /// How long Envoy waits for an answer (Envoy's default, 20 ms).
    pub timeout_ms: u64,
    /// Refuse requests when the service cannot answer (default: let them
    /// through, Envoy's default).
    pub failure_mode_deny: bool,
}

/// The compiled, immutable configuration.
#[derive(Clone, Debug)]
pub struct Plan {
    pub gateway: Gateway,
    /// Lower-cased `gateway.prefix`.
    pub prefix_lower: String,
    pub disable_default_auth_policy: bool,
    pub endpoints: Vec<Endpoint>,
    /// Lower-cased normalised key → index into `endpoints`.
    pub index: crate::fasthash::FastMap<String, usize>,
    /// For each endpoint (by index), the endpoints whose targets lie
    /// strictly under its target on the same origin and whose credentials
    /// are stricter (`docs/contract.md#4-credentials-per-endpoint`): a request through it that lands under
    /// one of their target paths gets their credentials.
    pub nested_stricter: Vec<Vec<usize>>,
    /// For each endpoint (by index), the other endpoints on the same
    /// origin whose targets contain, equal or lie under its target: a
    /// request through it may land under theirs, and then their access
    /// policies and budgets apply to it too (`docs/contract.md#where-a-request-lands-decides`).
    pub landing: Vec<Vec<usize>>,
    /// The longest key in `index`, in bytes: no candidate longer than this
    /// is ever looked up, so matching is linear in the request path.
    pub longest_key: usize,
    pub auth: AuthConfig,
    pub backend: Option<Backend>,
    /// `backend.cors`: answered by the filter (`docs/contract.md#cors`).
    pub cors: Option<crate::cors::Policy>,
    /// Non-fatal findings (skipped endpoints, deprecated forms, options handled
    /// outside the filter). Never contains a secret.
    pub warnings: Vec<String>,
}

mod access;
mod backend;
mod cors;
mod endpoint;
mod external_access;
mod gateway;
mod interpolate;
mod json;
mod rate_limits;

use backend::parse_backend;
use endpoint::parse_proxy;
use gateway::parse_gateway;
pub use interpolate::{interpolate, referenced_env_vars};
use json::*;
pub use json::{is_token, normalise_key};

/// Parses and validates the filter configuration.
pub fn parse(json: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Plan, Vec<ConfigError>> {
    let root: Value = match serde_json::from_slice(json) {
        Ok(v) => v,
        Err(e) => {
            return Err(vec![ConfigError {
                path: String::new(),
                message: format!(
                    "configuration is not valid JSON: line {} column {}: {}",
                    e.line(),
                    e.column(),
                    e.classify_message()
                ),
            }])
        }
    };
    parse_value(&root, env)
}

trait ClassifyMessage {
    fn classify_message(&self) -> &'static str;
}

impl ClassifyMessage for serde_json::Error {
    // serde_json's own message can quote input (and so a secret); keep only its class.
    fn classify_message(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "data error",
            serde_json::error::Category::Eof => "unexpected end of input",
        }
    }
}

pub fn parse_value(
    root: &Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, Vec<ConfigError>> {
    let mut errs = Errors { list: Vec::new() };
    let mut warnings = Vec::new();
    let Some(root) = as_object(&mut errs, "", root) else {
        return Err(errs.list);
    };
    check_keys(&mut errs, "", root, &["proxy", "backend", "gateway"]);

    let empty = Map::new();
    let gateway_obj = match root.get("gateway") {
        Some(v) => as_object(&mut errs, "gateway", v).unwrap_or(&empty),
        None => &empty,
    };
    let backend_obj = match root.get("backend") {
        Some(v) => as_object(&mut errs, "backend", v).unwrap_or(&empty),
        None => &empty,
    };
    let gateway = parse_gateway(&mut errs, gateway_obj);
    let (backend, disable_default_auth_policy, auth) =
        parse_backend(&mut errs, &mut warnings, backend_obj, gateway_obj);
    let cors = backend_obj
        .get("cors")
        .and_then(|v| cors::parse_cors(&mut errs, &mut warnings, v));

    let proxy_obj = match root.get("proxy") {
        Some(v) => as_object(&mut errs, "proxy", v).unwrap_or(&empty),
        None => &empty,
    };
    let mut endpoints = parse_proxy(&mut errs, &mut warnings, proxy_obj, env);
    parse_policies(
        &mut errs,
        &mut warnings,
        gateway_obj,
        &gateway,
        disable_default_auth_policy,
        &auth,
        &mut endpoints,
    );

    stat_names(&mut endpoints);
    let index = index_endpoints(&mut errs, &endpoints);

    if !errs.list.is_empty() {
        return Err(errs.list);
    }
    let nested_stricter = nested_stricter(&endpoints, disable_default_auth_policy);
    nesting_warnings(&mut warnings, &endpoints, &nested_stricter);
    let landing = landing_candidates(&endpoints);
    Ok(Plan {
        nested_stricter,
        landing,
        prefix_lower: gateway.prefix.to_ascii_lowercase(),
        gateway,
        disable_default_auth_policy,
        endpoints,
        longest_key: index.keys().map(String::len).max().unwrap_or(0),
        index,
        auth,
        backend,
        cors,
        warnings,
    })
}

/// `gateway.rateLimits` and `gateway.access` onto their endpoints, and
/// the load checks that keep them from being voided: a policy or budget
/// follows where a request lands (`docs/contract.md#where-a-request-lands-decides`),
/// so an endpoint inside a policied or budgeted target must say what it
/// has of its own, and a budget must have someone to count.
fn parse_policies(
    errs: &mut Errors,
    warnings: &mut Vec<String>,
    gateway_obj: &Map<String, Value>,
    gateway: &Gateway,
    open_everywhere: bool,
    auth: &AuthConfig,
    endpoints: &mut [Endpoint],
) {
    let service = gateway.rate_limit_service.is_some();
    if let Some(v) = gateway_obj.get("rateLimits") {
        rate_limits::parse_rate_limits(errs, v, endpoints, service);
    }
    if let Some(v) = gateway_obj.get("access") {
        access::parse_access(errs, v, endpoints);
    }
    if service && endpoints.iter().all(|e| e.rate_limit.is_none()) {
        warnings.push(
            "gateway.rateLimitService is set but no endpoint has a budget in gateway.rateLimits: the service is never asked".to_string(),
        );
    }
    let policed = gateway_obj.contains_key("access") || gateway_obj.contains_key("rateLimits");
    if policed {
        refuse_shared_principals(errs, auth);
    }
    require_own_entry(
        errs,
        endpoints,
        "gateway.access",
        |e| e.access.is_some(),
        "access policy",
        "{}",
    );
    require_own_entry(
        errs,
        endpoints,
        "gateway.rateLimits",
        |e| e.rate_limit.is_some(),
        "budget",
        "{}",
    );
    for e in endpoints.iter() {
        let counts_principals = e
            .rate_limit
            .as_ref()
            .is_some_and(|l| l.per_principal.is_some());
        let anonymous =
            open_everywhere || e.credentials == Credentials::DangerouslyAllowUnauthenticated;
        if counts_principals && anonymous && e.access.is_none() {
            errs.add(
                &format!("gateway.rateLimits.{}.perPrincipal", e.raw_key),
                if open_everywhere {
                    "backend.auth.dangerouslyDisableDefaultAuthPolicy is true, so no token is read for this endpoint and a per-principal budget never counts; give the endpoint an access policy (which reads one) or use total".to_string()
                } else {
                    format!("endpoint '{}' is dangerously-allow-unauthenticated, so no token is read and a per-principal budget never counts; use total", e.raw_key)
                },
            );
        }
        if service && e.rate_limit.is_some() {
            for o in endpoints.iter().filter(|o| !std::ptr::eq(*o, e)) {
                if target_contains(e, o) || target_contains(o, e) || same_target(e, o) {
                    errs.add(
                        &format!("gateway.rateLimits.{}", e.raw_key),
                        format!("the targets of '{}' and '{}' nest, so requests through one land under the other's target; with gateway.rateLimitService a request is counted for one endpoint only, so budgets cannot follow where it lands: give the endpoints targets that do not nest, or count here without the service", e.raw_key, o.raw_key),
                    );
                }
            }
        }
    }
}

/// The principals a configured source can produce: a static token's or a
/// legacy secret's subject exactly, or every subject under a `jwks`
/// entry's `external:[<prefix>:]`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Produces {
    Exactly(String),
    Under(String),
}

impl Produces {
    fn overlaps(&self, other: &Produces) -> bool {
        match (self, other) {
            (Produces::Exactly(a), Produces::Exactly(b)) => a == b,
            (Produces::Exactly(a), Produces::Under(n))
            | (Produces::Under(n), Produces::Exactly(a)) => a.starts_with(n.as_str()),
            (Produces::Under(a), Produces::Under(b)) => {
                a.starts_with(b.as_str()) || b.starts_with(a.as_str())
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Produces::Exactly(s) => format!("'{s}'"),
            Produces::Under(n) => format!("'{n}…'"),
        }
    }
}

/// Where policies or budgets name principals, no two configured sources
/// (static tokens, legacy secrets, `jwks` entries) may produce the same
/// principal: a `jwks` entry without `subjectPrefix` could otherwise
/// present `sub: corp:deployer` and be the caller another entry's prefix
/// `corp` names, or `sub: backstage-plugin` and be every legacy secret.
/// Static tokens that share a subject (kept for rotation) are one source.
fn refuse_shared_principals(errs: &mut Errors, auth: &AuthConfig) {
    let mut sources: Vec<(String, Produces)> = Vec::new();
    let mut seen_static: Vec<&str> = Vec::new();
    for t in &auth.static_tokens {
        if !seen_static.contains(&t.subject.as_str()) {
            seen_static.push(&t.subject);
            sources.push((
                format!("the static token of subject '{}'", t.subject),
                Produces::Exactly(t.subject.clone()),
            ));
        }
    }
    let mut seen_legacy: Vec<&str> = Vec::new();
    for l in &auth.legacy {
        if !seen_legacy.contains(&l.subject.as_str()) {
            seen_legacy.push(&l.subject);
            sources.push((
                format!("the legacy secret of subject '{}'", l.subject),
                Produces::Exactly(l.subject.clone()),
            ));
        }
    }
    for j in &auth.jwks {
        let under = match &j.subject_prefix {
            Some(p) => format!("external:{p}:"),
            None => "external:".to_string(),
        };
        sources.push((
            match &j.subject_prefix {
                Some(p) => format!("the jwks entry with subjectPrefix '{p}'"),
                None => "a jwks entry without subjectPrefix".to_string(),
            },
            Produces::Under(under),
        ));
    }
    for (i, (a_name, a)) in sources.iter().enumerate() {
        for (b_name, b) in sources.iter().skip(i + 1) {
            if a.overlaps(b) {
                errs.add(
                    "backend.auth.externalAccess",
                    format!(
                        "{a_name} and {b_name} can both produce the principal {}, so a policy or budget naming it could not tell them apart; give the jwks entries distinct subjectPrefix values and the tokens subjects outside them",
                        if matches!(a, Produces::Exactly(_)) { a.describe() } else { b.describe() }
                    ),
                );
            }
        }
    }
}

/// An endpoint whose target lies under, or is, the target of an endpoint
/// that `holds` a policy of `section` is held to that policy too; it must
/// say so with an entry of its own (its own policy, or `empty`: nothing of
/// its own), never be held to it unawares.
fn require_own_entry(
    errs: &mut Errors,
    endpoints: &[Endpoint],
    section: &str,
    holds: impl Fn(&Endpoint) -> bool,
    what: &str,
    empty: &str,
) {
    for a in endpoints.iter().filter(|a| holds(a)) {
        for b in endpoints.iter().filter(|b| {
            !std::ptr::eq(*b, a) && !holds(b) && (target_contains(a, b) || same_target(a, b))
        }) {
            errs.add(
                &format!("{section}.{}", a.raw_key),
                format!(
                    "the target of '{}' lies under this endpoint's target, so requests through '{}' are held to this {what} too; give '{}' an entry in {section}, its own {what} or {empty} for nothing of its own",
                    b.raw_key, b.raw_key, b.raw_key
                ),
            );
        }
    }
}

/// Lower-cased normalised key → endpoint index; two keys for the same
/// paths are an error.
fn index_endpoints(
    errs: &mut Errors,
    endpoints: &[Endpoint],
) -> crate::fasthash::FastMap<String, usize> {
    let mut index = crate::fasthash::map();
    for (i, ep) in endpoints.iter().enumerate() {
        if let Some(prev) = index.insert(ep.key.to_ascii_lowercase(), i) {
            let prev_key = endpoints
                .get(prev)
                .map(|e| e.raw_key.as_str())
                .unwrap_or_default();
            errs.add(
                &format!("proxy.endpoints.{}", ep.raw_key),
                format!("endpoint key matches the same paths as '{prev_key}' (keys are normalised and case-insensitive)"),
            );
        }
    }
    index
}

/// A warning for each open endpoint whose target holds a stricter one's.
fn nesting_warnings(warnings: &mut Vec<String>, endpoints: &[Endpoint], nested: &[Vec<usize>]) {
    for (outer, inner) in nested.iter().enumerate() {
        for &b in inner {
            if let (Some(a), Some(b)) = (endpoints.get(outer), endpoints.get(b)) {
                warnings.push(format!(
                    "proxy.endpoints.{}: its target contains the target of '{}', whose credentials are stricter; requests through '{}' that land under {} get '{}''s credentials",
                    a.raw_key, b.raw_key, a.raw_key, b.target.path, b.raw_key
                ));
            }
        }
    }
}

/// `b`'s target lies strictly under `a`'s on the same origin (scheme,
/// host, port). Equal targets are not nesting.
fn target_contains(a: &Endpoint, b: &Endpoint) -> bool {
    let outer = a.target.path.trim_end_matches('/');
    let inner = b.target.path.trim_end_matches('/');
    b.target.scheme == a.target.scheme
        && b.target.host == a.target.host
        && b.target.port == a.target.port
        && inner.len() > outer.len()
        && inner
            .get(..outer.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(outer))
        && inner.as_bytes().get(outer.len()) == Some(&b'/')
}

/// For each endpoint, the others on the same origin whose targets hold,
/// equal or lie under its target.
fn landing_candidates(endpoints: &[Endpoint]) -> Vec<Vec<usize>> {
    endpoints
        .iter()
        .enumerate()
        .map(|(i, a)| {
            endpoints
                .iter()
                .enumerate()
                .filter(|(j, b)| {
                    *j != i && (target_contains(a, b) || target_contains(b, a) || same_target(a, b))
                })
                .map(|(j, _)| j)
                .collect()
        })
        .collect()
}

/// The same origin and the same target path (ignoring a trailing `/` and
/// ASCII case, as [`target_contains`] reads them).
fn same_target(a: &Endpoint, b: &Endpoint) -> bool {
    a.target.scheme == b.target.scheme
        && a.target.host == b.target.host
        && a.target.port == b.target.port
        && a.target
            .path
            .trim_end_matches('/')
            .eq_ignore_ascii_case(b.target.path.trim_end_matches('/'))
}

/// `docs/contract.md#4-credentials-per-endpoint`: for each endpoint A, the endpoints B whose target lies
/// under A's ([`target_contains`]) and whose credentials are stricter.
fn nested_stricter(endpoints: &[Endpoint], all_open: bool) -> Vec<Vec<usize>> {
    endpoints
        .iter()
        .map(|a| {
            if all_open || a.credentials != Credentials::DangerouslyAllowUnauthenticated {
                return Vec::new();
            }
            endpoints
                .iter()
                .enumerate()
                .filter(|(_, b)| {
                    b.credentials != Credentials::DangerouslyAllowUnauthenticated
                        && target_contains(a, b)
                })
                .map(|(i, _)| i)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests;
