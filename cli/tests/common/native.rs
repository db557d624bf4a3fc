//! The gateway the native module's delivery tests run: the one the test
//! kit renders with `render --native` (routes, clusters, the runtime flag),
//! the module named where its image or a URL puts it instead of by a path.

use std::path::Path;

use backstage_proxy_testkit::{cluster_for_port, render_config, secret, EnvoyOptions, Response};
use serde_json::{json, Value};

/// The static token the gateway accepts (subject `ci`).
pub const TOKEN: &str = "native-delivery-token-0123456789";

/// `/api/proxy/svc` → the upstream on `up`, credentials required (the
/// default), the static token accepted.
pub fn filter_config(up: u16) -> String {
    format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":"http://127.0.0.1:{up}/base"}}}},
            "backend":{{"auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{TOKEN}","subject":"ci"}}}}]}}}}}}"#
    )
}

/// The rendered gateway for the upstream on `up`, its module given by
/// `source` (`{"name": …}` or `{"module": …}`, the keys of
/// `dynamic_module_config` that say where the module is), with `clusters`
/// added; as JSON, which Envoy reads as YAML.
pub fn gateway(up: u16, source: Value, clusters: &[Value]) -> String {
    secret(TOKEN);
    let opts = EnvoyOptions::new(filter_config(up))
        .cluster(cluster_for_port(up), up)
        .native("placeholder");
    let mut v: Value = serde_json::from_str(&render_config(&opts, Path::new(""))).unwrap();
    let hcm = &mut v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    let filter = hcm["http_filters"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["name"] == "envoy.filters.http.dynamic_modules")
        .expect("the rendered gateway runs the native module");
    let module = filter["typed_config"]["dynamic_module_config"]
        .as_object_mut()
        .unwrap();
    assert_eq!(
        module.remove("module"),
        Some(json!({ "local": { "filename": "placeholder" } }))
    );
    for (k, val) in source.as_object().unwrap() {
        module.insert(k.clone(), val.clone());
    }
    let all = v["static_resources"]["clusters"].as_array_mut().unwrap();
    all.extend(clusters.iter().cloned());
    serde_json::to_string_pretty(&v).unwrap()
}

/// A loopback cluster `name` → `port`.
pub fn loopback_cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": { "cluster_name": name, "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": port } } } }] }] }
    })
}

/// Backstage's 401 for a request without credentials: the module answered.
pub fn assert_backstage_401(r: &Response, url: &str) {
    assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["error"]["name"], "AuthenticationError");
    assert_eq!(body["request"]["url"], url);
}
