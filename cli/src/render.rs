//! The configuration generator: a validated app-config → a complete
//! `envoy.yaml`. The Kubernetes gateways' resources are in [`crate::kube`].

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::appconfig::Loaded;
use backstage_proxy_core::config::Plan;
use backstage_proxy_core::url::Url;

#[derive(Debug, Clone)]
pub struct Options {
    pub listen_address: String,
    pub listen_port: u16,
    pub admin_port: u16,
    /// Path of the `.wasm` as Envoy will see it.
    pub wasm_path: String,
    /// CA bundle for verifying `https` upstreams.
    pub ca_file: String,
    /// Where Envoy writes the access log (JSON lines), `None` for none.
    pub access_log: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            listen_address: "0.0.0.0".to_string(),
            listen_port: 10000,
            admin_port: 9901,
            wasm_path: "build/plugin.wasm".to_string(),
            ca_file: "/etc/ssl/certs/ca-certificates.crt".to_string(),
            access_log: Some("/dev/stdout".to_string()),
        }
    }
}

/// One Envoy cluster the filter can name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterSpec {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    pub(crate) verify: bool,
}

/// Why a gateway configuration could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The app-config did not validate (its errors were reported by `load`).
    InvalidConfiguration,
    /// Two destinations would need the same Envoy cluster name.
    ClusterConflict(String),
    /// The filter configuration could not be serialised.
    Serialise(String),
    /// The gateway cannot carry what the configuration asks for.
    Unsupported(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidConfiguration => f.write_str("the configuration is not valid"),
            Error::ClusterConflict(m) | Error::Serialise(m) | Error::Unsupported(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for Error {}

pub(crate) fn cluster_specs(plan: &Plan) -> Result<BTreeMap<String, ClusterSpec>, Error> {
    let mut out: BTreeMap<String, ClusterSpec> = BTreeMap::new();
    let mut add = |name: &str, url: &Url, secure: Option<bool>| -> Result<(), Error> {
        let spec = ClusterSpec {
            host: url.host.clone(),
            port: url.port,
            tls: url.scheme == "https",
            verify: secure != Some(false),
        };
        match out.get(name) {
            Some(existing)
                if existing.host != spec.host
                    || existing.port != spec.port
                    || existing.tls != spec.tls =>
            {
                Err(Error::ClusterConflict(format!(
                    "cluster '{name}' is named for two different destinations"
                )))
            }
            Some(existing) => {
                // Verification is off only when every user of the cluster says so.
                let verify = existing.verify || spec.verify;
                out.insert(name.to_string(), ClusterSpec { verify, ..spec });
                Ok(())
            }
            None => {
                out.insert(name.to_string(), spec);
                Ok(())
            }
        }
    };
    for e in &plan.endpoints {
        add(&e.cluster, &e.target, e.envoy.secure)?;
    }
    if let Some(b) = &plan.backend {
        add(&b.cluster, &b.url, None)?;
    }
    for j in &plan.auth.jwks {
        add(&j.cluster, &j.url, None)?;
    }
    Ok(out)
}

/// Sets `key` on a JSON object (no-op on anything else).
pub(crate) fn set(v: &mut Value, key: &str, val: Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_string(), val);
    }
}

/// Sets `key` on the object at `path` below `v`, creating objects on the way.
pub(crate) fn set_in(v: &mut Value, path: &[&str], key: &str, val: Value) {
    let mut node = v;
    for k in path {
        let Some(o) = node.as_object_mut() else {
            return;
        };
        node = o.entry(k.to_string()).or_insert_with(|| json!({}));
    }
    set(node, key, val);
}

pub(crate) fn is_ip(host: &str) -> bool {
    host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok()
}

