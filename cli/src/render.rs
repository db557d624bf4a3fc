//! The Envoy output (`render`): a validated app-config → a complete
//! `envoy.yaml` (listener, the filter and its JSON configuration, routes,
//! one cluster per destination). The Kubernetes gateways' resources are in
//! [`crate::kube`].

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::access_log;
use crate::appconfig::Loaded;
use crate::error::Error;
use crate::json::{seconds, set, set_in};
use crate::ratelimit::descriptors::{route_rate_limits, HEADERS};
use crate::ratelimit::envoy_filter;
use crate::routes::{
    bare_host, certificate_name, cluster_specs, is_ip, CertificateName, ClusterSpec,
};
use crate::stats_tags;
use backstage_proxy_core::config::{Plan, RateLimitService};

#[derive(Debug, Clone)]
pub struct Options {
    pub listen_address: String,
    pub listen_port: u16,
    pub admin_port: u16,
    /// Path of the `.wasm` as Envoy will see it.
    pub wasm_path: String,
    /// The native dynamic module (`libbackstage_proxy.so`) as Envoy will
    /// see it, in place of the Wasm filter (docs/native.md#loading-it).
    pub native: Option<String>,
    /// CA bundle for verifying `https` upstreams.
    pub ca_file: String,
    /// Where Envoy writes the access log (JSON lines), `None` for none.
    pub access_log: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            listen_address: "127.0.0.1".to_string(),
            listen_port: 10000,
            admin_port: 9901,
            wasm_path: "build/plugin.wasm".to_string(),
            native: None,
            ca_file: "/etc/ssl/certs/ca-certificates.crt".to_string(),
            access_log: Some("/dev/stdout".to_string()),
        }
    }
}

fn cluster(name: &str, spec: &ClusterSpec, opts: &Options) -> Value {
    let address = bare_host(&spec.host);
    let mut c = json!({
        "name": name,
        "type": if is_ip(&spec.host) { "STATIC" } else { "LOGICAL_DNS" },
        "connect_timeout": "5s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": { "socket_address": { "address": address, "port_value": spec.port } } } }] }]
        }
    });
    if !is_ip(&spec.host) {
        set(&mut c, "dns_lookup_family", json!("V4_PREFERRED"));
    }
    if let Some(stat_name) = stats_tags::cluster_stat_name(name) {
        set(&mut c, "alt_stat_name", json!(stat_name));
    }
    if spec.tls {
        let mut common = json!({});
        // `secure: false` (every user of the cluster): no validation at
        // all, the endpoint's documented way out. Otherwise the issuer and
        // the name: a certificate a trusted CA issued for another name is
        // refused (`ssl.fail_verify_san`) before a byte of the request, and
        // its injected credentials, leaves.
        if spec.verify {
            set(
                &mut common,
                "validation_context",
                json!({
                    "trusted_ca": { "filename": opts.ca_file },
                    "match_typed_subject_alt_names": [san_matcher(&spec.host)]
                }),
            );
        }
        set(
            &mut c,
            "transport_socket",
            json!({
                "name": "envoy.transport_sockets.tls",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                    "sni": address,
                    "common_tls_context": common
                }
            }),
        );
    }
    c
}

/// The certificate name an `https` cluster to `host` requires: a DNS
/// entry for a name (exact, so a wildcard entry matches it as DNS names
/// match), an IP address entry for an address. A cluster reaches one host
/// (`cluster_specs` refuses one name for two destinations), so one name.
fn san_matcher(host: &str) -> Value {
    match certificate_name(host) {
        CertificateName::Dns(name) => json!({ "san_type": "DNS", "matcher": { "exact": name } }),
        CertificateName::Ip(ip) => json!({ "san_type": "IP_ADDRESS", "matcher": { "exact": ip } }),
    }
}

/// What the routes to one cluster carry, from the endpoints behind it: the
/// longest `proxyTimeout` and `timeout`, and whether any follows redirects.
#[derive(Default)]
struct ClusterRouting {
    timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    follow_redirects: bool,
}

