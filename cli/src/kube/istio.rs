//! The Istio output (`istio`): the plugin (`WasmPlugin` or
//! `TrafficExtension`), the routing (a `VirtualService` on a classic
//! gateway, `HTTPRoute`s on a Gateway API one), a `ServiceEntry` per
//! external host, a `DestinationRule` with TLS per port, and under
//! `gateway.rateLimitService` the `EnvoyFilter` for Envoy's rate limit
//! filter.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::common::{check_image, dns_name, in_cluster, label_all, KubeOptions, Warnings};
use super::gateway_api::{http_route_rules, http_routes};
use super::upstream_ca::{istio_secret, UPSTREAM_CA_NAME};
use super::{checks, secrets};
use crate::appconfig::Loaded;
use crate::error::Error;
use crate::json::{seconds, set, set_in};
use crate::ratelimit::descriptors::route_rate_limits;
use crate::ratelimit::envoy_filter;
use crate::routes::{
    bare_host, certificate_name, cluster_specs, filter_config_for_routes, group_by_destination,
    is_ip, removed_headers, ClusterSpec, Route,
};
use backstage_proxy_core::config::{Plan, RateLimitService};

/// Istio's cluster name for an outbound service.
fn istio_cluster(host: &str, port: u16) -> String {
    format!("outbound|{port}||{host}")
}

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
    check_image(opts, &mut warnings)?;
    checks::loopback_destinations(plan, "ServiceEntry", &mut warnings);
    checks::per_replica_budgets(plan, &mut warnings);
    checks::uncarried_options(plan, "Istio", &mut warnings);
    let (gw_ns, gw_name) = opts.gateway_ref();
    let plugin_ns = if opts.gateway_api {
        gw_ns
    } else {
        opts.namespace.as_str()
    };
    let mut docs = vec![plugin(loaded, opts, config, plugin_ns, gw_name)];
    if opts.gateway_api {
        let backend = |r: &Route| json!({ "group": "networking.istio.io", "kind": "Hostname", "name": r.host, "port": r.port });
        let rules = http_route_rules(plan, &routes, &backend, &mut warnings);
        docs.extend(http_routes(opts, gw_ns, gw_name, &rules));
        docs.extend(secrets::istio_gateway_configmap(
            loaded,
            opts,
            &mut warnings,
        )?);
    } else {
        docs.push(virtual_service(plan, &routes, opts, gw_ns, gw_name));
    }
    docs.extend(destinations(&specs, opts));
    if let Some(s) = &plan.gateway.rate_limit_service {
        docs.extend(rate_limits(s, opts, plugin_ns, gw_name));
    }
    docs.extend(istio_secret(opts));
    let how = if opts.gateway_api {
        format!(
            "the ConfigMap '{}' passes them to the gateway's Deployment",
            secrets::ISTIO_GATEWAY_CONFIGMAP
        )
    } else {
        format!(
            "the Deployment '{}' must pass them to its {} container",
            opts.gateway_deployment,
            secrets::ISTIO_PROXY_CONTAINER
        )
    };
    warnings.extend(secrets::secret_warning(loaded, opts, &how));
    label_all(&mut docs);
    Ok((docs, warnings))
}

/// The plugin resource: the image, fail closed, in the `AUTHN` phase, with
/// the filter's configuration and the VM's variables.
fn plugin(loaded: &Loaded, opts: &KubeOptions, config: Value, ns: &str, gw_name: &str) -> Value {
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
    if let Some(d) = opts.image_digest_hex() {
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
    bind(&mut spec, opts, gw_name, ("selector", "matchLabels"));
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": kind,
        "metadata": { "name": "backstage-proxy-wasm", "namespace": ns },
        "spec": spec
    })
}

/// The variables header values read from the VM's environment, taken from
/// the gateway's.
fn vm_env(loaded: &Loaded) -> Option<Value> {
    (!loaded.vm_vars.is_empty()).then(|| {
        json!({ "env": loaded.vm_vars.iter().map(|v| json!({ "name": v, "valueFrom": "HOST" })).collect::<Vec<_>>() })
    })
}

/// Istio has no resource for a global rate limit: its documented way is an
/// `EnvoyFilter` that inserts Envoy's rate limit filter before the router
/// (after the plugin, which runs in the `AUTHN` phase), gives the gateway's
/// virtual hosts the descriptors (the filter removes a caller's copies of
/// the headers on every request, so no route can be fed forged ones) and
/// the connection manager Backstage's body for its replies. The service is
/// reached through Istio's outbound cluster for its host: a
/// `ServiceEntry` (protocol `GRPC`) when it is outside the cluster.
fn rate_limits(
    s: &RateLimitService,
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
    bind(&mut spec, opts, gw_name, ("workloadSelector", "labels"));
    let mut docs = vec![json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": { "name": "backstage-proxy-ratelimit", "namespace": plugin_ns },
        "spec": spec
    })];
    if in_cluster(&host).is_none() {
        docs.extend(rate_limit_service_entry(s, &host, opts));
    }
    docs
}

