//! Configuration: the JSON a user gives the filter, validated completely at
//! load time and compiled into an immutable [`Plan`].
//!
//! Every error names its JSON path (`proxy.endpoints./pd.credentials: …`).
//! The filter and the command-line tool share this code, so they report the
//! same errors for the same input.

use std::collections::HashSet;
use std::fmt;

use regex_lite::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use crate::base64;
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
    /// are stricter (SPEC §2 step 4): a request through it that lands under
    /// one of their target paths gets their credentials.
    pub nested_stricter: Vec<Vec<usize>>,
    /// The longest key in `index`, in bytes: no candidate longer than this
    /// is ever looked up, so matching is linear in the request path.
    pub longest_key: usize,
    pub auth: AuthConfig,
    pub backend: Option<Backend>,
    /// Non-fatal findings (skipped endpoints, deprecated forms, options handled
    /// outside the filter). Never contains a secret.
    pub warnings: Vec<String>,
}

/// Collects errors with their JSON path.
struct Errors {
    list: Vec<ConfigError>,
}

impl Errors {
    fn add(&mut self, path: &str, message: impl Into<String>) {
        self.list.push(ConfigError {
            path: path.to_string(),
            message: message.into(),
        });
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check_keys(errs: &mut Errors, path: &str, obj: &Map<String, Value>, allowed: &[&str]) {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            errs.add(
                &join(path, key),
                format!(
                    "unknown key '{key}'; expected one of {}",
                    allowed.join(", ")
                ),
            );
        }
    }
}

fn as_object<'a>(errs: &mut Errors, path: &str, v: &'a Value) -> Option<&'a Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        other => {
            errs.add(
                path,
                format!("must be an object, but is of type {}", type_name(other)),
            );
            None
        }
    }
}

fn opt_bool(errs: &mut Errors, obj: &Map<String, Value>, path: &str, key: &str) -> Option<bool> {
    match obj.get(key)? {
        Value::Bool(b) => Some(*b),
        other => {
            errs.add(
                &join(path, key),
                format!("must be a boolean, but is of type {}", type_name(other)),
            );
            None
        }
    }
}

fn opt_string<'a>(
    errs: &mut Errors,
    obj: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Option<&'a str> {
    match obj.get(key)? {
        Value::String(s) => Some(s),
        other => {
            errs.add(
                &join(path, key),
                format!("must be a string, but is of type {}", type_name(other)),
            );
            None
        }
    }
}

fn opt_uint(
    errs: &mut Errors,
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
    min: u64,
    max: u64,
) -> Option<u64> {
    let v = obj.get(key)?;
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            errs.add(
                &join(path, key),
                format!("must be a whole number from {min} to {max}"),
            );
            None
        }
    }
}

/// Backstage's `^\S+$` for tokens, secrets and subjects.
fn is_non_whitespace(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_whitespace)
}

/// RFC 9110 token characters (header names, methods).
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Normalises an endpoint key: a leading `/`, no trailing `/`.
pub fn normalise_key(key: &str) -> String {
    let trimmed = key.trim_end_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// A string or array of strings, each string split on commas and spaces, as
/// Backstage reads `issuer`, `audience`, `algorithm` and `permission`.
fn string_list(errs: &mut Errors, path: &str, v: &Value) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut push = |s: &str| {
        for part in s.split([',', ' ']) {
            if !part.is_empty() {
                out.push(part.to_string());
            }
        }
    };
    match v {
        Value::String(s) => push(s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => push(s),
                    other => {
                        errs.add(
                            &format!("{path}[{i}]"),
                            format!("must be a string, but is of type {}", type_name(other)),
                        );
                        return None;
                    }
                }
            }
        }
        other => {
            errs.add(
                path,
                format!(
                    "must be a string or an array of strings, but is of type {}",
                    type_name(other)
                ),
            );
            return None;
        }
    }
    if out.is_empty() {
        errs.add(path, "must not be empty");
        return None;
    }
    Some(out)
}

