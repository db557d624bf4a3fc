//! The rate limit service's configuration file (`ratelimit-config`):
//! envoyproxy/ratelimit's descriptors for the plan's budgets, one file in
//! the service's config directory.

use serde_json::{json, Value};

use super::descriptors::window_unit;
use crate::json::set;
use backstage_proxy_core::config::Plan;
use backstage_proxy_core::ratelimit::{
    descriptor_value, Budget, ENDPOINT_DESCRIPTOR, PRINCIPAL_DESCRIPTOR,
};

/// The service's unit for a budget's window, or why there is none.
fn unit(b: &Budget, path: &str) -> Result<&'static str, String> {
    window_unit(b).ok_or_else(|| {
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
        let Some(limit) = e.rate_limit.as_ref().filter(|l| !l.is_empty()) else {
            continue;
        };
        // A budget as the service writes it.
        let rate = |b: &Budget, name: &str| -> Result<Value, String> {
            let path = format!("gateway.rateLimits.{}.{name}", e.raw_key);
            Ok(json!({ "unit": unit(b, &path)?, "requests_per_unit": b.requests }))
        };
        let mut d = json!({
            "key": ENDPOINT_DESCRIPTOR,
            "value": descriptor_value(&e.raw_key),
        });
        if let Some(t) = &limit.total {
            set(&mut d, "rate_limit", rate(t, "total")?);
        }
        if let Some(p) = &limit.per_principal {
            set(
                &mut d,
                "descriptors",
                json!([{ "key": PRINCIPAL_DESCRIPTOR, "rate_limit": rate(p, "perPrincipal")? }]),
            );
        }
        descriptors.push(d);
    }
    Ok(descriptors)
}

#[cfg(test)]
mod tests;
