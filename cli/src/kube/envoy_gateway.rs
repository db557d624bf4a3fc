//! The Envoy Gateway output (`envoy-gateway`): the `EnvoyExtensionPolicy`
//! with the image on the Gateway, `HTTPRoute`s, a `Backend` per destination
//! (or the Service itself, with a `ReferenceGrant` across namespaces), a
//! `BackendTLSPolicy` per verified TLS destination, and under
//! `gateway.rateLimitService` the `BackendTrafficPolicy` with the budgets.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::common::{
    check_image, dns_name, in_cluster, label_all, KubeOptions, NativeModule, Warnings,
};
use super::gateway_api::{http_route_rules, http_routes, route_name, Rule, MAX_RULES_PER_ROUTE};
use super::{checks, secrets, upstream_ca};
use crate::access_log;
use crate::appconfig::Loaded;
use crate::error::Error;
use crate::json::set;
use crate::ratelimit::descriptors::window_unit;
use crate::routes::{
    bare_host, callout_urls, certificate_name, cluster_specs, filter_config_for_routes,
    group_by_destination, is_ip, CertificateName, ClusterSpec, Route,
};
use crate::stats_tags;
use backstage_proxy_core::config::Plan;
use backstage_proxy_core::ratelimit::{descriptor_value, Budget};
use backstage_proxy_core::ratelimit::{ENDPOINT_HEADER, PRINCIPAL_HEADER};

/// Envoy Gateway: the `EnvoyProxy` `--envoy-proxy` writes.
pub const ENVOY_PROXY_NAME: &str = "backstage-proxy";

/// Envoy Gateway: most rules in one `BackendTrafficPolicy`'s global rate
/// limit (the CRD's `maxItems`).
const MAX_RATE_LIMIT_RULES: usize = 256;

const RATE_LIMIT_SERVICE_WARNING: &str = "gateway.rateLimitService: Envoy Gateway runs its own rate limit service (the EnvoyGateway configuration's rateLimit.backend, on Redis); the BackendTrafficPolicy hands it the budgets, and the url, domain, timeoutMs and failureModeDeny set here are not used (set rateLimit.timeout and rateLimit.failClosed there)";

/// Envoy Gateway: the `EnvoyExtensionPolicy` with the image on the Gateway,
/// `HTTPRoute`s with one rule per header value, a `Backend` per destination
/// and a `BackendTLSPolicy` per verified TLS destination (an unverified one,
/// `secure: false`, sets the `Backend`'s `tls.insecureSkipVerify`).
pub fn envoy_gateway(loaded: &Loaded, opts: &KubeOptions) -> Result<(Vec<Value>, Warnings), Error> {
    let plan = loaded.plan.as_ref().ok_or(Error::InvalidConfiguration)?;
    cluster_specs(plan)?;
    let routes = routes_with_callouts(plan);
    let mut warnings = Warnings::new();
    if opts.native.is_none() {
        check_image(opts, &mut warnings)?;
    }
    checks::loopback_destinations(plan, "Backend", &mut warnings);
    checks::per_replica_budgets(plan, &mut warnings);
    checks::uncarried_options(plan, "Envoy Gateway", &mut warnings);
    let rules = http_route_rules(plan, &routes, &|r| backend_ref(r, opts), &mut warnings);
    let config = filter_config_for_routes(loaded, plan, &routes, &|u| {
        let dest = (bare_host(&u.host), u.port, u.scheme == "https");
        callout_cluster(&routes, &rules, opts, dest).unwrap_or_default()
    });
    let (gw_ns, gw_name) = opts.gateway_ref();
    let mut docs = vec![extension_policy(loaded, opts, config, gw_ns, gw_name)];
    let http_routes = http_routes(opts, gw_ns, gw_name, &rules);
    if plan.gateway.rate_limit_service.is_some() {
        let names: Vec<String> = (0..http_routes.len()).map(route_name).collect();
        docs.push(rate_limit_policy(plan, opts, &names)?);
        warnings.push(RATE_LIMIT_SERVICE_WARNING.to_string());
    }
    docs.extend(http_routes);
    if let Some(proxy) = envoy_proxy(loaded, opts, gw_ns) {
        docs.push(proxy);
        warnings.push(format!("the EnvoyProxy '{ENVOY_PROXY_NAME}' takes effect when the Gateway references it (spec.infrastructure.parametersRef: {{group: gateway.envoyproxy.io, kind: EnvoyProxy, name: {ENVOY_PROXY_NAME}}}); a Gateway with an EnvoyProxy of its own needs these settings (access log, bootstrap stats labels, the Envoy container's env) added to that one instead"));
    }
    docs.extend(backends(&routes, opts, &mut warnings)?);
    let ca_maps = upstream_ca::envoy_gateway_configmaps(opts, &docs);
    docs.extend(ca_maps);
    let how = format!("the EnvoyProxy '{ENVOY_PROXY_NAME}' passes them to the Envoy container");
    warnings.extend(secrets::secret_warning(loaded, opts, &how));
    label_all(&mut docs);
    Ok((docs, warnings))
}