/// Replaces `${NAME}` from the environment; `$${` is a literal `${`.
/// Errors name the variable, never its value.
pub fn interpolate(template: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        let (before, after) = rest.split_at(pos);
        out.push_str(before);
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| "unterminated '${' in value".to_string())?;
            let (name, tail) = tail.split_at(end);
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("invalid environment variable name '{name}'"));
            }
            let value =
                env(name).ok_or_else(|| format!("environment variable '{name}' is not set"))?;
            if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(format!(
                    "environment variable '{name}' contains CR, LF or NUL"
                ));
            }
            out.push_str(&value);
            rest = tail.get(1..).unwrap_or_default();
        } else {
            out.push('$');
            rest = after.get(1..).unwrap_or_default();
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The names of every `${NAME}` a configuration references (for Envoy's
/// `vm_config.environment_variables.host_env_keys`).
pub fn referenced_env_vars(template: &str) -> Vec<String> {
    let names = std::cell::RefCell::new(Vec::new());
    let _ = interpolate(template, &|name| {
        names.borrow_mut().push(name.to_string());
        Some(String::new())
    });
    names.into_inner()
}

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

    let proxy_obj = match root.get("proxy") {
        Some(v) => as_object(&mut errs, "proxy", v).unwrap_or(&empty),
        None => &empty,
    };
    let endpoints = parse_proxy(&mut errs, &mut warnings, proxy_obj, env);

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

    if !errs.list.is_empty() {
        return Err(errs.list);
    }
    let nested_stricter = nested_stricter(&endpoints, disable_default_auth_policy);
    for (outer, inner) in nested_stricter.iter().enumerate() {
        for &b in inner {
            if let (Some(a), Some(b)) = (endpoints.get(outer), endpoints.get(b)) {
                warnings.push(format!(
                    "proxy.endpoints.{}: its target contains the target of '{}', whose credentials are stricter; requests through '{}' that land under {} get '{}''s credentials",
                    a.raw_key, b.raw_key, a.raw_key, b.target.path, b.raw_key
                ));
            }
        }
    }
    Ok(Plan {
        nested_stricter,
        prefix_lower: gateway.prefix.to_ascii_lowercase(),
        gateway,
        disable_default_auth_policy,
        endpoints,
        longest_key: index.keys().map(String::len).max().unwrap_or(0),
        index,
        auth,
        backend,
        warnings,
    })
}

/// SPEC §2 step 4: for each endpoint A, the endpoints B on the same origin
/// (scheme, host, port) whose target path lies strictly under A's and whose
/// credentials are stricter. Equal targets are not nesting.
fn nested_stricter(endpoints: &[Endpoint], all_open: bool) -> Vec<Vec<usize>> {
    endpoints
        .iter()
        .map(|a| {
            if all_open || a.credentials != Credentials::DangerouslyAllowUnauthenticated {
                return Vec::new();
            }
            let outer = a.target.path.trim_end_matches('/');
            endpoints
                .iter()
                .enumerate()
                .filter(|(_, b)| {
                    let inner = b.target.path.trim_end_matches('/');
                    b.credentials != Credentials::DangerouslyAllowUnauthenticated
                        && b.target.scheme == a.target.scheme
                        && b.target.host == a.target.host
                        && b.target.port == a.target.port
                        && inner.len() > outer.len()
                        && inner
                            .get(..outer.len())
                            .is_some_and(|h| h.eq_ignore_ascii_case(outer))
                        && inner.as_bytes().get(outer.len()) == Some(&b'/')
                })
                .map(|(i, _)| i)
                .collect()
        })
        .collect()
}

fn parse_gateway(errs: &mut Errors, obj: &Map<String, Value>) -> Gateway {
    let p = "gateway";
    check_keys(
        errs,
        p,
        obj,
        &[
            "prefix",
            "clusterHeader",
            "backendUrl",
            "backendCluster",
            "pluginId",
            "clockSkewSeconds",
            "tokenCacheSize",
            "jwksCacheSeconds",
            "jwksFetchTimeoutMs",
            "jwksRefetchCooldownSeconds",
            "jwksMaxBytes",
        ],
    );
    let prefix = match opt_string(errs, obj, p, "prefix") {
        None => DEFAULT_PREFIX.to_string(),
        Some(s) => {
            let norm = normalise_key(s);
            if !s.starts_with('/')
                || norm.is_empty()
                || s.contains(['?', '#', '%', '\\'])
                || s.contains("//")
                || s.bytes().any(|b| b <= b' ' || b >= 0x7f)
            {
                errs.add(
                    &join(p, "prefix"),
                    "must be an absolute path such as /api/proxy (no query, no '%', '\\' or '//')",
                );
            }
            norm
        }
    };
    let cluster_header = match opt_string(errs, obj, p, "clusterHeader") {
        None => DEFAULT_CLUSTER_HEADER.to_string(),
        Some(s) => {
            if !is_token(s) {
                errs.add(&join(p, "clusterHeader"), "must be a valid header name");
            }
            s.to_ascii_lowercase()
        }
    };
    let plugin_id = match opt_string(errs, obj, p, "pluginId") {
        None => DEFAULT_PLUGIN_ID.to_string(),
        Some(s) => {
            if s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                errs.add(&join(p, "pluginId"), "must match ^[a-z0-9_-]+$");
            }
            s.to_string()
        }
    };
    Gateway {
        prefix,
        xfwd_marker: format!("{cluster_header}-xfwd"),
        cluster_header,
        plugin_id,
        clock_skew_seconds: opt_uint(errs, obj, p, "clockSkewSeconds", 0, 300).unwrap_or(0),
        token_cache_size: opt_uint(errs, obj, p, "tokenCacheSize", 0, 1_000_000)
            .map(|n| n as usize)
            .unwrap_or(DEFAULT_TOKEN_CACHE_SIZE),
        jwks_cache_seconds: opt_uint(errs, obj, p, "jwksCacheSeconds", 1, 86_400)
            .unwrap_or(DEFAULT_JWKS_CACHE_SECONDS),
        jwks_fetch_timeout_ms: opt_uint(errs, obj, p, "jwksFetchTimeoutMs", 100, 60_000)
            .unwrap_or(DEFAULT_JWKS_FETCH_TIMEOUT_MS),
        jwks_refetch_cooldown_seconds: opt_uint(
            errs,
            obj,
            p,
            "jwksRefetchCooldownSeconds",
            1,
            3600,
        )
        .unwrap_or(DEFAULT_JWKS_REFETCH_COOLDOWN_SECONDS),
        jwks_max_bytes: opt_uint(errs, obj, p, "jwksMaxBytes", 1024, 1024 * 1024)
            .map(|n| n as usize)
            .unwrap_or(DEFAULT_JWKS_MAX_BYTES),
    }
}

