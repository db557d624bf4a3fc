//! The `gateway` section: what Backstage has no equivalent for.

use super::json::*;
use super::{
    Gateway, RateLimitService, DEFAULT_CLUSTER_HEADER, DEFAULT_JWKS_CACHE_SECONDS,
    DEFAULT_JWKS_FETCH_TIMEOUT_MS, DEFAULT_JWKS_MAX_BYTES, DEFAULT_JWKS_REFETCH_COOLDOWN_SECONDS,
    DEFAULT_PERMISSION_CACHE_SECONDS, DEFAULT_PERMISSION_CACHE_SIZE, DEFAULT_PERMISSION_TIMEOUT_MS,
    DEFAULT_PLUGIN_ID, DEFAULT_PREFIX, DEFAULT_TOKEN_CACHE_SIZE,
};
use crate::url::Url;
use serde_json::{Map, Value};

/// Every key of the `gateway` section.
const KEYS: [&str; 20] = [
    "plugins",
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
    "authorityRewrite",
    "access",
    "rateLimits",
    "auditTrail",
    "rateLimitService",
    "permissionCacheSeconds",
    "permissionCacheSize",
    "permissionTimeoutMs",
];

pub(super) fn parse_gateway(errs: &mut Errors, obj: &Map<String, Value>) -> Gateway {
    let p = "gateway";
    check_keys(errs, p, obj, &KEYS);
    let rate_limit_service = obj
        .get("rateLimitService")
        .and_then(|v| parse_rate_limit_service(errs, v));
    let audit_trail = opt_bool(errs, obj, p, "auditTrail").unwrap_or(true);
    let route_rewrites_authority = authority_rewrite(errs, obj);
    let prefix = prefix(errs, obj);
    let cluster_header = cluster_header(errs, obj);
    let plugin_id = plugin_id(errs, obj);
    let plugins = plugins(errs, obj);
    Gateway {
        plugins,
        rate_limit_service,
        audit_trail,
        route_rewrites_authority,
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
        permission_cache_seconds: opt_uint(errs, obj, p, "permissionCacheSeconds", 1, 60)
            .unwrap_or(DEFAULT_PERMISSION_CACHE_SECONDS),
        permission_cache_size: opt_uint(errs, obj, p, "permissionCacheSize", 1, 1_000_000)
            .map(|n| n as usize)
            .unwrap_or(DEFAULT_PERMISSION_CACHE_SIZE),
        permission_timeout_ms: opt_uint(errs, obj, p, "permissionTimeoutMs", 100, 60_000)
            .unwrap_or(DEFAULT_PERMISSION_TIMEOUT_MS),
    }
}

/// `gateway.authorityRewrite`: `route` when the gateway's route rewrites
/// `:authority` (Istio, Envoy Gateway).
fn authority_rewrite(errs: &mut Errors, obj: &Map<String, Value>) -> bool {
    let p = "gateway";
    match opt_string(errs, obj, p, "authorityRewrite") {
        None | Some("filter") => false,
        Some("route") => true,
        Some(other) => {
            errs.add(
                &join(p, "authorityRewrite"),
                format!("unknown value '{other}'; expected one of filter, route"),
            );
            false
        }
    }
}

/// `gateway.prefix`, normalised.
fn prefix(errs: &mut Errors, obj: &Map<String, Value>) -> String {
    let p = "gateway";
    match opt_string(errs, obj, p, "prefix") {
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
    }
}

/// `gateway.clusterHeader`, lower-cased.
fn cluster_header(errs: &mut Errors, obj: &Map<String, Value>) -> String {
    let p = "gateway";
    match opt_string(errs, obj, p, "clusterHeader") {
        None => DEFAULT_CLUSTER_HEADER.to_string(),
        Some(s) => {
            if !is_token(s) {
                errs.add(&join(p, "clusterHeader"), "must be a valid header name");
            }
            s.to_ascii_lowercase()
        }
    }
}

/// `gateway.pluginId`.
fn plugin_id(errs: &mut Errors, obj: &Map<String, Value>) -> String {
    let p = "gateway";
    match opt_string(errs, obj, p, "pluginId") {
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
    }
}

/// `gateway.plugins`: plugin ids as Backstage names them
/// (`^[a-z0-9_-]+$`), each once.
fn plugins(errs: &mut Errors, obj: &Map<String, Value>) -> Option<Vec<String>> {
    let p = "gateway.plugins";
    let list = string_list(errs, p, obj.get("plugins")?)?;
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, id) in list.iter().enumerate() {
        let ip = format!("{p}[{i}]");
        if !is_plugin_id(id) {
            errs.add(
                &ip,
                format!("'{id}' is not a plugin id; expected ^[a-z0-9_-]+$"),
            );
        } else if out.iter().any(|o| o.eq_ignore_ascii_case(id)) {
            errs.add(&ip, format!("'{id}' is listed twice"));
        } else {
            out.push(id.to_ascii_lowercase());
        }
    }
    Some(out)
}

/// Backstage's plugin ids: lower-case letters, digits, `_` and `-`.
fn is_plugin_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// `gateway.rateLimitService`: Envoy's global rate limit filter and the
/// service behind it (envoyproxy/ratelimit) decide `gateway.rateLimits`
/// for the whole fleet; the filter hands it the endpoint and principal.
fn parse_rate_limit_service(errs: &mut Errors, v: &Value) -> Option<RateLimitService> {
    let p = "gateway.rateLimitService";
    let obj = as_object(errs, p, v)?;
    check_keys(
        errs,
        p,
        obj,
        &["url", "cluster", "domain", "timeoutMs", "failureModeDeny"],
    );
    let url = match opt_string(errs, obj, p, "url") {
        None => {
            errs.add(
                &join(p, "url"),
                "is required: the rate limit service's gRPC address, such as http://ratelimit.ratelimit.svc.cluster.local:8081",
            );
            None
        }
        Some(raw) => match Url::parse(raw) {
            Ok(u) if u.path != "/" || u.query.is_some() => {
                errs.add(
                    &join(p, "url"),
                    "must be scheme, host and port only (gRPC has no path)",
                );
                None
            }
            Ok(u) => Some(u),
            Err(e) => {
                errs.add(&join(p, "url"), e.to_string());
                None
            }
        },
    };
    let cluster = match opt_string(errs, obj, p, "cluster") {
        Some(c) if c.is_empty() || c.bytes().any(|b| b <= b' ' || b >= 0x7f) => {
            errs.add(
                &join(p, "cluster"),
                "must be a non-empty cluster name without spaces",
            );
            None
        }
        other => other.map(str::to_string),
    };
    let domain = match opt_string(errs, obj, p, "domain") {
        None => crate::ratelimit::DEFAULT_DOMAIN.to_string(),
        Some(d) => {
            if d.is_empty()
                || !d
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            {
                errs.add(&join(p, "domain"), "must match ^[A-Za-z0-9_.-]+$");
            }
            d.to_string()
        }
    };
    let timeout_ms = opt_uint(errs, obj, p, "timeoutMs", 1, 60_000).unwrap_or(20);
    let failure_mode_deny = opt_bool(errs, obj, p, "failureModeDeny").unwrap_or(false);
    let url = url?;
    Some(RateLimitService {
        cluster: cluster.unwrap_or_else(|| url.cluster_name()),
        url,
        domain,
        timeout_ms,
        failure_mode_deny,
    })
}