/// The virtual host's routes: per endpoint cluster (timeouts from
/// `proxyTimeout`/`timeout`, redirects from `followRedirects`), in an
/// `xfwd` variant that keeps `x-forwarded-proto`, then the prefix route,
/// then 404.
fn envoy_routes(plan: &Plan) -> Vec<Value> {
    let header = &plan.gateway.cluster_header;
    let mut per_cluster: BTreeMap<&str, ClusterRouting> = BTreeMap::new();
    for e in &plan.endpoints {
        let entry = per_cluster.entry(e.cluster.as_str()).or_default();
        entry.timeout_ms = entry.timeout_ms.max(e.envoy.proxy_timeout_ms);
        entry.idle_timeout_ms = entry.idle_timeout_ms.max(e.envoy.timeout_ms);
        entry.follow_redirects |= e.envoy.follow_redirects == Some(true);
    }
    // Clusters behind an endpoint with budgets (`gateway.rateLimitService`).
    let limited: std::collections::BTreeSet<&str> = plan
        .endpoints
        .iter()
        .filter(|e| e.rate_limit.as_ref().is_some_and(|l| !l.is_empty()))
        .map(|e| e.cluster.as_str())
        .collect();
    let mut out = Vec::new();
    for (name, routing) in per_cluster {
        for xfwd in [true, false] {
            let mut route = cluster_route(plan, name, &routing, xfwd);
            if plan.gateway.rate_limit_service.is_some() {
                hand_rate_limit_headers_over(&mut route, limited.contains(name));
            }
            out.push(route);
        }
    }
    let mut fallback = json!({
        "match": { "prefix": plan.gateway.prefix, "case_sensitive": false },
        "route": { "cluster_header": header, "timeout": "0s" },
        "request_headers_to_remove": [header, "x-forwarded-proto"]
    });
    if plan.gateway.rate_limit_service.is_some() {
        hand_rate_limit_headers_over(&mut fallback, false);
    }
    out.push(fallback);
    out.push(json!({ "match": { "prefix": "/" }, "direct_response": { "status": 404 } }));
    out
}

/// The route to cluster `name`: matched by the destination header (and in
/// the `xfwd` variant the filter's marker), which it removes.
fn cluster_route(plan: &Plan, name: &str, routing: &ClusterRouting, xfwd: bool) -> Value {
    let header = &plan.gateway.cluster_header;
    let marker = &plan.gateway.xfwd_marker;
    let mut headers = vec![json!({ "name": header, "string_match": { "exact": name } })];
    let mut remove = vec![json!(header)];
    if xfwd {
        headers.push(json!({ "name": marker, "present_match": true }));
        remove.push(json!(marker));
    } else {
        remove.push(json!("x-forwarded-proto"));
    }
    // Backstage sets no timeout of its own: 0s unless proxyTimeout says.
    let mut action =
        json!({ "cluster": name, "timeout": seconds(routing.timeout_ms.unwrap_or(0)) });
    if let Some(i) = routing.idle_timeout_ms {
        set(&mut action, "idle_timeout", json!(seconds(i)));
    }
    if routing.follow_redirects {
        set(
            &mut action,
            "internal_redirect_policy",
            json!({ "redirect_response_codes": [301, 302, 303, 307, 308] }),
        );
    }
    json!({ "match": { "prefix": "/", "headers": headers }, "route": action, "request_headers_to_remove": remove })
}

/// A route under `gateway.rateLimitService`: the filter's rate-limit
/// headers become descriptors (where the route's cluster serves an
/// endpoint with budgets) and never reach the upstream.
fn hand_rate_limit_headers_over(route: &mut Value, limited: bool) {
    if limited {
        set_in(route, &["route"], "rate_limits", route_rate_limits());
    }
    if let Some(remove) = route
        .get_mut("request_headers_to_remove")
        .and_then(Value::as_array_mut)
    {
        remove.extend(HEADERS.iter().map(|h| json!(h)));
    }
}

/// The complete Envoy bootstrap for loaded app-config files.
pub fn envoy(loaded: &Loaded, opts: &Options) -> Result<Value, Error> {
    let plan = loaded.plan.as_ref().ok_or(Error::InvalidConfiguration)?;
    let config_json = serde_json::to_string_pretty(&loaded.filter_config)
        .map_err(|e| Error::Serialise(e.to_string()))?;
    gateway(plan, &config_json, &loaded.vm_vars, opts)
}

/// The complete Envoy bootstrap for a validated plan: `config_json` is the
/// filter's configuration as Envoy passes it, `vm_vars` the variables its
/// header values read from the VM's environment. CORS (`backend.cors`) is
/// in the filter's configuration: the filter answers it (Envoy's CORS
/// filter cannot reflect requested headers). The end-to-end tests build
/// their gateways with it too.
pub fn gateway(
    plan: &Plan,
    config_json: &str,
    vm_vars: &[String],
    opts: &Options,
) -> Result<Value, Error> {
    let specs = cluster_specs(plan)?;
    let filters = http_filters(plan, config_json, vm_vars, opts);
    let mut hcm = connection_manager(plan, filters, opts);
    let mut clusters: Vec<Value> = specs
        .iter()
        .map(|(name, spec)| cluster(name, spec, opts))
        .collect();
    if let Some(s) = &plan.gateway.rate_limit_service {
        if specs.contains_key(&s.cluster) {
            return Err(Error::ClusterConflict(format!(
                "cluster '{}' (gateway.rateLimitService) is also an endpoint's or a key set's",
                s.cluster
            )));
        }
        clusters.push(rate_limit_service_cluster(s, opts));
        set(
            &mut hcm,
            "local_reply_config",
            envoy_filter::local_reply_config(),
        );
    }
    let mut bootstrap = json!({
        "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": opts.admin_port } } },
        "stats_config": stats_tags::stats_config(),
        "static_resources": {
            "listeners": [{
                "name": "gateway",
                "address": { "socket_address": { "address": opts.listen_address, "port_value": opts.listen_port } },
                "filter_chains": [{ "filters": [{ "name": "envoy.filters.network.http_connection_manager", "typed_config": hcm }] }]
            }],
            "clusters": clusters
        }
    });
    if opts.native.is_some() {
        // The module's counters keep the Wasm filter's names in
        // Prometheus too (`backstage_proxy_…`, not `envoy_wasmcustom_…`).
        set(
            &mut bootstrap,
            "layered_runtime",
            json!({ "layers": [{ "name": "backstage_proxy", "static_layer": {
                "envoy.reloadable_features.dynamic_modules_strip_custom_stat_prefix": true
            } }] }),
        );
    }
    Ok(bootstrap)
}