/// Keys of Backstage's `backend` block that configure the Backstage server
/// itself; accepted (so a user can paste the block) and ignored here.
const BACKEND_SERVER_KEYS: [&str; 15] = [
    "listen",
    "https",
    "database",
    "cache",
    "cors",
    "csp",
    "reading",
    "workingDirectory",
    "lifecycle",
    "rateLimit",
    "trustProxy",
    "auditor",
    "health",
    "actions",
    "packages",
];

fn parse_backend(
    errs: &mut Errors,
    warnings: &mut Vec<String>,
    obj: &Map<String, Value>,
    gateway_obj: &Map<String, Value>,
) -> (Option<Backend>, bool, AuthConfig) {
    let p = "backend";
    let mut allowed = vec!["baseUrl", "auth"];
    allowed.extend_from_slice(&BACKEND_SERVER_KEYS);
    check_keys(errs, p, obj, &allowed);

    // The Backstage backend, as the gateway reaches it.
    let base_url = opt_string(errs, obj, p, "baseUrl");
    let internal = opt_string(errs, gateway_obj, "gateway", "backendUrl");
    let explicit_cluster = opt_string(errs, gateway_obj, "gateway", "backendCluster");
    let backend = match internal
        .map(|u| ("gateway.backendUrl", u))
        .or(base_url.map(|u| ("backend.baseUrl", u)))
    {
        None => None,
        Some((path, raw)) => match Url::parse(raw) {
            Ok(url) => {
                let cluster = explicit_cluster
                    .map(str::to_string)
                    .unwrap_or_else(|| url.cluster_name());
                Some(Backend { url, cluster })
            }
            Err(e) => {
                errs.add(path, format!("is not a valid URL: {e}"));
                None
            }
        },
    };

    let empty = Map::new();
    let auth_obj = match obj.get("auth") {
        Some(v) => as_object(errs, "backend.auth", v).unwrap_or(&empty),
        None => &empty,
    };
    let ap = "backend.auth";
    check_keys(
        errs,
        ap,
        auth_obj,
        &[
            "dangerouslyDisableDefaultAuthPolicy",
            "keys",
            "externalAccess",
            "pluginKeyStore",
            "keyStore",
        ],
    );
    let disable =
        opt_bool(errs, auth_obj, ap, "dangerouslyDisableDefaultAuthPolicy").unwrap_or(false);
    if disable {
        warnings.push("backend.auth.dangerouslyDisableDefaultAuthPolicy is true: no endpoint requires credentials".to_string());
    }

    let mut auth = AuthConfig::default();
    if let Some(keys) = auth_obj.get("keys") {
        let kp = "backend.auth.keys";
        match keys {
            Value::Array(items) => {
                if !items.is_empty() {
                    warnings.push("backend.auth.keys is deprecated in Backstage; prefer backend.auth.externalAccess with type: legacy".to_string());
                }
                for (i, item) in items.iter().enumerate() {
                    let ip = format!("{kp}[{i}]");
                    let Some(o) = as_object(errs, &ip, item) else {
                        continue;
                    };
                    check_keys(errs, &ip, o, &["secret"]);
                    if let Some(key) = parse_secret(errs, o, &ip) {
                        auth.legacy.push(LegacySecret {
                            key,
                            subject: "external:backstage-plugin".to_string(),
                            restrictions: None,
                        });
                    }
                }
            }
            other => errs.add(
                kp,
                format!("must be an array, but is of type {}", type_name(other)),
            ),
        }
    }

    if let Some(ext) = auth_obj.get("externalAccess") {
        let ep = "backend.auth.externalAccess";
        match ext {
            Value::Array(items) => {
                let mut seen_tokens: HashSet<&[u8]> = HashSet::new();
                let mut statics = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let ip = format!("{ep}[{i}]");
                    let Some(o) = as_object(errs, &ip, item) else {
                        continue;
                    };
                    check_keys(errs, &ip, o, &["type", "options", "accessRestrictions"]);
                    let restrictions = o.get("accessRestrictions").and_then(|v| {
                        parse_restrictions(errs, &join(&ip, "accessRestrictions"), v)
                    });
                    let op = join(&ip, "options");
                    let options = match o.get("options") {
                        Some(v) => as_object(errs, &op, v),
                        None => {
                            errs.add(&op, "is required");
                            None
                        }
                    };
                    let kind = match o.get("type") {
                        Some(Value::String(s)) => s.as_str(),
                        Some(other) => {
                            errs.add(
                                &join(&ip, "type"),
                                format!("must be a string, but is of type {}", type_name(other)),
                            );
                            continue;
                        }
                        None => {
                            errs.add(
                                &join(&ip, "type"),
                                "is required; expected one of static, legacy, jwks",
                            );
                            continue;
                        }
                    };
                    let Some(options) = options else { continue };
                    match kind {
                        "static" => {
                            check_keys(errs, &op, options, &["token", "subject"]);
                            let token = required_string(errs, options, &op, "token");
                            let subject = parse_subject(errs, options, &op);
                            if let Some(t) = token {
                                if !is_non_whitespace(t) {
                                    errs.add(
                                        &join(&op, "token"),
                                        "must not be empty or contain whitespace",
                                    );
                                } else if t.chars().count() < 8 {
                                    errs.add(
                                        &join(&op, "token"),
                                        "must be at least 8 characters long",
                                    );
                                }
                            }
                            if let (Some(t), Some(s)) = (token, subject) {
                                statics.push((join(&op, "token"), t, s, restrictions));
                            }
                        }
                        "legacy" => {
                            check_keys(errs, &op, options, &["secret", "subject"]);
                            let key = parse_secret(errs, options, &op);
                            let subject = parse_subject(errs, options, &op);
                            if let (Some(key), Some(subject)) = (key, subject) {
                                auth.legacy.push(LegacySecret {
                                    key,
                                    subject: subject.to_string(),
                                    restrictions,
                                });
                            }
                        }
                        "jwks" => {
                            if let Some(provider) = parse_jwks(errs, options, &op, restrictions) {
                                auth.jwks.push(provider);
                            }
                        }
                        other => errs.add(
                            &join(&ip, "type"),
                            format!("unknown type '{other}'; expected one of static, legacy, jwks"),
                        ),
                    }
                }
                for (path, token, subject, restrictions) in statics {
                    if !seen_tokens.insert(token.as_bytes()) {
                        errs.add(&path, "the same static token is configured more than once");
                        continue;
                    }
                    auth.static_tokens.push(StaticToken {
                        token: token.as_bytes().to_vec(),
                        subject: subject.to_string(),
                        restrictions,
                    });
                }
            }
            other => errs.add(
                ep,
                format!("must be an array, but is of type {}", type_name(other)),
            ),
        }
    }
    if backend.is_none() {
        warnings.push(
            "neither backend.baseUrl nor gateway.backendUrl is set: Backstage user and plugin tokens cannot be verified".to_string(),
        );
    }
    (backend, disable, auth)
}

