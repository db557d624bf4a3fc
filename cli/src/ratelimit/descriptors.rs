//! What the filter, the gateway's routes and the rate limit service agree
//! on: the headers the filter sets, the descriptors a route makes of them,
//! and the unit the service counts a budget's window in.

use serde_json::{json, Value};

use backstage_proxy_core::ratelimit::Budget;
use backstage_proxy_core::ratelimit::SERVICE_WINDOWS;
use backstage_proxy_core::ratelimit::{
    ENDPOINT_DESCRIPTOR, ENDPOINT_HEADER, PRINCIPAL_DESCRIPTOR, PRINCIPAL_HEADER,
};

/// The headers every route removes before the upstream.
pub const HEADERS: [&str; 2] = [ENDPOINT_HEADER, PRINCIPAL_HEADER];

/// The two descriptors a route sends (Envoy route `rate_limits`).
pub fn route_rate_limits() -> Value {
    let endpoint = json!({ "request_headers": {
        "header_name": ENDPOINT_HEADER,
        "descriptor_key": ENDPOINT_DESCRIPTOR } });
    let principal = json!({ "request_headers": {
        "header_name": PRINCIPAL_HEADER,
        "descriptor_key": PRINCIPAL_DESCRIPTOR } });
    json!([
        { "actions": [endpoint.clone()] },
        { "actions": [endpoint, principal] }
    ])
}

/// The rate limit service's unit for a budget's window (`second`,
/// `minute`, `hour` or `day`: the core's `SERVICE_WINDOWS`); `None` for a
/// window that is not one of them.
pub fn window_unit(b: &Budget) -> Option<&'static str> {
    SERVICE_WINDOWS
        .iter()
        .find(|(s, _)| s * 1000 == b.window_ms)
        .map(|(_, u)| *u)
}

#[cfg(test)]
mod tests;
