//! What the Kubernetes outputs warn about in the configuration itself:
//! destinations on the loopback (inside a cluster, the gateway pod
//! itself), and budgets the filter counts in each gateway pod.

use std::net::IpAddr;

use super::common::Warnings;
use crate::routes::bare_host;
use backstage_proxy_core::config::Plan;
use backstage_proxy_core::url::Url;

/// Every destination of the configuration, with the key that names it.
fn destinations(plan: &Plan) -> Vec<(String, &Url)> {
    let mut out: Vec<(String, &Url)> = plan
        .endpoints
        .iter()
        .map(|e| (format!("proxy.endpoints.{}.target", e.raw_key), &e.target))
        .collect();
    if let Some(b) = &plan.backend {
        out.push(("backend.baseUrl".to_string(), &b.url));
    }
    for j in &plan.auth.jwks {
        out.push((
            format!(
                "backend.auth.externalAccess (jwks {}).options.url",
                j.raw_url
            ),
            &j.url,
        ));
    }
    if let Some(s) = &plan.gateway.rate_limit_service {
        out.push(("gateway.rateLimitService.url".to_string(), &s.url));
    }
    out
}

/// `localhost` (or a name under it), 127.0.0.0/8, `::1`.
pub(crate) fn is_loopback(host: &str) -> bool {
    let h = bare_host(host).trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A loopback destination becomes a `ServiceEntry` or `Backend` for an
/// address that, in a gateway pod, is the pod itself: a warning names the
/// key (it is allowed: a sidecar in the gateway's pod is reachable so).
pub(crate) fn loopback_destinations(plan: &Plan, resource: &str, warnings: &mut Warnings) {
    for (key, url) in destinations(plan) {
        if is_loopback(&url.host) {
            warnings.push(format!(
                "{key}: {}://{}:{} is written as a {resource} for '{}', which inside the cluster is the gateway pod itself, not the machine the configuration was written on; target the Service's cluster DNS name (<svc>.<ns>.svc.cluster.local) unless a container in the gateway's pod serves it",
                url.scheme,
                url.host,
                url.port,
                bare_host(&url.host)
            ));
        }
    }
}

/// Budgets the filter counts itself are counted in each gateway pod
/// (`docs/rate-limits.md#budgets-on-one-gateway`): a gateway of N replicas
/// lets N times each budget through.
pub(crate) fn per_replica_budgets(plan: &Plan, warnings: &mut Warnings) {
    if plan.gateway.rate_limit_service.is_some() {
        return;
    }
    let keys: Vec<&str> = plan
        .endpoints
        .iter()
        .filter(|e| e.rate_limit.as_ref().is_some_and(|l| !l.is_empty()))
        .map(|e| e.raw_key.as_str())
        .collect();
    if !keys.is_empty() {
        warnings.push(format!(
            "gateway.rateLimits ({}): the filter counts these budgets in each gateway pod (its Envoy workers share them, other replicas do not), so a gateway of N replicas lets up to N times each budget through; set gateway.rateLimitService for one budget across replicas (docs/rate-limits.md#one-budget-for-a-fleet-of-gateways)",
            keys.join(", ")
        ));
    }
}

/// Endpoint options `render` writes into Envoy's route that no Istio or
/// Gateway API route field carries (`docs/migration.md`): each named, so
/// that none is dropped without a word. `proxyTimeout` is carried (the
/// route's timeout).
pub(crate) fn uncarried_options(plan: &Plan, gateway: &str, warnings: &mut Warnings) {
    for e in &plan.endpoints {
        let mut options = Vec::new();
        if e.envoy.timeout_ms.is_some() {
            options.push("timeout (the route's idle timeout in render's envoy.yaml)");
        }
        if e.envoy.follow_redirects == Some(true) {
            options.push("followRedirects (Envoy's internal redirects in render's envoy.yaml)");
        }
        if !options.is_empty() {
            warnings.push(format!(
                "proxy.endpoints.{}: {} not carried to {gateway}: no route field of its resources expresses it, so the gateway's defaults apply",
                e.raw_key,
                options.join(" and ")
            ));
        }
    }
}
