//! Envoy's rate limit HTTP filter, as `render` writes it into envoy.yaml
//! and Istio patches it into its gateway: the filter that asks the service,
//! and Backstage's error body for its replies.

use backstage_proxy_core::audit;
use serde_json::{json, Value};

use crate::json::seconds;
use backstage_proxy_core::config::RateLimitService;

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
            "timeout": seconds(s.timeout_ms),
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
                        "url": audit::wasm_filter_state(audit::REQUEST_URL_KEY)
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
