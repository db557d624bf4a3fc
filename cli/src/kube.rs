//! Resources for the gateways users run on Kubernetes (SPEC §9.2): Istio
//! (classic `selector` + `VirtualService`, or Gateway API `targetRefs` +
//! `HTTPRoute`) and Envoy Gateway (`EnvoyExtensionPolicy`, `HTTPRoute`,
//! `Backend`, `BackendTLSPolicy`). Applying them, with the image pushed, is
//! all it takes.
//!
//! Routing never depends on names a gateway generates. The filter sets the
//! destination header (`gateway.clusterHeader`) to a value this module
//! chooses, one per destination; the gateway's own routes match it with
//! ordinary header matching, remove it, and send the request on. Envoy
//! clears the route cache after the filter's edits (proxy-wasm ABI 0.2.1),
//! so the routes see the header. Because Istio and Envoy Gateway also pick
//! the virtual host again by `:authority`, the filter leaves `:authority`
//! alone here (`gateway.authorityRewrite: route`) and each route rewrites
//! it (`changeOrigin`, an injected `Host`).
//!
//! Only the filter's own calls (key sets from the Backstage backend and
//! `jwks` URLs) name an Envoy cluster: Istio's `outbound|<port>||<host>`,
//! Envoy Gateway's `httproute/<ns>/<route>/rule/<i>` of a rule this module
//! writes for that destination (a rule no request can select: its header
//! value is never set by the filter unless an endpoint goes there too).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::access_log;
use crate::appconfig::Loaded;
use crate::error::Error;
use crate::json::{seconds, set, set_in};
use crate::ratelimit::descriptors::{route_rate_limits, window_unit};
use crate::ratelimit::envoy_filter;
use crate::routes::{
    bare_host, callout_urls, cluster_specs, filter_config_for_routes, group_by_destination, is_ip,
    removed_headers, ClusterSpec, Route,
};
use backstage_proxy_core::config::Plan;

/// Gateway API: most rules in one `HTTPRoute` (the CRD's `maxItems`).
pub const MAX_RULES_PER_ROUTE: usize = 16;

#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// The image: `oci://REGISTRY/REPO:TAG` (Envoy Gateway takes it
    /// without the scheme).
    pub url: String,
    /// The image's manifest digest (hex, with or without `sha256:`).
    pub sha256: Option<String>,
    /// Where the resources go (for Gateway API: the Gateway's namespace).
    pub namespace: String,
    /// The gateway: a classic Istio `Gateway` (`[ns/]name`, bound by the
    /// `VirtualService`), or the Gateway API `Gateway` (`targetRefs`,
    /// `parentRefs`).
    pub gateway: String,
    /// Envoy Gateway: also write an `EnvoyProxy` with the JSON access log
    /// (principal, endpoint, decision) for the Gateway to reference.
    pub envoy_proxy: bool,
    /// Hostnames the gateway serves Backstage on (`VirtualService` hosts,
    /// default `*`; `HTTPRoute` hostnames, default none: all of the
    /// listener's).
    pub hostnames: Vec<String>,
    /// Istio classic: the gateway workload's labels.
    pub selector: Vec<(String, String)>,
    /// Istio: Gateway API (`targetRefs` + `HTTPRoute`) instead of classic.
    pub gateway_api: bool,
    /// Istio: `TrafficExtension` (Istio 1.30) instead of `WasmPlugin`.
    pub traffic_extension: bool,
}

/// A Kubernetes Service named by its cluster DNS name
/// (`<svc>.<ns>.svc[.cluster.local]`): (service, namespace). The mesh and
/// the gateway know these already: no `ServiceEntry` or `Backend`.
pub fn in_cluster(host: &str) -> Option<(String, String)> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    let rest = h
        .strip_suffix(".svc.cluster.local")
        .or_else(|| h.strip_suffix(".svc"))?;
    let (svc, ns) = rest.split_once('.')?;
    (!svc.is_empty() && !ns.is_empty() && !ns.contains('.'))
        .then(|| (svc.to_string(), ns.to_string()))
}

fn sha256_hex(opts: &KubeOptions) -> Option<String> {
    opts.sha256
        .as_ref()
        .map(|d| d.trim_start_matches("sha256:").to_string())
}

fn dns_name(prefix: &str, parts: &[&str]) -> String {
    let raw = std::iter::once(prefix)
        .chain(parts.iter().copied())
        .collect::<Vec<_>>()
        .join("-");
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    name.truncate(63);
    name.trim_matches('-').to_string()
}