fn cluster(name: &str, spec: &ClusterSpec, opts: &Options) -> Value {
    let address = spec.host.trim_start_matches('[').trim_end_matches(']');
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
    if spec.tls {
        let mut common = json!({});
        if spec.verify {
            set(
                &mut common,
                "validation_context",
                json!({ "trusted_ca": { "filename": opts.ca_file } }),
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

pub(crate) fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}

/// Routes: per endpoint cluster (timeouts from `proxyTimeout`/`timeout`,
/// redirects from `followRedirects`), in an `xfwd` variant that keeps
/// `x-forwarded-proto`, then the prefix route, then 404.
fn routes(plan: &Plan) -> Vec<Value> {
    let header = &plan.gateway.cluster_header;
    let marker = &plan.gateway.xfwd_marker;
    let mut per_cluster: BTreeMap<&str, (Option<u64>, Option<u64>, bool)> = BTreeMap::new();
    for e in &plan.endpoints {
        let entry = per_cluster
            .entry(e.cluster.as_str())
            .or_insert((None, None, false));
        entry.0 = entry.0.max(e.envoy.proxy_timeout_ms);
        entry.1 = entry.1.max(e.envoy.timeout_ms);
        entry.2 |= e.envoy.follow_redirects == Some(true);
    }
    // Clusters behind an endpoint with budgets (`gateway.rateLimitService`).
    let limited: std::collections::BTreeSet<&str> = plan
        .endpoints
        .iter()
        .filter(|e| e.rate_limit.is_some())
        .map(|e| e.cluster.as_str())
        .collect();
    let mut out = Vec::new();
    for (name, (timeout, idle, redirects)) in per_cluster {
        for xfwd in [true, false] {
            let mut headers = vec![json!({ "name": header, "string_match": { "exact": name } })];
            let mut remove = vec![json!(header)];
            if xfwd {
                headers.push(json!({ "name": marker, "present_match": true }));
                remove.push(json!(marker));
            } else {
                remove.push(json!("x-forwarded-proto"));
            }
            // Backstage sets no timeout of its own: 0s unless proxyTimeout says.
            let mut action = json!({ "cluster": name, "timeout": seconds(timeout.unwrap_or(0)) });
            if let Some(i) = idle {
                set(&mut action, "idle_timeout", json!(seconds(i)));
            }
            if redirects {
                set(
                    &mut action,
                    "internal_redirect_policy",
                    json!({ "redirect_response_codes": [301, 302, 303, 307, 308] }),
                );
            }
            let mut route = json!({ "match": { "prefix": "/", "headers": headers }, "route": action, "request_headers_to_remove": remove });
            if plan.gateway.rate_limit_service.is_some() {
                hand_over(&mut route, limited.contains(name));
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
        hand_over(&mut fallback, false);
    }
    out.push(fallback);
    out.push(json!({ "match": { "prefix": "/" }, "direct_response": { "status": 404 } }));
    out
}

/// A route under `gateway.rateLimitService`: the filter's rate-limit
/// headers become descriptors (where the route's cluster serves an
/// endpoint with budgets) and never reach the upstream.
fn hand_over(route: &mut Value, limited: bool) {
    if limited {
        set_in(
            route,
            &["route"],
            "rate_limits",
            crate::ratelimit::route_rate_limits(),
        );
    }
    if let Some(remove) = route
        .get_mut("request_headers_to_remove")
        .and_then(Value::as_array_mut)
    {
        remove.extend(crate::ratelimit::HEADERS.iter().map(|h| json!(h)));
    }
}

/// The access log: one JSON line per request, with who called which
/// endpoint and what the filter decided (the filter's filter state). The
/// path is logged without its query (query strings carry API keys), and no
/// header is logged.
pub(crate) fn access_log(path: &str) -> Value {
    json!({
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path,
            "log_format": { "json_format": access_log_fields() }
        }
    })
}

/// The access log's JSON fields (Envoy command operators), the same for
/// `render` and Envoy Gateway's `EnvoyProxy`.
pub fn access_log_fields() -> Value {
    let state = |k: &str| format!("%FILTER_STATE(wasm.backstage_proxy.{k}:PLAIN)%");
    json!({
        "time": "%START_TIME%",
        "method": "%REQ(:METHOD)%",
        "upstream_path": "%PATH(NQ)%",
        "status": "%RESPONSE_CODE%",
        "principal": state("principal"),
        "endpoint": state("endpoint"),
        "decision": state("decision"),
        "upstream_cluster": "%UPSTREAM_CLUSTER%",
        "duration_ms": "%DURATION%",
        "client": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"
    })
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
    let clusters = cluster_specs(plan)?;
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
    filters.push(json!({
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
    }));
    if let Some(s) = &plan.gateway.rate_limit_service {
        filters.push(crate::ratelimit::http_filter(s));
    }
    filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", "suppress_envoy_headers": true }
    }));
    let vhost = json!({ "name": "gateway", "domains": ["*"], "routes": routes(plan) });
    let access_log: Vec<Value> = opts
        .access_log
        .iter()
        .map(|path| access_log(path))
        .collect();
    let hcm = json!({
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
    });
    let mut clusters: Vec<Value> = clusters
        .iter()
        .map(|(name, spec)| cluster(name, spec, opts))
        .collect();
    let mut hcm = hcm;
    if let Some(s) = &plan.gateway.rate_limit_service {
        if clusters.iter().any(|c| c["name"] == json!(s.cluster)) {
            return Err(Error::ClusterConflict(format!(
                "cluster '{}' (gateway.rateLimitService) is also an endpoint's or a key set's",
                s.cluster
            )));
        }
        let spec = ClusterSpec {
            host: s.url.host.clone(),
            port: s.url.port,
            tls: s.url.scheme == "https",
            verify: true,
        };
        let mut c = cluster(&s.cluster, &spec, opts);
        // gRPC: HTTP/2 to the service.
        set(
            &mut c,
            "typed_extension_protocol_options",
            json!({ "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} }
            } }),
        );
        clusters.push(c);
        set(
            &mut hcm,
            "local_reply_config",
            crate::ratelimit::local_reply_config(),
        );
    }
    Ok(json!({
        "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": opts.admin_port } } },
        "static_resources": {
            "listeners": [{
                "name": "gateway",
                "address": { "socket_address": { "address": opts.listen_address, "port_value": opts.listen_port } },
                "filter_chains": [{ "filters": [{ "name": "envoy.filters.network.http_connection_manager", "typed_config": hcm }] }]
            }],
            "clusters": clusters
        }
    }))
}

#[cfg(test)]
mod tests;