fn required_string<'a>(
    errs: &mut Errors,
    obj: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Option<&'a str> {
    if !obj.contains_key(key) {
        errs.add(&join(path, key), "is required");
        return None;
    }
    opt_string(errs, obj, path, key)
}

fn parse_subject<'a>(
    errs: &mut Errors,
    obj: &'a Map<String, Value>,
    path: &str,
) -> Option<&'a str> {
    let s = required_string(errs, obj, path, "subject")?;
    if !is_non_whitespace(s) {
        errs.add(
            &join(path, "subject"),
            "must not be empty or contain whitespace",
        );
        return None;
    }
    Some(s)
}

/// A base64 (either alphabet) secret that must decode to a non-empty key.
/// Errors never quote the secret.
fn parse_secret(errs: &mut Errors, obj: &Map<String, Value>, path: &str) -> Option<Vec<u8>> {
    let s = required_string(errs, obj, path, "secret")?;
    if !is_non_whitespace(s) {
        errs.add(
            &join(path, "secret"),
            "must not be empty or contain whitespace",
        );
        return None;
    }
    let valid = s
        .trim_end_matches('=')
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'));
    let key = base64::decode_secret(s);
    if !valid || key.is_empty() {
        errs.add(
            &join(path, "secret"),
            "must be base64 that decodes to a non-empty key",
        );
        return None;
    }
    Some(key)
}