/// `[ns/]name` → (namespace, name).
fn split_ref<'a>(r: &'a str, default_ns: &'a str) -> (&'a str, &'a str) {
    r.split_once('/').unwrap_or((default_ns, r))
}

fn vm_env(loaded: &Loaded) -> Option<Value> {
    (!loaded.vm_vars.is_empty()).then(|| {
        json!({ "env": loaded.vm_vars.iter().map(|v| json!({ "name": v, "valueFrom": "HOST" })).collect::<Vec<_>>() })
    })
}

/// Istio's cluster name for an outbound service.
fn istio_cluster(host: &str, port: u16) -> String {
    format!("outbound|{port}||{host}")
}

/// Warnings for what a gateway route cannot carry.
pub type Warnings = Vec<String>;

/// Istio: the plugin (`WasmPlugin` or `TrafficExtension`, bound by
/// `selector` or `targetRefs`), the routing (`VirtualService` bound to a
/// classic gateway, or `HTTPRoute`s for a Gateway API one), one
/// `ServiceEntry` per external host with all its ports, and a
/// `DestinationRule` per host with TLS per port.
pub fn istio(loaded: &Loaded, opts: &KubeOptions) -> Result<(Vec<Value>, Warnings), Error> {
    let plan = loaded.plan.as_ref().ok_or(Error::InvalidConfiguration)?;
    let specs = cluster_specs(plan)?;
    let routes = group_by_destination(plan, &|h, p, _| istio_cluster(h, p));
    let config = filter_config_for_routes(loaded, plan, &routes, &|u| {
        istio_cluster(bare_host(&u.host), u.port)
    });
    let mut warnings = Warnings::new();
    let (gw_ns, gw_name) = split_ref(&opts.gateway, &opts.namespace);

    let kind = if opts.traffic_extension {
        "TrafficExtension"
    } else {
        "WasmPlugin"
    };
    let mut wasm = json!({
        "url": opts.url,
        "failStrategy": "FAIL_CLOSE",
        "pluginName": "backstage_proxy",
        "pluginConfig": config
    });
    if let Some(d) = sha256_hex(opts) {
        set(&mut wasm, "sha256", json!(d));
    }
    if let Some(env) = vm_env(loaded) {
        set(&mut wasm, "vmConfig", env);
    }
    let mut spec = if opts.traffic_extension {
        json!({ "phase": "AUTHN", "wasm": wasm })
    } else {
        let mut s = wasm;
        set(&mut s, "phase", json!("AUTHN"));
        s
    };
    bind_istio(&mut spec, opts, gw_name, ("selector", "matchLabels"));
    let plugin_ns = if opts.gateway_api {
        gw_ns
    } else {
        opts.namespace.as_str()
    };
    let mut docs = vec![json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": kind,
        "metadata": { "name": "backstage-proxy-wasm", "namespace": plugin_ns },
        "spec": spec
    })];

    if opts.gateway_api {
        let backend = |r: &Route| json!({ "group": "networking.istio.io", "kind": "Hostname", "name": r.host, "port": r.port });
        let rules = http_route_rules(plan, &routes, &backend, &mut warnings);
        docs.extend(http_routes(opts, gw_ns, gw_name, &rules));
    } else {
        docs.push(virtual_service(plan, &routes, opts, gw_ns, gw_name));
    }
    docs.extend(istio_destinations(&specs, &opts.namespace));
    if let Some(s) = &plan.gateway.rate_limit_service {
        docs.extend(istio_rate_limits(s, opts, plugin_ns, gw_name));
    }
    Ok((docs, warnings))
}

