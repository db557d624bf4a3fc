//! Global rate limiting (`gateway.rateLimitService`): what Envoy's rate
//! limit filter and envoyproxy/ratelimit need so that `gateway.rateLimits`
//! holds for a whole fleet of gateways rather than per replica.
//!
//! The filter sets two request headers for an endpoint with budgets (the
//! endpoint key and the principal, percent-encoded where a header could not
//! carry them: `backstage_proxy_core::ratelimit::descriptor_value`); each
//! route turns them into two descriptors, `[endpoint]` for `total` and
//! `[endpoint, principal]` for `perPrincipal`, and removes them before the
//! upstream. The service's own configuration ([`service_config`]) gives
//! each descriptor its budget.

use serde_json::{json, Value};

use backstage_proxy_core::config::access::SERVICE_WINDOWS;
use backstage_proxy_core::config::{
    Plan, RateLimitService, RATE_LIMIT_ENDPOINT_DESCRIPTOR, RATE_LIMIT_ENDPOINT_HEADER,
    RATE_LIMIT_PRINCIPAL_DESCRIPTOR, RATE_LIMIT_PRINCIPAL_HEADER,
};
use backstage_proxy_core::ratelimit::{descriptor_value, Budget};

/// The two descriptors a route sends (Envoy route `rate_limits`).
pub fn route_rate_limits() -> Value {
    let endpoint = json!({ "request_headers": {
        "header_name": RATE_LIMIT_ENDPOINT_HEADER,
        "descriptor_key": RATE_LIMIT_ENDPOINT_DESCRIPTOR } });
    let principal = json!({ "request_headers": {
        "header_name": RATE_LIMIT_PRINCIPAL_HEADER,
        "descriptor_key": RATE_LIMIT_PRINCIPAL_DESCRIPTOR } });
    json!([
        { "actions": [endpoint.clone()] },
        { "actions": [endpoint, principal] }
    ])
}

/// The headers every route removes before the upstream.
pub const HEADERS: [&str; 2] = [RATE_LIMIT_ENDPOINT_HEADER, RATE_LIMIT_PRINCIPAL_HEADER];

/// Envoy's rate limit HTTP filter, after the Wasm filter and before the
/// router. Over budget it answers `429` (response flag `RL`); when the
/// service cannot answer it lets the request through, or with
/// `failureModeDeny` answers `503` (flag `RLSE`). `x-ratelimit-*` headers
/// (draft 03) carry the time to the next window, from which the filter
/// writes `retry-after`.
pub fn http_filter(s: &RateLimitService) -> Value {
    json!({
        "name": "envoy.filters.http.ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
            "domain": s.domain,
            "stage": 0,
            "timeout": crate::render::seconds(s.timeout_ms),
            "failure_mode_deny": s.failure_mode_deny,
            "status_on_error": { "code": 503 },
            "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
            "rate_limit_service": {
                "grpc_service": { "envoy_grpc": { "cluster_name": s.cluster } },
                "transport_api_version": "V3"
            }
        }
    })
}

/// Backstage's error body for the rate limit filter's own replies (Envoy's
/// are empty): the HTTP connection manager's local reply mappers, by
/// response flag. `request.url` is the path as the client sent it, which
/// the filter keeps as filter state (`backstage_proxy.request_url`) for a
/// request it hands over: the `:path` Envoy holds by then is the
/// upstream's.
pub fn local_reply_config() -> Value {
    let body = |flag: &str, name: &str, message: &str| {
        json!({
            "filter": { "response_flag_filter": { "flags": [flag] } },
            "body_format_override": {
                "json_format": {
                    "error": { "name": name, "message": message },
                    "request": {
                        "method": "%REQ(:METHOD)%",
                        "url": "%FILTER_STATE(wasm.backstage_proxy.request_url:PLAIN)%"
                    },
                    "response": { "statusCode": "%RESPONSE_CODE%" }
                },
                "content_type": "application/json; charset=utf-8"
            }
        })
    };
    json!({ "mappers": [
        body("RL", "TooManyRequestsError", "Too many requests to this endpoint"),
        body("RLSE", "ServiceUnavailableError", "The rate limit service is unavailable")
    ] })
}

/// The service's unit for a budget's window.
fn unit(b: &Budget, path: &str) -> Result<&'static str, String> {
    SERVICE_WINDOWS
        .iter()
        .find(|(s, _)| s * 1000 == b.window_ms)
        .map(|(_, u)| *u)
        .ok_or_else(|| {
            format!("{path}: the rate limit service counts in seconds, minutes, hours or days")
        })
}

/// envoyproxy/ratelimit's configuration for the plan's budgets: one
/// descriptor per endpoint with budgets, `total` on it and `perPrincipal`
/// on a nested descriptor without a value (each principal its own
/// counter, in Redis). `None` without `gateway.rateLimitService`.
pub fn service_config(plan: &Plan) -> Option<Result<Value, String>> {
    let s = plan.gateway.rate_limit_service.as_ref()?;
    Some(service_descriptors(plan).map(|d| json!({ "domain": s.domain, "descriptors": d })))
}

fn service_descriptors(plan: &Plan) -> Result<Vec<Value>, String> {
    let mut descriptors = Vec::new();
    for e in &plan.endpoints {
        let Some(limit) = &e.rate_limit else { continue };
        // A budget as the service writes it.
        let rate = |b: &Budget, name: &str| -> Result<Value, String> {
            let path = format!("gateway.rateLimits.{}.{name}", e.raw_key);
            Ok(json!({ "unit": unit(b, &path)?, "requests_per_unit": b.requests }))
        };
        let mut d = json!({
            "key": RATE_LIMIT_ENDPOINT_DESCRIPTOR,
            "value": descriptor_value(&e.raw_key),
        });
        if let Some(t) = &limit.total {
            crate::render::set(&mut d, "rate_limit", rate(t, "total")?);
        }
        if let Some(p) = &limit.per_principal {
            crate::render::set(
                &mut d,
                "descriptors",
                json!([{ "key": RATE_LIMIT_PRINCIPAL_DESCRIPTOR, "rate_limit": rate(p, "perPrincipal")? }]),
            );
        }
        descriptors.push(d);
    }
    Ok(descriptors)
}

#[cfg(test)]
mod tests;
