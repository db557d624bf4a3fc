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
fn cors_origins_become_matchers() {
    let p = cors_policy(&serde_json::json!({"origin": ["https://a.example", "https://*.b.example", "*"], "methods": ["GET", "POST"], "credentials": true, "maxAge": 600})).unwrap();
    let m = p["allow_origin_string_match"].as_array().unwrap();
    assert_eq!(m[0]["exact"], "https://a.example");
    assert_eq!(m[1]["safe_regex"]["regex"], "https://[^/]*\\.b\\.example");
    assert_eq!(m[2]["safe_regex"]["regex"], ".*");
    assert_eq!(p["allow_methods"], "GET, POST");
    assert_eq!(p["allow_credentials"], true);
    assert_eq!(p["max_age"], "600");
    assert!(
        cors_policy(&serde_json::json!({"methods": ["GET"]})).is_none(),
        "no origin, no policy"
    );
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