/// The routes model's routes, and a route for each of the filter's own
/// destinations that no endpoint shares: its header value is never set by
/// the filter.
fn routes_with_callouts(plan: &Plan) -> Vec<Route> {
    let scheme = |tls: bool| if tls { "https" } else { "http" };
    let mut routes = group_by_destination(plan, &|h, p, tls| format!("{}_{h}_{p}", scheme(tls)));
    for u in callout_urls(plan) {
        let tls = u.scheme == "https";
        let host = bare_host(&u.host).to_string();
        if !routes
            .iter()
            .any(|r| r.host == host && r.port == u.port && r.tls == tls)
        {
            routes.push(Route {
                value: format!("callout_{}_{host}_{}", scheme(tls), u.port),
                host,
                port: u.port,
                tls,
                verify: true,
                authority: None,
                timeout_ms: None,
                xfwd: false,
                endpoints: Vec::new(),
            });
        }
    }
    routes
}

/// The `Backend` of a destination: `backstage-proxy-<host>-<port>`.
fn backend_name(host: &str, port: u16) -> String {
    dns_name("backstage-proxy", &[host, &port.to_string()])
}

/// A rule's `backendRef`: the Service itself for one in the cluster, else
/// the destination's `Backend`.
fn backend_ref(r: &Route, opts: &KubeOptions) -> Value {
    match in_cluster(&r.host) {
        Some((svc, ns)) => {
            let mut b = json!({ "group": "", "kind": "Service", "name": svc, "port": r.port });
            if ns != opts.namespace {
                set(&mut b, "namespace", json!(ns));
            }
            b
        }
        None => json!({
            "group": "gateway.envoyproxy.io",
            "kind": "Backend",
            "name": backend_name(&r.host, r.port),
            "port": r.port
        }),
    }
}

/// The cluster Envoy Gateway makes of the rule for a destination (host,
/// port, TLS): `httproute/<ns>/<route>/rule/<i>`.
fn callout_cluster(
    routes: &[Route],
    rules: &[Rule],
    opts: &KubeOptions,
    (host, port, tls): (&str, u16, bool),
) -> Option<String> {
    let value = routes
        .iter()
        .find(|r| r.host == host && r.port == port && r.tls == tls)
        .map(|r| r.value.clone())?;
    let pos = rules.iter().position(|(_, v)| *v == value)?;
    Some(format!(
        "httproute/{}/{}/rule/{}",
        opts.namespace,
        route_name(pos / MAX_RULES_PER_ROUTE),
        pos % MAX_RULES_PER_ROUTE
    ))
}