/// The native module's filter: the same configuration text, handed to the
/// module as it is; its counters under the Wasm filter's names.
pub fn native_filter(so_path: &str, config_json: &str) -> Value {
    json!({
        "name": "envoy.filters.http.dynamic_modules",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {
                "module": { "local": { "filename": so_path } },
                "metrics_namespace": "wasmcustom"
            },
            "filter_name": "backstage_proxy",
            "filter_config": { "@type": "type.googleapis.com/google.protobuf.StringValue", "value": config_json }
        }
    })
}

/// The HTTP filters in order: the Wasm filter (fail closed) or the native
/// module, the rate limit
/// filter under `gateway.rateLimitService`, the router.
fn http_filters(plan: &Plan, config_json: &str, vm_vars: &[String], opts: &Options) -> Vec<Value> {
    let mut vm_config = json!({
        "vm_id": "backstage_proxy",
        "runtime": "envoy.wasm.runtime.v8",
        "code": { "local": { "filename": opts.wasm_path } }
    });
    if !vm_vars.is_empty() {
        set(
            &mut vm_config,
            "environment_variables",
            json!({ "host_env_keys": vm_vars }),
        );
    }
    let mut filters = Vec::new();
    if let Some(so) = &opts.native {
        filters.push(native_filter(so, config_json));
    } else {
        filters.push(wasm_filter(config_json, vm_config));
    }
    if let Some(s) = &plan.gateway.rate_limit_service {
        filters.push(envoy_filter::http_filter(s));
    }
    filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", "suppress_envoy_headers": true }
    }));
    filters
}

fn wasm_filter(config_json: &str, vm_config: Value) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "backstage_proxy",
                "root_id": "backstage_proxy",
                "failure_policy": "FAIL_CLOSED",
                "vm_config": vm_config,
                "configuration": { "@type": "type.googleapis.com/google.protobuf.StringValue", "value": config_json }
            }
        }
    })
}

/// The HTTP connection manager: paths and headers passed as the client
/// sent them, one virtual host with the routes, the access log.
fn connection_manager(plan: &Plan, filters: Vec<Value>, opts: &Options) -> Value {
    let vhost = json!({ "name": "gateway", "domains": ["*"], "routes": envoy_routes(plan) });
    let access_log: Vec<Value> = opts
        .access_log
        .iter()
        .map(|path| access_log::file_logger(path))
        .collect();
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "gateway",
        "normalize_path": false,
        "merge_slashes": false,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "use_remote_address": true,
        "xff_num_trusted_hops": 0,
        "preserve_external_request_id": true,
        "generate_request_id": false,
        "server_header_transformation": "PASS_THROUGH",
        "upgrade_configs": [{ "upgrade_type": "websocket" }],
        "common_http_protocol_options": { "headers_with_underscores_action": "DROP_HEADER" },
        "route_config": { "name": "gateway", "virtual_hosts": [vhost] },
        "access_log": access_log,
        "http_filters": filters
    })
}

/// The rate limit service's cluster: gRPC, so HTTP/2; for an `https` url
/// over TLS verified as every other cluster's (issuer and name: there is
/// no `secure: false` for it).
fn rate_limit_service_cluster(s: &RateLimitService, opts: &Options) -> Value {
    let spec = ClusterSpec {
        host: s.url.host.clone(),
        port: s.url.port,
        tls: s.url.scheme == "https",
        verify: true,
    };
    let mut c = cluster(&s.cluster, &spec, opts);
    set(
        &mut c,
        "typed_extension_protocol_options",
        json!({ "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": { "http2_protocol_options": {} }
        } }),
    );
    c
}

#[cfg(test)]
mod tests;
