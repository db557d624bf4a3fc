//! Gateway API routing for the routes model: `HTTPRoute`s
//! `backstage-proxy-<n>` with one rule per header value (and its `xfwd`
//! variant), as Istio with `--gateway-api` and Envoy Gateway route. Each
//! gateway says what a rule's `backendRef` is.

use serde_json::{json, Value};

use super::common::{KubeOptions, Warnings};
use crate::json::set;
use crate::routes::{removed_headers, Route};
use backstage_proxy_core::config::Plan;

/// Gateway API: most rules in one `HTTPRoute` (the CRD's `maxItems`).
pub const MAX_RULES_PER_ROUTE: usize = 16;

/// A rule, and the header value whose plain rule it is (empty for an
/// `xfwd` variant).
pub(crate) type Rule = (Value, String);

/// One rule per header value (and its `xfwd` variant first), in order;
/// [`http_routes`] puts them in `HTTPRoute`s.
pub(crate) fn http_route_rules(
    plan: &Plan,
    routes: &[Route],
    backend: &dyn Fn(&Route) -> Value,
    warnings: &mut Warnings,
) -> Vec<Rule> {
    let header = &plan.gateway.cluster_header;
    let marker = &plan.gateway.xfwd_marker;
    let mut rules = Vec::new();
    for r in routes {
        for xfwd in [true, false] {
            if xfwd && !r.xfwd {
                continue;
            }
            let mut headers = vec![json!({ "type": "Exact", "name": header, "value": r.value })];
            if xfwd {
                headers.push(json!({ "type": "Exact", "name": marker, "value": "1" }));
            }
            let mut filters = vec![json!({
                "type": "RequestHeaderModifier",
                "requestHeaderModifier": { "remove": removed_headers(plan, xfwd) }
            })];
            if let Some(a) = &r.authority {
                filters.extend(authority_rewrite(r, a, warnings));
            }
            let mut rule = json!({
                "matches": [{ "path": { "type": "PathPrefix", "value": "/" }, "headers": headers }],
                "filters": filters,
                "backendRefs": [backend(r)]
            });
            if let Some(t) = r.timeout_ms {
                set(
                    &mut rule,
                    "timeouts",
                    json!({ "request": gateway_api_duration(t) }),
                );
            }
            rules.push((rule, if xfwd { String::new() } else { r.value.clone() }));
        }
    }
    rules
}

/// The `URLRewrite` filter that sets the route's authority, as far as an
/// `HTTPRoute` can (a hostname, without a port); a warning for the rest.
fn authority_rewrite(r: &Route, authority: &str, warnings: &mut Warnings) -> Option<Value> {
    match hostname_of(authority) {
        Some((host, port_dropped)) => {
            if port_dropped {
                warnings.push(format!("{}: an HTTPRoute rewrites the hostname without a port, so the upstream sees Host '{host}' instead of '{authority}'", r.value));
            }
            Some(json!({ "type": "URLRewrite", "urlRewrite": { "hostname": host } }))
        }
        None => {
            warnings.push(format!(
                "{}: an HTTPRoute cannot rewrite the Host to '{authority}'; the client's Host is kept",
                r.value
            ));
            None
        }
    }
}

/// The rules in `HTTPRoute`s `backstage-proxy-<n>` of at most
/// [`MAX_RULES_PER_ROUTE`] rules each.
pub(crate) fn http_routes(
    opts: &KubeOptions,
    gw_ns: &str,
    gw_name: &str,
    rules: &[Rule],
) -> Vec<Value> {
    rules
        .chunks(MAX_RULES_PER_ROUTE)
        .enumerate()
        .map(|(n, chunk)| http_route(opts, gw_ns, gw_name, &route_name(n), chunk))
        .collect()
}

/// The name of the `n`th `HTTPRoute`.
pub(crate) fn route_name(n: usize) -> String {
    format!("backstage-proxy-{n}")
}

fn http_route(opts: &KubeOptions, gw_ns: &str, gw_name: &str, name: &str, rules: &[Rule]) -> Value {
    let mut parent =
        json!({ "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw_name });
    if gw_ns != opts.namespace {
        set(&mut parent, "namespace", json!(gw_ns));
    }
    let mut spec = json!({
        "parentRefs": [parent],
        "rules": rules.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>()
    });
    if !opts.hostnames.is_empty() {
        set(&mut spec, "hostnames", json!(opts.hostnames));
    }
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": { "name": name, "namespace": opts.namespace },
        "spec": spec
    })
}

/// Gateway API durations: `1h2m3s4ms`-style, each number at most 5 digits.
fn gateway_api_duration(ms: u64) -> String {
    if ms.is_multiple_of(1000) && ms / 1000 <= 99_999 {
        format!("{}s", ms / 1000)
    } else if ms <= 99_999 {
        format!("{ms}ms")
    } else {
        format!("{}s", ms.div_ceil(1000).min(99_999))
    }
}

/// The hostname of an authority, and whether a port was dropped. `None`
/// for an IPv6 literal (not a hostname in Gateway API's sense).
fn hostname_of(authority: &str) -> Option<(String, bool)> {
    if authority.starts_with('[') {
        return None;
    }
    match authority.rsplit_once(':') {
        Some((h, _)) => Some((h.to_ascii_lowercase(), true)),
        None => Some((authority.to_ascii_lowercase(), false)),
    }
}