/// The `EnvoyExtensionPolicy` on the Gateway: the image, fail closed, the
/// filter's configuration and the VM's variables.
fn extension_policy(
    loaded: &Loaded,
    opts: &KubeOptions,
    config: Value,
    gw_ns: &str,
    gw_name: &str,
) -> Value {
    let url = opts.url.trim_start_matches("oci://").to_string();
    let mut image = json!({ "url": url });
    if let Some(d) = opts.image_digest_hex() {
        set(&mut image, "sha256", json!(d));
    }
    if opts.native.is_some() {
        return native_extension_policy(config, gw_ns, gw_name);
    }
    let mut wasm = json!({
        "name": "backstage-proxy",
        "rootID": "backstage_proxy",
        "code": { "type": "Image", "image": image },
        "config": config,
        "failOpen": false
    });
    if !loaded.vm_vars.is_empty() {
        set(&mut wasm, "env", json!({ "hostKeys": loaded.vm_vars }));
    }
    json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyExtensionPolicy",
        "metadata": { "name": "backstage-proxy-wasm", "namespace": gw_ns },
        "spec": {
            "targetRefs": [{ "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw_name }],
            "wasm": [wasm]
        }
    })
}

/// The name the native module goes by in the `EnvoyProxy`'s allow-list
/// and the policy.
const NATIVE_MODULE_NAME: &str = "backstage-proxy";

/// `--native`: the policy attaches the module the `EnvoyProxy` allows
/// (`spec.dynamicModule`), with the filter's configuration as its config
/// (Envoy Gateway hands it over as JSON text, as the module reads it).
fn native_extension_policy(config: Value, gw_ns: &str, gw_name: &str) -> Value {
    json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyExtensionPolicy",
        "metadata": { "name": "backstage-proxy-native", "namespace": gw_ns },
        "spec": {
            "targetRefs": [{ "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw_name }],
            "dynamicModule": [{
                "name": NATIVE_MODULE_NAME,
                "filterName": "backstage_proxy",
                "config": config
            }]
        }
    })
}

/// `EnvoyProxy.spec.dynamicModules`: the one module the proxy may load.
fn dynamic_modules(native: &NativeModule) -> Value {
    let source = json!({ "type": "Local", "local": { "path": native.path } });
    json!([{ "name": NATIVE_MODULE_NAME, "source": source }])
}

/// The `EnvoyProxy`: with `--envoy-proxy` the access log, the filter's
/// JSON line per request, and the bootstrap's Prometheus labels (merged: a
/// YAML string, which JSON is); with VM variables the Envoy container's env
/// from the `Secret` (without it the variables never reach the pods, so it
/// is written whenever there are any).
fn envoy_proxy(loaded: &Loaded, opts: &KubeOptions, gw_ns: &str) -> Option<Value> {
    let provider = secrets::envoy_proxy_provider(loaded, opts);
    if !opts.envoy_proxy && provider.is_none() && opts.native.is_none() {
        return None;
    }
    let mut spec = json!({});
    if let Some(native) = &opts.native {
        set(&mut spec, "dynamicModules", dynamic_modules(native));
    }
    if opts.envoy_proxy {
        set(
            &mut spec,
            "telemetry",
            json!({ "accessLog": { "settings": [{
                "format": { "type": "JSON", "json": access_log::fields() },
                "sinks": [{ "type": "File", "file": { "path": "/dev/stdout" } }]
            }] } }),
        );
        let bootstrap = json!({ "stats_config": stats_tags::stats_config() }).to_string();
        set(
            &mut spec,
            "bootstrap",
            json!({ "type": "Merge", "value": bootstrap }),
        );
    }
    if let Some(p) = provider {
        set(&mut spec, "provider", p);
    }
    Some(json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyProxy",
        "metadata": { "name": ENVOY_PROXY_NAME, "namespace": gw_ns },
        "spec": spec
    }))
}

/// One `Backend` per (host, port), TLS per `Backend`; a Service in the
/// cluster is its own backend.
fn backends(
    routes: &[Route],
    opts: &KubeOptions,
    warnings: &mut Warnings,
) -> Result<Vec<Value>, Error> {
    // Verification is off only when every route to the destination says so.
    let mut destinations: BTreeMap<(String, u16), (bool, bool)> = BTreeMap::new();
    for r in routes {
        let b = destinations
            .entry((r.host.clone(), r.port))
            .or_insert((r.tls, r.verify));
        b.1 |= r.verify;
    }
    let mut granted = BTreeSet::new();
    let mut docs = Vec::new();
    for ((host, port), (tls, verify)) in destinations {
        let dest = ClusterSpec {
            host,
            port,
            tls,
            verify,
        };
        match in_cluster(&dest.host) {
            Some(service) => {
                docs.extend(service_backend(
                    &dest,
                    service,
                    opts,
                    &mut granted,
                    warnings,
                ));
            }
            None => docs.extend(external_backend(&dest, opts, warnings)?),
        }
    }
    Ok(docs)
}