/// The rate limit service outside the cluster: a `ServiceEntry` (protocol
/// `GRPC`), and a `DestinationRule` for TLS to an `https` one.
fn rate_limit_service_entry(s: &RateLimitService, host: &str, opts: &KubeOptions) -> Vec<Value> {
    let namespace = &opts.namespace;
    let name = dns_name("backstage-proxy-ratelimit", &[host]);
    let mut entry = json!({
        "hosts": [host],
        "location": "MESH_EXTERNAL",
        "resolution": if is_ip(host) { "STATIC" } else { "DNS" },
        "ports": [{ "number": s.url.port, "name": format!("grpc-{}", s.url.port), "protocol": "GRPC" }]
    });
    if is_ip(host) {
        set(&mut entry, "endpoints", json!([{ "address": host }]));
    }
    let mut docs = vec![json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": { "name": name, "namespace": namespace },
        "spec": entry
    })];
    if s.url.scheme == "https" {
        docs.push(json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": { "name": name, "namespace": namespace },
            "spec": {
                "host": host,
                "trafficPolicy": { "tls": client_tls(host, true, opts) }
            }
        }));
    }
    docs
}

/// Binds an Istio resource to the gateway: `targetRefs` to the Gateway on
/// a Gateway API deployment, else the gateway workload's labels (`--selector`)
/// under `field.labels` (each kind names them its own way).
fn bind(spec: &mut Value, opts: &KubeOptions, gw_name: &str, (field, labels): (&str, &str)) {
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

/// One `ServiceEntry` per external host listing all its ports (Istio
/// indexes hosts by name and keeps the oldest entry, so one entry per host
/// and port would drop ports), and one `DestinationRule` per host whose
/// TLS origination is set per port (`portLevelSettings`): Istio keeps the
/// first rule's top-level policy for every port of a host, so a top-level
/// `tls` would originate TLS towards the host's plain-HTTP ports too.
fn destinations(specs: &BTreeMap<String, ClusterSpec>, opts: &KubeOptions) -> Vec<Value> {
    let namespace = opts.namespace.as_str();
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
        docs.extend(destination_rule(&host, &name, &ports, opts));
        if in_cluster(&host).is_some() {
            // A Kubernetes Service: Istio's registry has it.
            continue;
        }
        docs.push(service_entry(&host, &name, &ports, namespace));
    }
    docs
}

/// The host's `DestinationRule`: TLS on each of its `https` ports
/// (`portLevelSettings`); none for a host without one.
fn destination_rule(
    host: &str,
    name: &str,
    ports: &BTreeMap<u16, (bool, bool)>,
    opts: &KubeOptions,
) -> Option<Value> {
    let namespace = &opts.namespace;
    let tls: Vec<Value> = ports
        .iter()
        .filter(|(_, (tls, _))| *tls)
        .map(
            |(p, (_, verify))| json!({ "port": { "number": p }, "tls": client_tls(host, *verify, opts) }),
        )
        .collect();
    (!tls.is_empty()).then(|| {
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": { "name": name, "namespace": namespace },
            "spec": { "host": host, "trafficPolicy": { "portLevelSettings": tls } }
        })
    })
}

/// TLS origination to `host`: SNI, and unless verification is off
/// (`secure: false`) the certificate's name as well as its issuer. Istio
/// checks no name of its own once `sni` is set (its automatic SAN check
/// runs only without `sni` and `subjectAltNames`): without
/// `subjectAltNames`, any certificate a trusted CA issued, for any name,
/// would be accepted. Istio matches each entry against every kind of
/// name in the certificate, an IP address's too. With `--upstream-ca` the
/// issuer is checked against that bundle (`credentialName`), not the
/// system's roots.
fn client_tls(host: &str, verify: bool, opts: &KubeOptions) -> Value {
    let mut tls = json!({ "mode": "SIMPLE", "sni": host, "insecureSkipVerify": !verify });
    if verify {
        set(
            &mut tls,
            "subjectAltNames",
            json!([certificate_name(host).as_str()]),
        );
        if opts.upstream_ca.is_some() {
            set(&mut tls, "credentialName", json!(UPSTREAM_CA_NAME));
        }
    }
    tls
}

/// The external host's `ServiceEntry`, with all its ports.
fn service_entry(
    host: &str,
    name: &str,
    ports: &BTreeMap<u16, (bool, bool)>,
    namespace: &str,
) -> Value {
    let ip = is_ip(host) || host.contains(':');
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
    entry
}

#[cfg(test)]
mod tests;
