use super::*;
use crate::appconfig::{load, load_yaml};

fn loaded(yaml: &str) -> Loaded {
    let l = load(&[load_yaml("a.yaml", yaml).unwrap()], &|_| None);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    l
}

#[test]
fn two_destinations_under_one_cluster_name_are_refused() {
    let l = loaded("proxy:\n  endpoints:\n    /a: {target: 'http://one', cluster: c}\n    /b: {target: 'http://two', cluster: c}\n");
    assert_eq!(
        envoy(&l, &Options::default()).unwrap_err().to_string(),
        "cluster 'c' is named for two different destinations"
    );
}

#[test]
fn cors_goes_to_the_filter_not_to_envoys_cors_filter() {
    let l = loaded("backend:\n  cors:\n    origin: https://app.example\n    credentials: true\nproxy:\n  endpoints:\n    /a: http://one\n");
    let v = envoy(&l, &Options::default()).unwrap();
    let hcm =
        &v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let names: Vec<&str> = hcm["http_filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["envoy.filters.http.wasm", "envoy.filters.http.router"]
    );
    let config: serde_json::Value = serde_json::from_str(
        hcm["http_filters"][0]["typed_config"]["config"]["configuration"]["value"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(config["backend"]["cors"]["origin"], "https://app.example");
    assert_eq!(config["backend"]["cors"]["credentials"], true);
}

#[test]
fn ip_literals_are_static_names_use_dns() {
    let l = loaded("proxy:\n  endpoints:\n    /a: http://10.0.0.1:81\n    /b: https://api.example.com\n    /c: 'http://[::1]:82'\n");
    let v = envoy(&l, &Options::default()).unwrap();
    let clusters = v["static_resources"]["clusters"].as_array().unwrap();
    let by = |n: &str| clusters.iter().find(|c| c["name"] == n).unwrap().clone();
    assert_eq!(by("http_10.0.0.1_81")["type"], "STATIC");
    assert_eq!(by("https_api.example.com_443")["type"], "LOGICAL_DNS");
    assert_eq!(
        by("http____1__82")["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
            ["address"]["socket_address"]["address"],
        "::1"
    );
}

#[test]
fn seconds_format() {
    assert_eq!(seconds(0), "0s");
    assert_eq!(seconds(30_000), "30s");
    assert_eq!(seconds(1500), "1.500s");
}

fn istio_docs(yaml: &str) -> Vec<Value> {
    let opts = IstioOptions {
        url: "oci://r/x:1".into(),
        sha256: None,
        namespace: "gw".into(),
        selector: vec![("istio".into(), "ingressgateway".into())],
    };
    istio(&loaded(yaml), &opts).unwrap()
}

/// Issue: one ServiceEntry per host and port (Istio keeps the oldest entry
/// per host name) and one DestinationRule per host and port with top-level
/// TLS (Istio keeps the first rule's top-level policy for every port), so a
/// host serving https on one port and http on another got TLS originated
/// towards the plain-HTTP port. Now one entry per host with all its ports,
/// and TLS per port only where the target is https.
#[test]
fn istio_one_service_entry_per_host_and_tls_per_port() {
    let docs = istio_docs(
        "backend:\n  baseUrl: http://localhost:7007\nproxy:\n  endpoints:\n    /a: https://localhost:8080\n    /b: {target: 'https://localhost:8443', secure: false}\n    /c: https://api.example.com\n    /d: http://api.example.com:8000\n",
    );
    let of = |kind: &str, host: &str| -> Vec<&Value> {
        docs.iter()
            .filter(|d| {
                d["kind"] == kind && (d["spec"]["hosts"][0] == host || d["spec"]["host"] == host)
            })
            .collect()
    };
    let entries = of("ServiceEntry", "localhost");
    assert_eq!(entries.len(), 1, "one entry for the host");
    let ports: Vec<u64> = entries[0]["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [7007, 8080, 8443]);
    let rules = of("DestinationRule", "localhost");
    assert_eq!(rules.len(), 1);
    let policy = &rules[0]["spec"]["trafficPolicy"];
    assert!(policy.get("tls").is_none(), "no host-wide TLS: {policy}");
    let settings = policy["portLevelSettings"].as_array().unwrap();
    let tls_ports: Vec<(u64, bool)> = settings
        .iter()
        .map(|s| {
            assert_eq!(s["tls"]["mode"], "SIMPLE");
            (
                s["port"]["number"].as_u64().unwrap(),
                s["tls"]["insecureSkipVerify"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tls_ports,
        [(8080, false), (8443, true)],
        "7007 stays plain HTTP"
    );
    // Another host: its own entry and rule; an http-only host gets no rule.
    assert_eq!(of("ServiceEntry", "api.example.com").len(), 1);
    assert_eq!(of("DestinationRule", "api.example.com").len(), 1);
    let names: Vec<(String, String)> = docs
        .iter()
        .map(|d| (d["kind"].to_string(), d["metadata"]["name"].to_string()))
        .collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        names.len(),
        "names are unique per kind: {names:?}"
    );
    let http_only = istio_docs("proxy:\n  endpoints:\n    /a: http://plain.example.com\n");
    assert!(!http_only.iter().any(|d| d["kind"] == "DestinationRule"));
}
