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
/// How long the permission backend's answers are kept: the time Backstage
/// itself keeps a user's identity for permission decisions.
pub const DEFAULT_PERMISSION_CACHE_SECONDS: u64 = 5;
/// A Backstage user token is about a kilobyte: at most some 4 MiB per VM.
pub const DEFAULT_PERMISSION_CACHE_SIZE: usize = 4_096;
/// How long the permission backend may take before the request is refused.
pub const DEFAULT_PERMISSION_TIMEOUT_MS: u64 = 2_000;
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
    /// `auth`: the `Authorization: Basic …` value sent when the outgoing
    /// request has no `Authorization` of its own.
    pub basic_auth: Option<String>,
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

/// One `accessRestrictions` entry: the plugin a service principal may
/// call, and the permissions it may hold there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRestriction {
    pub plugin: String,
    pub permission: crate::permission::Restriction,
}

/// An external-access entry's restrictions (`None`: unrestricted), shared
/// by every token it verifies.
pub type Restrictions = Option<std::sync::Arc<[AccessRestriction]>>;

#[derive(Clone, Debug)]
pub struct StaticToken {
    /// SHA-256 of the token: the configuration may carry only the digest
    /// (`tokenDigest`), so the filter recognises a token it never holds.
    pub digest: [u8; 32],
    pub subject: String,
    pub restrictions: Restrictions,
}

#[derive(Clone, Debug)]
pub struct LegacySecret {
    pub key: Vec<u8>,
    pub subject: String,
    pub restrictions: Restrictions,
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
    pub restrictions: Restrictions,
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
    /// `gateway.permissionCacheSeconds`, `permissionCacheSize` and
    /// `permissionTimeoutMs` (`docs/permissions.md#the-cache`).
    pub permission_cache_seconds: u64,
    pub permission_cache_size: usize,
    pub permission_timeout_ms: u64,
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
mod policies;
mod rate_limits;
mod targets;

use backend::parse_backend;
use endpoint::parse_proxy;
use gateway::parse_gateway;
pub use interpolate::{interpolate, referenced_env_vars};
use json::*;
pub use json::{is_token, normalise_key};
use policies::parse_policies;
use targets::{landing_candidates, nested_stricter, nesting_warnings};

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
        parse_backend(&mut errs, &mut warnings, backend_obj, gateway_obj, env);
    let cors = backend_obj
        .get("cors")
        .and_then(|v| cors::parse_cors(&mut errs, &mut warnings, v));

    let proxy_obj = match root.get("proxy") {
        Some(v) => as_object(&mut errs, "proxy", v).unwrap_or(&empty),
        None => &empty,
    };
    let proxy = parse_proxy(&mut errs, &mut warnings, proxy_obj, env);
    let mut endpoints = parse_policies(
        &mut errs,
        &mut warnings,
        gateway_obj,
        &gateway,
        disable_default_auth_policy,
        &auth,
        proxy,
    );

    if backend.is_none() {
        permissions_need_backend(&mut errs, &endpoints);
    }
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

/// A `permission` in `gateway.access` is asked of Backstage's permission
/// backend for users: without a backend it could never be answered.
fn permissions_need_backend(errs: &mut Errors, endpoints: &[Endpoint]) {
    for e in endpoints {
        let Some(policy) = &e.access else { continue };
        let at = format!("gateway.access.{}", e.raw_key);
        let mut paths: Vec<String> = Vec::new();
        if policy.permission.is_some() {
            paths.push(format!("{at}.permission"));
        }
        for (i, r) in policy.rules.iter().enumerate() {
            if r.permission.is_some() {
                paths.push(format!("{at}.rules[{i}].permission"));
            }
        }
        for path in paths {
            errs.add(&path, "needs the Backstage backend (backend.baseUrl or gateway.backendUrl): users' permissions are asked of its permission backend");
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

#[cfg(test)]
mod tests;
