use super::*;
use crate::test_support::loaded;

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