fn parse_restrictions(errs: &mut Errors, path: &str, v: &Value) -> Option<Vec<String>> {
    let Value::Array(items) = v else {
        errs.add(
            path,
            format!("must be an array, but is of type {}", type_name(v)),
        );
        return None;
    };
    if items.is_empty() {
        errs.add(path, "must not be empty");
        return None;
    }
    let mut plugins: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let Some(o) = as_object(errs, &ip, item) else {
            continue;
        };
        check_keys(
            errs,
            &ip,
            o,
            &["plugin", "permission", "permissionAttribute"],
        );
        match required_string(errs, o, &ip, "plugin") {
            Some(p) if !is_non_whitespace(p) => errs.add(
                &join(&ip, "plugin"),
                "must not be empty or contain whitespace",
            ),
            Some(p) if plugins.iter().any(|x| x == p) => {}
            Some(p) => plugins.push(p.to_string()),
            None => {}
        }
        if let Some(perm) = o.get("permission") {
            string_list(errs, &join(&ip, "permission"), perm);
        }
        if let Some(attr) = o.get("permissionAttribute") {
            let ap = join(&ip, "permissionAttribute");
            if let Some(a) = as_object(errs, &ap, attr) {
                check_keys(errs, &ap, a, &["action"]);
                if let Some(actions) = a
                    .get("action")
                    .and_then(|v| string_list(errs, &join(&ap, "action"), v))
                {
                    for action in actions {
                        if !["create", "read", "update", "delete"].contains(&action.as_str()) {
                            errs.add(&join(&ap, "action"), format!("unknown action '{action}'; expected one of create, read, update, delete"));
                        }
                    }
                }
            }
        }
    }
    Some(plugins)
}

fn parse_jwks(
    errs: &mut Errors,
    options: &Map<String, Value>,
    op: &str,
    restrictions: Option<Vec<String>>,
) -> Option<JwksProvider> {
    check_keys(
        errs,
        op,
        options,
        &[
            "url",
            "issuer",
            "audience",
            "algorithm",
            "subjectPrefix",
            "cluster",
        ],
    );
    let raw_url = required_string(errs, options, op, "url");
    let url = raw_url.and_then(|u| match Url::parse(u) {
        Ok(url) => Some(url),
        Err(e) => {
            errs.add(&join(op, "url"), format!("is not a valid URL: {e}"));
            None
        }
    });
    let issuers = options
        .get("issuer")
        .and_then(|v| string_list(errs, &join(op, "issuer"), v));
    let audiences = options
        .get("audience")
        .and_then(|v| string_list(errs, &join(op, "audience"), v));
    let algorithms = options
        .get("algorithm")
        .and_then(|v| string_list(errs, &join(op, "algorithm"), v));
    if let Some(algs) = &algorithms {
        for alg in algs {
            if !JWS_ALGORITHMS.contains(&alg.as_str()) || alg.starts_with("HS") {
                errs.add(
                    &join(op, "algorithm"),
                    format!("unsupported algorithm '{alg}' for a key set; expected asymmetric algorithms such as ES256, RS256, PS256, EdDSA"),
                );
            }
        }
    }
    let subject_prefix = opt_string(errs, options, op, "subjectPrefix").map(str::to_string);
    let cluster = opt_string(errs, options, op, "cluster").map(str::to_string);
    let url = url?;
    Some(JwksProvider {
        cluster: cluster.unwrap_or_else(|| url.cluster_name()),
        raw_url: raw_url.unwrap_or_default().to_string(),
        url,
        issuers,
        audiences,
        algorithms,
        subject_prefix,
        restrictions,
    })
}

