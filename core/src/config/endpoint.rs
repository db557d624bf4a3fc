//! `proxy` and each endpoint: target, credentials, methods, header lists,
//! injected headers, rewrite, and the options Envoy owns.

mod basic_auth;

use super::json::*;
use super::{
    interpolate, Credentials, Endpoint, EnvoyOptions, RewriteRule, NOT_INJECTABLE,
    REGEX_SIZE_LIMIT, SAFE_HEADERS,
};
use crate::url::Url;
use regex_lite::RegexBuilder;
use serde_json::{Map, Value};

/// The endpoints of `proxy`: the valid ones, and a stand-in for each one
/// refused with an error.
pub(super) struct ParsedProxy {
    pub endpoints: Vec<Endpoint>,
    /// An endpoint whose errors are reported still has its entries in
    /// `gateway.access` and `gateway.rateLimits`: they are checked against
    /// its stand-in, and not reported again as naming no endpoint (one
    /// mistake, one error).
    pub stand_ins: Vec<Endpoint>,
}

pub(super) fn parse_proxy(
    errs: &mut Errors,
    warnings: &mut Vec<String>,
    obj: &Map<String, Value>,
    env: &dyn Fn(&str) -> Option<String>,
) -> ParsedProxy {
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
    let mut stand_ins = Vec::new();
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
            stand_ins.extend(ep.or_else(|| stand_in(&path, key, value, env)));
        }
    }
    ParsedProxy {
        endpoints,
        stand_ins,
    }
}

/// An endpoint refused for its target (or for not being an object) as it
/// would be with a target that parses: what its policy entries are checked
/// against. Its errors are reported already.
fn stand_in(
    path: &str,
    key: &str,
    value: &Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Endpoint> {
    let mut obj = value.as_object().cloned().unwrap_or_default();
    obj.insert("target".to_string(), Value::from("http://stand-in.invalid"));
    let mut ignored = Errors { list: Vec::new() };
    let stand_in = Value::Object(obj);
    parse_endpoint(&mut ignored, &mut Vec::new(), path, key, &stand_in, env)
}

pub(super) const ENDPOINT_KEYS: [&str; 15] = [
    "target",
    "auth",
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

pub(super) fn parse_endpoint(
    errs: &mut Errors,
    warnings: &mut Vec<String>,
    path: &str,
    raw_key: &str,
    value: &Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Endpoint> {
    check_key_text(errs, path, raw_key);
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

    let credentials = credentials(errs, path, obj);

    let target = target(errs, path, raw_key, value, target_value);

    let headers = obj
        .get("headers")
        .map(|h| injected_headers(errs, path, h, env))
        .unwrap_or_default();

    let basic_auth = basic_auth::basic_auth(errs, path, obj, env);

    let allowed_methods = allowed_methods(errs, warnings, path, obj);

    let allowed_headers = allowed_headers(errs, path, obj);

    let path_rewrite = path_rewrite(errs, path, raw_key, obj);

    let change_origin = opt_bool(errs, obj, path, "changeOrigin").unwrap_or(true);
    let xfwd = opt_bool(errs, obj, path, "xfwd").unwrap_or(false);
    let ws = opt_bool(errs, obj, path, "ws").unwrap_or(false);
    let envoy = envoy_options(errs, warnings, path, obj);
    let cluster = explicit_cluster(errs, path, obj);

    let target = target?;
    let (request_allow, response_allow) = allow_lists(&headers, &allowed_headers, credentials, ws);
    let upstream_authority = if change_origin {
        Some(target.authority())
    } else {
        injected_host(&headers)
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
        basic_auth,
        allowed_methods,
        request_allow,
        response_allow,
        path_rewrite,
        change_origin,
        upstream_authority,
        xfwd,
        ws,
        envoy,
        access: None,
        rate_limit: None,
        stat_name: String::new(),
    })
}

/// An endpoint key is literal text: no whitespace, control characters,
/// query or fragment.
fn check_key_text(errs: &mut Errors, path: &str, raw_key: &str) {
    if raw_key
        .bytes()
        .any(|b| b <= b' ' || b == 0x7f || b == b'?' || b == b'#')
    {
        errs.add(
            path,
            "endpoint key must not contain whitespace, control characters, '?' or '#'",
        );
    }
}

/// `cluster`: the Envoy cluster named explicitly, instead of the one the
/// target's URL names.
fn explicit_cluster<'o>(
    errs: &mut Errors,
    path: &str,
    obj: &'o Map<String, Value>,
) -> Option<&'o str> {
    let cluster = opt_string(errs, obj, path, "cluster");
    if let Some(c) = cluster {
        if c.is_empty() || c.bytes().any(|b| b <= b' ' || b >= 0x7f) {
            errs.add(
                &join(path, "cluster"),
                "must be a non-empty cluster name without whitespace",
            );
        }
    }
    cluster
}