/// Istio has no resource for a global rate limit: its documented way is an
/// `EnvoyFilter` that inserts Envoy's rate limit filter before the router
/// (after the plugin, which runs in the `AUTHN` phase), gives the gateway's
/// virtual hosts the descriptors (the filter removes a caller's copies of
/// the headers on every request, so no route can be fed forged ones) and
/// the connection manager Backstage's body for its replies. The service is
/// reached through Istio's outbound cluster for its host: a
/// `ServiceEntry` (protocol `GRPC`) when it is outside the cluster.
fn istio_rate_limits(
    s: &backstage_proxy_core::config::RateLimitService,
    opts: &KubeOptions,
    plugin_ns: &str,
    gw_name: &str,
) -> Vec<Value> {
    let host = bare_host(&s.url.host).to_string();
    let mut service = s.clone();
    service.cluster = istio_cluster(&host, s.url.port);
    let hcm = "envoy.filters.network.http_connection_manager";
    let patches = json!([
        {
            "applyTo": "HTTP_FILTER",
            "match": { "context": "GATEWAY", "listener": { "filterChain": { "filter": {
                "name": hcm, "subFilter": { "name": "envoy.filters.http.router" } } } } },
            "patch": { "operation": "INSERT_BEFORE", "value": envoy_filter::http_filter(&service) }
        },
        {
            "applyTo": "VIRTUAL_HOST",
            "match": { "context": "GATEWAY" },
            "patch": { "operation": "MERGE", "value": { "rate_limits": route_rate_limits() } }
        },
        {
            "applyTo": "NETWORK_FILTER",
            "match": { "context": "GATEWAY", "listener": { "filterChain": { "filter": { "name": hcm } } } },
            "patch": { "operation": "MERGE", "value": { "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "local_reply_config": envoy_filter::local_reply_config() } } }
        }
    ]);
    let mut spec = json!({ "configPatches": patches });
    bind_istio(&mut spec, opts, gw_name, ("workloadSelector", "labels"));
    let mut docs = vec![json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": { "name": "backstage-proxy-ratelimit", "namespace": plugin_ns },
        "spec": spec
    })];
    if in_cluster(&host).is_none() {
        let name = dns_name("backstage-proxy-ratelimit", &[&host]);
        let mut entry = json!({
            "hosts": [host],
            "location": "MESH_EXTERNAL",
            "resolution": if is_ip(&host) { "STATIC" } else { "DNS" },
            "ports": [{ "number": s.url.port, "name": format!("grpc-{}", s.url.port), "protocol": "GRPC" }]
        });
        if is_ip(&host) {
            set(&mut entry, "endpoints", json!([{ "address": host }]));
        }
        docs.push(json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": { "name": name, "namespace": opts.namespace },
            "spec": entry
        }));
        if s.url.scheme == "https" {
            docs.push(json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": { "name": name, "namespace": opts.namespace },
                "spec": {
                    "host": host,
                    "trafficPolicy": { "tls": { "mode": "SIMPLE", "sni": host } }
                }
            }));
        }
    }
    docs
}