fn parse_proxy(
    errs: &mut Errors,
    warnings: &mut Vec<String>,
    obj: &Map<String, Value>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<Endpoint> {
    let p = "proxy";
    let skip_invalid = opt_bool(errs, obj, p, "skipInvalidProxies").unwrap_or(false);
    let _ = opt_bool(errs, obj, p, "reviveConsumedRequestBodies");

    let legacy_keys: Vec<&String> = obj.keys().filter(|k| k.starts_with('/')).collect();
    let (entries, base): (Vec<(&String, &Value)>, String) = match obj.get("endpoints") {
        Some(v) => {
            for k in obj.keys() {
                if !k.starts_with('/')
                    && ![
                        "endpoints",
                        "skipInvalidProxies",
                        "reviveConsumedRequestBodies",
                    ]
                    .contains(&k.as_str())
                {
                    errs.add(&join(p, k), format!("unknown key '{k}'; expected one of endpoints, skipInvalidProxies, reviveConsumedRequestBodies"));
                }
            }
            if !legacy_keys.is_empty() {
                warnings.push("endpoints directly under 'proxy' are ignored because proxy.endpoints is present".to_string());
            }
            match as_object(errs, "proxy.endpoints", v) {
                Some(m) => (m.iter().collect(), "proxy.endpoints".to_string()),
                None => (Vec::new(), String::new()),
            }
        }
        None => {
            for k in obj.keys() {
                if !k.starts_with('/')
                    && !["skipInvalidProxies", "reviveConsumedRequestBodies"].contains(&k.as_str())
                {
                    errs.add(&join(p, k), format!("unknown key '{k}'; expected endpoints, skipInvalidProxies, reviveConsumedRequestBodies or endpoint keys starting with '/'"));
                }
            }
            if !legacy_keys.is_empty() {
                warnings.push(
                    "Configuring proxy endpoints in the root 'proxy' configuration is deprecated. Move this configuration to 'proxy.endpoints' instead."
                        .to_string(),
                );
            }
            (
                obj.iter().filter(|(k, _)| k.starts_with('/')).collect(),
                "proxy".to_string(),
            )
        }
    };

    let mut endpoints = Vec::new();
    for (key, value) in entries {
        let path = join(&base, key);
        let mut local = Errors { list: Vec::new() };
        let ep = parse_endpoint(&mut local, warnings, &path, key, value, env);
        if local.list.is_empty() {
            if let Some(ep) = ep {
                endpoints.push(ep);
            }
        } else if skip_invalid {
            for e in local.list {
                warnings.push(format!("skipped configuring {key} due to {e}"));
            }
        } else {
            errs.list.extend(local.list);
        }
    }
    endpoints
}

const ENDPOINT_KEYS: [&str; 14] = [
    "target",
    "credentials",
    "headers",
    "allowedMethods",
    "allowedHeaders",
    "pathRewrite",
    "changeOrigin",
    "xfwd",
    "ws",
    "cluster",
    "secure",
    "timeout",
    "proxyTimeout",
    "followRedirects",
];

fn parse_endpoint(
    errs: &mut Errors,
    warnings: &mut Vec<String>,
    path: &str,
    raw_key: &str,
    value: &Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Endpoint> {
    if raw_key
        .bytes()
        .any(|b| b <= b' ' || b == 0x7f || b == b'?' || b == b'#')
    {
        errs.add(
            path,
            "endpoint key must not contain whitespace, control characters, '?' or '#'",
        );
    }
    let empty = Map::new();
    let (obj, target_value): (&Map<String, Value>, Option<&Value>) = match value {
        Value::String(_) => (&empty, Some(value)),
        Value::Object(o) => (o, o.get("target")),
        other => {
            errs.add(
                path,
                format!(
                    "must be a target URL string or an object, but is of type {}",
                    type_name(other)
                ),
            );
            return None;
        }
    };
    check_keys(errs, path, obj, &ENDPOINT_KEYS);

    let credentials = match obj.get("credentials") {
        None => Credentials::Require,
        Some(Value::String(s)) => match s.as_str() {
            "require" => Credentials::Require,
            "forward" => Credentials::Forward,
            "dangerously-allow-unauthenticated" => Credentials::DangerouslyAllowUnauthenticated,
            other => {
                errs.add(
                    &join(path, "credentials"),
                    format!("unknown policy '{other}'; expected one of require, forward, dangerously-allow-unauthenticated"),
                );
                Credentials::Require
            }
        },
        Some(other) => {
            errs.add(
                &join(path, "credentials"),
                format!("must be a string, but is of type {}", type_name(other)),
            );
            Credentials::Require
        }
    };

    let tp = if matches!(value, Value::String(_)) {
        path.to_string()
    } else {
        join(path, "target")
    };
    let target = match target_value {
        Some(Value::String(s)) => match Url::parse(s) {
            Ok(u) => Some(u),
            Err(e) => {
                errs.add(&tp, format!("Proxy target is not a valid URL: {e}"));
                None
            }
        },
        Some(other) => {
            errs.add(
                &tp,
                format!(
                    "Proxy target for route \"{raw_key}\" must be a string, but is of type {}",
                    type_name(other)
                ),
            );
            None
        }
        None => {
            errs.add(&tp, format!("Proxy target for route \"{raw_key}\" must be a string, but is of type undefined"));
            None
        }
    };

    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(h) = obj.get("headers") {
        let hp = join(path, "headers");
        if let Some(ho) = as_object(errs, &hp, h) {
            for (name, v) in ho {
                let np = join(&hp, name);
                let lower = name.to_ascii_lowercase();
                if !is_token(name) {
                    errs.add(&np, "is not a valid header name");
                    continue;
                }
                if NOT_INJECTABLE.contains(&lower.as_str()) {
                    errs.add(
                        &np,
                        "framing and hop-by-hop headers are Envoy's and cannot be injected",
                    );
                    continue;
                }
                if headers.iter().any(|(n, _)| *n == lower) {
                    errs.add(
                        &np,
                        "header is configured twice (names are case-insensitive)",
                    );
                    continue;
                }
                match v {
                    Value::String(template) => match interpolate(template, env) {
                        Ok(value) => {
                            if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                                errs.add(&np, "value contains CR, LF or NUL");
                            } else {
                                headers.push((lower, value));
                            }
                        }
                        Err(msg) => errs.add(&np, msg),
                    },
                    other => errs.add(
                        &np,
                        format!("must be a string, but is of type {}", type_name(other)),
                    ),
                }
            }
        }
    }

    let allowed_methods = match obj.get("allowedMethods") {
        None => None,
        Some(Value::Array(items)) => {
            let mut methods = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(m) if is_token(m) => methods.push(m.clone()),
                    Value::String(_) => errs.add(
                        &format!("{path}.allowedMethods[{i}]"),
                        "is not a valid HTTP method name",
                    ),
                    other => errs.add(
                        &format!("{path}.allowedMethods[{i}]"),
                        format!("must be a string, but is of type {}", type_name(other)),
                    ),
                }
            }
            if methods
                .iter()
                .any(|m| m.bytes().any(|b| b.is_ascii_lowercase()))
            {
                warnings.push(format!("{path}.allowedMethods: methods are compared case-sensitively; lower-case entries match no standard method"));
            }
            Some(methods)
        }
        Some(other) => {
            errs.add(
                &join(path, "allowedMethods"),
                format!("must be an array, but is of type {}", type_name(other)),
            );
            None
        }
    };

    let mut allowed_headers: Vec<String> = Vec::new();
    match obj.get("allowedHeaders") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(h) if is_token(h) => allowed_headers.push(h.to_ascii_lowercase()),
                    Value::String(_) => errs.add(
                        &format!("{path}.allowedHeaders[{i}]"),
                        "is not a valid header name",
                    ),
                    other => errs.add(
                        &format!("{path}.allowedHeaders[{i}]"),
                        format!("must be a string, but is of type {}", type_name(other)),
                    ),
                }
            }
        }
        Some(other) => errs.add(
            &join(path, "allowedHeaders"),
            format!("must be an array, but is of type {}", type_name(other)),
        ),
    }

    let path_rewrite = match obj.get("pathRewrite") {
        None => None,
        Some(v) => {
            let rp = join(path, "pathRewrite");
            let mut rules = Vec::new();
            if let Some(ro) = as_object(errs, &rp, v) {
                for (pattern, repl) in ro {
                    let pp = join(&rp, pattern);
                    let Value::String(replacement) = repl else {
                        errs.add(
                            &pp,
                            format!("must be a string, but is of type {}", type_name(repl)),
                        );
                        continue;
                    };
                    match RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).build() {
                        Ok(regex) => rules.push(RewriteRule { pattern: pattern.clone(), regex, replacement: replacement.clone() }),
                        Err(_) => errs.add(
                            &pp,
                            format!("endpoint '{raw_key}': pathRewrite pattern cannot be compiled (lookaround and backreferences are not supported)"),
                        ),
                    }
                }
            }
            Some(rules)
        }
    };

    let change_origin = opt_bool(errs, obj, path, "changeOrigin").unwrap_or(true);
    let xfwd = opt_bool(errs, obj, path, "xfwd").unwrap_or(false);
    let ws = opt_bool(errs, obj, path, "ws").unwrap_or(false);
    let envoy = EnvoyOptions {
        secure: opt_bool(errs, obj, path, "secure"),
        timeout_ms: opt_uint(errs, obj, path, "timeout", 0, 86_400_000),
        proxy_timeout_ms: opt_uint(errs, obj, path, "proxyTimeout", 0, 86_400_000),
        follow_redirects: opt_bool(errs, obj, path, "followRedirects"),
    };
    for (key, set) in [
        ("secure", envoy.secure.is_some()),
        ("timeout", envoy.timeout_ms.is_some()),
        ("proxyTimeout", envoy.proxy_timeout_ms.is_some()),
        ("followRedirects", envoy.follow_redirects.is_some()),
    ] {
        if set {
            warnings.push(format!("{path}.{key}: handled by Envoy's cluster and route configuration, not by the filter"));
        }
    }
    let cluster = opt_string(errs, obj, path, "cluster");
    if let Some(c) = cluster {
        if c.is_empty() || c.bytes().any(|b| b <= b' ' || b >= 0x7f) {
            errs.add(
                &join(path, "cluster"),
                "must be a non-empty cluster name without whitespace",
            );
        }
    }

    let target = target?;
    let mut request_allow: crate::fasthash::FastSet<String> =
        SAFE_HEADERS.iter().map(|s| s.to_string()).collect();
    let mut response_allow = request_allow.clone();
    request_allow.extend(headers.iter().map(|(n, _)| n.clone()));
    request_allow.extend(allowed_headers.iter().cloned());
    response_allow.extend(allowed_headers.iter().cloned());
    if credentials == Credentials::Forward {
        request_allow.insert("authorization".to_string());
    }
    if ws {
        for h in [
            "connection",
            "upgrade",
            "sec-websocket-key",
            "sec-websocket-version",
            "sec-websocket-protocol",
            "sec-websocket-extensions",
        ] {
            request_allow.insert(h.to_string());
        }
        for h in [
            "connection",
            "upgrade",
            "sec-websocket-accept",
            "sec-websocket-protocol",
            "sec-websocket-extensions",
        ] {
            response_allow.insert(h.to_string());
        }
    }
    let upstream_authority = if change_origin {
        Some(target.authority())
    } else {
        headers
            .iter()
            .find(|(n, _)| n == "host")
            .map(|(_, v)| v.clone())
    };
    Some(Endpoint {
        key: normalise_key(raw_key),
        raw_key: raw_key.to_string(),
        cluster: cluster
            .map(str::to_string)
            .unwrap_or_else(|| target.cluster_name()),
        target,
        credentials,
        headers,
        allowed_methods,
        request_allow,
        response_allow,
        path_rewrite,
        change_origin,
        upstream_authority,
        xfwd,
        ws,
        envoy,
    })
}

#[cfg(test)]
mod tests;