/// A verified TLS destination's `BackendTLSPolicy.spec.validation`: the
/// system CAs, and `hostname`, which Gateway API makes both the SNI and the
/// name the certificate MUST match (no `subjectAltNames`, so the hostname
/// is the name checked; the vendored CRD, `testkit/crds/gateway-api-crds.yaml`,
/// says so, and Envoy Gateway writes it as Envoy's DNS SAN matcher).
/// With `--upstream-ca`, the bundle's `ConfigMap` instead of the system's.
fn tls_validation(name: &CertificateName, opts: &KubeOptions) -> Value {
    if opts.upstream_ca.is_some() {
        json!({ "hostname": name.as_str(), "caCertificateRefs": upstream_ca::envoy_gateway_ref() })
    } else {
        json!({ "hostname": name.as_str(), "wellKnownCACertificates": "System" })
    }
}

const IP_SAN_NOTE: &str = "Gateway API's BackendTLSPolicy names a certificate by DNS name only (validation.hostname, and subjectAltNames of type Hostname or URI), never by IP address";

/// A Service in the cluster: in another namespace, that namespace's
/// `ReferenceGrant` (once); verified TLS, its `BackendTLSPolicy`.
fn service_backend(
    dest: &ClusterSpec,
    (svc, ns): (String, String),
    opts: &KubeOptions,
    granted: &mut BTreeSet<String>,
    warnings: &mut Warnings,
) -> Vec<Value> {
    let mut docs = Vec::new();
    if ns != opts.namespace && granted.insert(ns.clone()) {
        docs.push(json!({
            "apiVersion": "gateway.networking.k8s.io/v1beta1",
            "kind": "ReferenceGrant",
            "metadata": { "name": dns_name("backstage-proxy-from", &[&opts.namespace]), "namespace": ns },
            "spec": {
                "from": [{ "group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": opts.namespace }],
                "to": [{ "group": "", "kind": "Service" }]
            }
        }));
    }
    if dest.tls && dest.verify {
        docs.push(json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "BackendTLSPolicy",
            "metadata": { "name": dns_name("backstage-proxy", &[&svc, &dest.port.to_string()]), "namespace": ns },
            "spec": {
                "targetRefs": [{ "group": "", "kind": "Service", "name": svc }],
                "validation": tls_validation(&certificate_name(&dest.host), opts)
            }
        }));
    } else if dest.tls {
        warnings.push(format!("{}:{}: TLS without verification (secure: false) to a Service needs Envoy Gateway's BackendTrafficPolicy, which is not written; the connection is verified", dest.host, dest.port));
    }
    docs
}