/// Binds an Istio resource to the gateway: `targetRefs` to the Gateway on
/// a Gateway API deployment, else the gateway workload's labels (`--selector`)
/// under `field.labels` (each kind names them its own way).
fn bind_istio(spec: &mut Value, opts: &KubeOptions, gw_name: &str, (field, labels): (&str, &str)) {
    if opts.gateway_api {
        set(
            spec,
            "targetRefs",
            json!([{ "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw_name }]),
        );
    } else {
        let matched: Map<String, Value> = opts
            .selector
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        set(spec, field, json!({ labels: matched }));
    }
}

/// The classic gateway's routing: one `http` route per header value (and
/// its `xfwd` variant first), in one `VirtualService` bound to the gateway.
fn virtual_service(
    plan: &Plan,
    routes: &[Route],
    opts: &KubeOptions,
    gw_ns: &str,
    gw_name: &str,
) -> Value {
    let header = &plan.gateway.cluster_header;
    let marker = &plan.gateway.xfwd_marker;
    let mut http = Vec::new();
    for (n, r) in routes.iter().enumerate() {
        for xfwd in [true, false] {
            if xfwd && !r.xfwd {
                continue;
            }
            let mut headers = json!({ header.as_str(): { "exact": r.value } });
            if xfwd {
                set(&mut headers, marker, json!({ "exact": "1" }));
            }
            let mut route = json!({
                "name": format!("backstage-proxy-{n}{}", if xfwd { "-xfwd" } else { "" }),
                "match": [{ "uri": { "prefix": "/" }, "headers": headers }],
                "route": [{ "destination": { "host": r.host, "port": { "number": r.port } } }],
                "headers": { "request": { "remove": removed_headers(plan, xfwd) } }
            });
            if let Some(a) = &r.authority {
                set(&mut route, "rewrite", json!({ "authority": a }));
            }
            if let Some(t) = r.timeout_ms {
                set(&mut route, "timeout", json!(seconds(t)));
            }
            http.push(route);
        }
    }
    let hosts = if opts.hostnames.is_empty() {
        vec!["*".to_string()]
    } else {
        opts.hostnames.clone()
    };
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": { "name": "backstage-proxy", "namespace": opts.namespace },
        "spec": { "hosts": hosts, "gateways": [format!("{gw_ns}/{gw_name}")], "http": http }
    })
}

/// One rule per header value (and its `xfwd` variant), at most
/// [`MAX_RULES_PER_ROUTE`] per `HTTPRoute` (`backstage-proxy-<n>`).
/// Returns the routes and, per header value, the (route name, rule index)
/// of its plain rule.
fn http_route_rules(
    plan: &Plan,
    routes: &[Route],
    backend: &dyn Fn(&Route) -> Value,
    warnings: &mut Warnings,
) -> Vec<(Value, String)> {
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
                match hostname_of(a) {
                    Some((host, port_dropped)) => {
                        if port_dropped {
                            warnings.push(format!("{}: an HTTPRoute rewrites the hostname without a port, so the upstream sees Host '{host}' instead of '{a}'", r.value));
                        }
                        filters.push(json!({ "type": "URLRewrite", "urlRewrite": { "hostname": host } }));
                    }
                    None => warnings.push(format!(
                        "{}: an HTTPRoute cannot rewrite the Host to '{a}'; the client's Host is kept",
                        r.value
                    )),
                }
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

/// The rules in `HTTPRoute`s `backstage-proxy-<n>` of at most
/// [`MAX_RULES_PER_ROUTE`] rules each.
fn http_routes(
    opts: &KubeOptions,
    gw_ns: &str,
    gw_name: &str,
    rules: &[(Value, String)],
) -> Vec<Value> {
    rules
        .chunks(MAX_RULES_PER_ROUTE)
        .enumerate()
        .map(|(n, chunk)| http_route(opts, gw_ns, gw_name, &route_name(n), chunk))
        .collect()
}

fn route_name(n: usize) -> String {
    format!("backstage-proxy-{n}")
}

fn http_route(
    opts: &KubeOptions,
    gw_ns: &str,
    gw_name: &str,
    name: &str,
    rules: &[(Value, String)],
) -> Value {
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

/// One `ServiceEntry` per external host listing all its ports (Istio
/// indexes hosts by name and keeps the oldest entry, so one entry per host
/// and port would drop ports), and one `DestinationRule` per host whose
/// TLS origination is set per port (`portLevelSettings`): Istio keeps the
/// first rule's top-level policy for every port of a host, so a top-level
/// `tls` would originate TLS towards the host's plain-HTTP ports too.
fn istio_destinations(specs: &BTreeMap<String, ClusterSpec>, namespace: &str) -> Vec<Value> {
    // host -> port -> (tls, verify); verification is off only when every
    // user of the port says so.
    let mut hosts: BTreeMap<String, BTreeMap<u16, (bool, bool)>> = BTreeMap::new();
    for spec in specs.values() {
        let port = hosts
            .entry(bare_host(&spec.host).to_string())
            .or_default()
            .entry(spec.port)
            .or_insert((spec.tls, spec.verify));
        port.1 |= spec.verify;
    }
    let mut docs = Vec::new();
    for (host, ports) in hosts {
        let name = dns_name("backstage-proxy", &[&host]);
        let ip = is_ip(&host) || host.contains(':');
        let tls: Vec<Value> = ports
            .iter()
            .filter(|(_, (tls, _))| *tls)
            .map(|(p, (_, verify))| {
                json!({
                    "port": { "number": p },
                    "tls": { "mode": "SIMPLE", "sni": host, "insecureSkipVerify": !verify }
                })
            })
            .collect();
        if !tls.is_empty() {
            docs.push(json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": { "name": name, "namespace": namespace },
                "spec": { "host": host, "trafficPolicy": { "portLevelSettings": tls } }
            }));
        }
        if in_cluster(&host).is_some() {
            // A Kubernetes Service: Istio's registry has it.
            continue;
        }
        let mut entry = json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": { "name": name, "namespace": namespace },
            "spec": {
                "hosts": [host],
                "location": "MESH_EXTERNAL",
                "resolution": if ip { "STATIC" } else { "DNS" },
                "ports": ports.keys().map(|p| json!({ "number": p, "name": format!("http-{p}"), "protocol": "HTTP" })).collect::<Vec<_>>()
            }
        });
        if ip {
            set_in(
                &mut entry,
                &["spec"],
                "endpoints",
                json!([{ "address": host }]),
            );
        }
        docs.push(entry);
    }
    docs
}