/// An injected `Host` header's value: the upstream's authority when
/// `changeOrigin` is off.
fn injected_host(headers: &[(String, String)]) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n == "host")
        .map(|(_, v)| v.clone())
}

/// `headers`: lower-cased names, values with `${NAME}` resolved from the
/// VM's environment; framing and hop-by-hop headers refused.
fn injected_headers(
    errs: &mut Errors,
    path: &str,
    h: &Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
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
    headers
}

/// `allowedMethods`: exact method names (compared case-sensitively).
fn allowed_methods(
    errs: &mut Errors,
    warnings: &mut Vec<String>,
    path: &str,
    obj: &Map<String, Value>,
) -> Option<Vec<String>> {
    match obj.get("allowedMethods") {
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
    }
}

/// `allowedHeaders`: lower-cased header names let through both ways.
fn allowed_headers(errs: &mut Errors, path: &str, obj: &Map<String, Value>) -> Vec<String> {
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
    allowed_headers
}

/// `pathRewrite`: rules in key order, each regex compiled once (size
/// limited); `{}` is no rewrite at all.
fn path_rewrite(
    errs: &mut Errors,
    path: &str,
    raw_key: &str,
    obj: &Map<String, Value>,
) -> Option<Vec<RewriteRule>> {
    match obj.get("pathRewrite") {
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
    }
}

/// `credentials`: the policy, `require` when absent.
fn credentials(errs: &mut Errors, path: &str, obj: &Map<String, Value>) -> Credentials {
    match obj.get("credentials") {
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
    }
}

/// The target URL: the endpoint's string form or its `target`.
fn target(
    errs: &mut Errors,
    path: &str,
    raw_key: &str,
    value: &Value,
    target_value: Option<&Value>,
) -> Option<Url> {
    let tp = if matches!(value, Value::String(_)) {
        path.to_string()
    } else {
        join(path, "target")
    };
    match target_value {
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
    }
}

/// The header names let through each way: the safe list, then the
/// endpoint's own (injected names go upstream only; `authorization` with
/// `forward`; the WebSocket handshake with `ws`).
fn allow_lists(
    headers: &[(String, String)],
    allowed_headers: &[String],
    credentials: Credentials,
    ws: bool,
) -> (
    crate::fasthash::FastSet<String>,
    crate::fasthash::FastSet<String>,
) {
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
    (request_allow, response_allow)
}

/// Options that belong to Envoy's cluster and route configuration: kept
/// for the generator, each noted as handled outside the filter.
fn envoy_options(
    errs: &mut Errors,
    warnings: &mut Vec<String>,
    path: &str,
    obj: &Map<String, Value>,
) -> EnvoyOptions {
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
    envoy
}

/// A `gateway` section keyed by endpoint (`access`, `rateLimits`): calls
/// `f` with each entry's JSON path, its endpoint and its object; a key that
/// names no endpoint is an error at its path.
pub(super) fn for_each_endpoint_entry(
    errs: &mut Errors,
    p: &str,
    v: &Value,
    endpoints: &mut [Endpoint],
    mut f: impl FnMut(&mut Errors, &str, &mut Endpoint, &Map<String, Value>),
) {
    let Some(obj) = as_object(errs, p, v) else {
        return;
    };
    // Two spellings of one endpoint (`/dup` and `/dup/`, `/PagerDuty` in
    // an override file): the later would silently replace the earlier.
    let mut seen: Vec<(usize, &str)> = Vec::new();
    for (key, spec) in obj {
        let kp = format!("{p}.{key}");
        let norm = normalise_key(key);
        let Some((i, endpoint)) = endpoints
            .iter_mut()
            .enumerate()
            .find(|(_, e)| e.key.eq_ignore_ascii_case(&norm))
        else {
            errs.add(&kp, "names no endpoint under proxy.endpoints");
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(j, _)| *j == i) {
            errs.add(
                &kp,
                format!("names the same endpoint as '{first}' (keys are normalised and compared ignoring case); write one entry"),
            );
            continue;
        }
        seen.push((i, key.as_str()));
        if let Some(spec_obj) = as_object(errs, &kp, spec) {
            f(errs, &kp, endpoint, spec_obj);
        }
    }
}