/// A destination outside the cluster: its `Backend` (an IP or a name), and
/// for verified TLS its `BackendTLSPolicy`. Verified TLS to an IP address
/// cannot be said as Gateway API says it for a name: an IPv4 address as
/// `hostname` (which its pattern admits) is checked as a DNS name (a
/// warning says so); an IPv6 address is no `hostname` at all, and is
/// refused rather than written unverified.
fn external_backend(
    dest: &ClusterSpec,
    opts: &KubeOptions,
    warnings: &mut Warnings,
) -> Result<Vec<Value>, Error> {
    let (host, port) = (&dest.host, dest.port);
    let cert_name = certificate_name(host);
    if dest.tls && dest.verify {
        if let CertificateName::Ip(ip) = &cert_name {
            if ip.contains(':') {
                return Err(Error::Unsupported(format!(
                    "https://[{ip}]:{port}: Envoy Gateway cannot check an IPv6 address in the upstream's certificate ({IP_SAN_NOTE}); target a DNS name for it, or set `secure: false` on its endpoints to connect without verifying the certificate"
                )));
            }
            warnings.push(format!(
                "https://{ip}:{port}: {IP_SAN_NOTE}: the BackendTLSPolicy's hostname is the address, which Envoy Gateway sends as SNI and requires as a DNS name in the certificate; a certificate naming the address only as an IP address is refused. Target a DNS name to have the upstream's certificate checked by name"
            ));
        }
    }
    let name = backend_name(host, port);
    let endpoint = if is_ip(host) || host.contains(':') {
        json!({ "ip": { "address": host, "port": port } })
    } else {
        json!({ "fqdn": { "hostname": host.to_ascii_lowercase(), "port": port } })
    };
    let mut spec = json!({ "endpoints": [endpoint] });
    if dest.tls && !dest.verify {
        set(&mut spec, "tls", json!({ "insecureSkipVerify": true }));
    }
    let mut docs = vec![json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "Backend",
        "metadata": { "name": name, "namespace": opts.namespace },
        "spec": spec
    })];
    if dest.tls && dest.verify {
        docs.push(json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "BackendTLSPolicy",
            "metadata": { "name": name, "namespace": opts.namespace },
            "spec": {
                "targetRefs": [{ "group": "gateway.envoyproxy.io", "kind": "Backend", "name": name }],
                "validation": tls_validation(&cert_name, opts)
            }
        }));
    }
    Ok(docs)
}

/// Envoy Gateway's unit for a budget's window: the rate limit service's,
/// capitalised (`Second`, `Minute`, `Hour`, `Day`).
fn unit(b: &Budget) -> Result<String, Error> {
    let unit = window_unit(b).ok_or_else(|| {
        Error::Unsupported(format!(
            "a rate limit window of {} ms is not a unit of Envoy Gateway's",
            b.window_ms
        ))
    })?;
    let mut chars = unit.chars();
    Ok(chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default())
}

/// Envoy Gateway's global rate limits for `gateway.rateLimits`: a
/// `BackendTrafficPolicy` on the gateway's `HTTPRoute`s (never the whole
/// Gateway), one rule per budget: the endpoint header `Exact`, and for
/// `perPrincipal` the principal header `Distinct` (a counter per value);
/// `shared`, so an endpoint's budget is one across its routes. Envoy
/// Gateway places its rate limit filter after Wasm filters, so the
/// filter's headers are set when the descriptors are read.
fn rate_limit_policy(plan: &Plan, opts: &KubeOptions, routes: &[String]) -> Result<Value, Error> {
    let mut rules = Vec::new();
    for e in &plan.endpoints {
        let Some(limit) = e.rate_limit.as_ref().filter(|l| !l.is_empty()) else {
            continue;
        };
        let endpoint = json!({ "name": ENDPOINT_HEADER, "type": "Exact", "value": descriptor_value(&e.raw_key) });
        if let Some(t) = &limit.total {
            rules.push(json!({
                "clientSelectors": [{ "headers": [endpoint.clone()] }],
                "limit": { "requests": t.requests, "unit": unit(t)? },
                "shared": true
            }));
        }
        if let Some(p) = &limit.per_principal {
            rules.push(json!({
                "clientSelectors": [{ "headers": [endpoint, { "name": PRINCIPAL_HEADER, "type": "Distinct" }] }],
                "limit": { "requests": p.requests, "unit": unit(p)? },
                "shared": true
            }));
        }
    }
    if rules.len() > MAX_RATE_LIMIT_RULES {
        return Err(Error::Unsupported(format!(
            "{} rate limit budgets; an Envoy Gateway BackendTrafficPolicy holds at most {MAX_RATE_LIMIT_RULES}",
            rules.len()
        )));
    }
    let target_refs: Vec<Value> = routes
        .iter()
        .map(|n| json!({ "group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": n }))
        .collect();
    Ok(json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "BackendTrafficPolicy",
        "metadata": { "name": "backstage-proxy-ratelimit", "namespace": opts.namespace },
        "spec": {
            "targetRefs": target_refs,
            "rateLimit": { "global": { "rules": rules } }
        }
    }))
}

#[cfg(test)]
mod tests;