/// Envoy Gateway: the `EnvoyExtensionPolicy` with the image on the Gateway,
/// `HTTPRoute`s with one rule per header value, a `Backend` per destination
/// and a `BackendTLSPolicy` per verified TLS destination (an unverified one,
/// `secure: false`, sets the `Backend`'s `tls.insecureSkipVerify`).
pub fn envoy_gateway(loaded: &Loaded, opts: &KubeOptions) -> Result<(Vec<Value>, Warnings), Error> {
    let plan = loaded.plan.as_ref().ok_or(Error::InvalidConfiguration)?;
    cluster_specs(plan)?;
    let mut routes = group_by_destination(plan, &|h, p, tls| {
        format!("{}_{h}_{p}", if tls { "https" } else { "http" })
    });
    // A rule for each of the filter's own destinations that no endpoint
    // shares: its header value is never set by the filter.
    for u in callout_urls(plan) {
        let tls = u.scheme == "https";
        let host = bare_host(&u.host).to_string();
        if !routes
            .iter()
            .any(|r| r.host == host && r.port == u.port && r.tls == tls)
        {
            routes.push(Route {
                value: format!(
                    "callout_{}_{host}_{}",
                    if tls { "https" } else { "http" },
                    u.port
                ),
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
    let mut warnings = Warnings::new();
    let backend_name =
        |host: &str, port: u16| dns_name("backstage-proxy", &[host, &port.to_string()]);
    let backend = |r: &Route| match in_cluster(&r.host) {
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
    };
    let rules = http_route_rules(plan, &routes, &backend, &mut warnings);
    // Envoy Gateway names a rule's cluster httproute/<ns>/<route>/rule/<i>.
    let cluster_of = |host: &str, port: u16, tls: bool| -> Option<String> {
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
    };
    let config = filter_config_for_routes(loaded, plan, &routes, &|u| {
        cluster_of(bare_host(&u.host), u.port, u.scheme == "https").unwrap_or_default()
    });

    let (gw_ns, gw_name) = split_ref(&opts.gateway, &opts.namespace);
    let url = opts.url.trim_start_matches("oci://").to_string();
    let mut image = json!({ "url": url });
    if let Some(d) = sha256_hex(opts) {
        set(&mut image, "sha256", json!(d));
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
    let mut docs = vec![json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyExtensionPolicy",
        "metadata": { "name": "backstage-proxy-wasm", "namespace": gw_ns },
        "spec": {
            "targetRefs": [{ "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw_name }],
            "wasm": [wasm]
        }
    })];
    let http_routes = http_routes(opts, gw_ns, gw_name, &rules);
    if plan.gateway.rate_limit_service.is_some() {
        let names: Vec<String> = (0..http_routes.len()).map(route_name).collect();
        docs.push(envoy_gateway_rate_limits(plan, opts, &names)?);
        warnings.push("gateway.rateLimitService: Envoy Gateway runs its own rate limit service (the EnvoyGateway configuration's rateLimit.backend, on Redis); the BackendTrafficPolicy hands it the budgets, and the url, domain, timeoutMs and failureModeDeny set here are not used (set rateLimit.timeout and rateLimit.failClosed there)".to_string());
    }
    docs.extend(http_routes);
    if opts.envoy_proxy {
        docs.push(json!({
            "apiVersion": "gateway.envoyproxy.io/v1alpha1",
            "kind": "EnvoyProxy",
            "metadata": { "name": ENVOY_PROXY_NAME, "namespace": gw_ns },
            "spec": { "telemetry": { "accessLog": { "settings": [{
                "format": { "type": "JSON", "json": access_log::fields() },
                "sinks": [{ "type": "File", "file": { "path": "/dev/stdout" } }]
            }] } } }
        }));
        warnings.push(format!("the EnvoyProxy '{ENVOY_PROXY_NAME}' takes effect when the Gateway references it (spec.infrastructure.parametersRef: {{group: gateway.envoyproxy.io, kind: EnvoyProxy, name: {ENVOY_PROXY_NAME}}}); a Gateway with an EnvoyProxy of its own needs these access-log settings added to that one instead"));
    }
    // One Backend per (host, port); TLS per Backend.
    let mut backends: BTreeMap<(String, u16), (bool, bool)> = BTreeMap::new();
    for r in &routes {
        let b = backends
            .entry((r.host.clone(), r.port))
            .or_insert((r.tls, r.verify));
        b.1 |= r.verify;
    }
    let mut granted = std::collections::BTreeSet::new();
    for ((host, port), (tls, verify)) in backends {
        if let Some((svc, ns)) = in_cluster(&host) {
            // A Service in another namespace needs that namespace's grant.
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
            if tls && verify {
                docs.push(json!({
                    "apiVersion": "gateway.networking.k8s.io/v1",
                    "kind": "BackendTLSPolicy",
                    "metadata": { "name": dns_name("backstage-proxy", &[&svc, &port.to_string()]), "namespace": ns },
                    "spec": {
                        "targetRefs": [{ "group": "", "kind": "Service", "name": svc }],
                        "validation": { "hostname": host.to_ascii_lowercase(), "wellKnownCACertificates": "System" }
                    }
                }));
            } else if tls {
                warnings.push(format!("{host}:{port}: TLS without verification (secure: false) to a Service needs Envoy Gateway's BackendTrafficPolicy, which is not written; the connection is verified"));
            }
            continue;
        }
        let name = backend_name(&host, port);
        let endpoint = if is_ip(&host) || host.contains(':') {
            json!({ "ip": { "address": host, "port": port } })
        } else {
            json!({ "fqdn": { "hostname": host.to_ascii_lowercase(), "port": port } })
        };
        let mut spec = json!({ "endpoints": [endpoint] });
        if tls && !verify {
            set(&mut spec, "tls", json!({ "insecureSkipVerify": true }));
        }
        docs.push(json!({
            "apiVersion": "gateway.envoyproxy.io/v1alpha1",
            "kind": "Backend",
            "metadata": { "name": name, "namespace": opts.namespace },
            "spec": spec
        }));
        if tls && verify {
            docs.push(json!({
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "BackendTLSPolicy",
                "metadata": { "name": name, "namespace": opts.namespace },
                "spec": {
                    "targetRefs": [{ "group": "gateway.envoyproxy.io", "kind": "Backend", "name": name }],
                    "validation": { "hostname": host.to_ascii_lowercase(), "wellKnownCACertificates": "System" }
                }
            }));
        }
    }
    Ok((docs, warnings))
}

/// Envoy Gateway's global rate limits for `gateway.rateLimits`: a
/// `BackendTrafficPolicy` on the gateway's `HTTPRoute`s (never the whole
/// Gateway), one rule per budget: the endpoint header `Exact`, and for
/// `perPrincipal` the principal header `Distinct` (a counter per value);
/// `shared`, so an endpoint's budget is one across its routes. Envoy
/// Gateway places its rate limit filter after Wasm filters, so the
/// filter's headers are set when the descriptors are read.
fn envoy_gateway_rate_limits(
    plan: &Plan,
    opts: &KubeOptions,
    routes: &[String],
) -> Result<Value, Error> {
    use backstage_proxy_core::config::{RATE_LIMIT_ENDPOINT_HEADER, RATE_LIMIT_PRINCIPAL_HEADER};
    use backstage_proxy_core::ratelimit::{descriptor_value, Budget};
    // The rate limit service's unit, capitalised: `Second`, `Minute`, ….
    let unit = |b: &Budget| -> Result<String, Error> {
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
    };
    let mut rules = Vec::new();
    for e in &plan.endpoints {
        let Some(limit) = &e.rate_limit else { continue };
        let endpoint = json!({ "name": RATE_LIMIT_ENDPOINT_HEADER, "type": "Exact", "value": descriptor_value(&e.raw_key) });
        if let Some(t) = &limit.total {
            rules.push(json!({
                "clientSelectors": [{ "headers": [endpoint.clone()] }],
                "limit": { "requests": t.requests, "unit": unit(t)? },
                "shared": true
            }));
        }
        if let Some(p) = &limit.per_principal {
            rules.push(json!({
                "clientSelectors": [{ "headers": [endpoint, { "name": RATE_LIMIT_PRINCIPAL_HEADER, "type": "Distinct" }] }],
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

/// Envoy Gateway: the `EnvoyProxy` `--envoy-proxy` writes.
pub const ENVOY_PROXY_NAME: &str = "backstage-proxy";

/// Envoy Gateway: most rules in one `BackendTrafficPolicy`'s global rate
/// limit (the CRD's `maxItems`).
const MAX_RATE_LIMIT_RULES: usize = 256;

#[cfg(test)]
mod tests;
