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

/// The UpstreamTlsContext of every cluster that has one.
fn tls_clusters(v: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    v["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("transport_socket").is_some())
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["transport_socket"]["typed_config"].clone(),
            )
        })
        .collect()
}

/// Issue: https clusters trusted the CA but checked no name, so a
/// certificate for `evil.example` from any trusted CA was accepted for
/// `api.pagerduty.com` and got its injected credentials. Every https
/// cluster the tool writes (endpoints, the backend, key sets, the rate
/// limit service) now requires its host's name: a DNS entry for a name, an
/// IP address entry for an address (IPv6 canonical, without brackets).
#[test]
fn every_verified_https_cluster_requires_its_hosts_name() {
    let l = loaded(
        "backend:\n  baseUrl: https://backstage.example.com\n  auth:\n    externalAccess:\n      - type: jwks\n        options: {url: 'https://Login.Example.com./.well-known/jwks.json', issuer: https://login.example.com}\nproxy:\n  endpoints:\n    /pd: {target: 'https://api.pagerduty.com', headers: {Authorization: 'Token token=abc'}}\n    /v4: https://10.0.0.7:8443/api\n    /v6: 'https://[2001:DB8:0:0::1]:9443'\n    /plain: http://plain.example.com\n    /jenkins: {target: 'https://jenkins.internal:8443', secure: false}\ngateway:\n  rateLimitService: {url: 'https://ratelimit.example.com:8081'}\n  rateLimits:\n    /pd: {total: {requests: 10, seconds: 60}}\n",
    );
    let v = envoy(&l, &Options::default()).unwrap();
    let want = [
        ("https_api.pagerduty.com_443", "DNS", "api.pagerduty.com"),
        ("https_10.0.0.7_8443", "IP_ADDRESS", "10.0.0.7"),
        ("https__2001_db8_0_0__1__9443", "IP_ADDRESS", "2001:db8::1"),
        (
            "https_backstage.example.com_443",
            "DNS",
            "backstage.example.com",
        ),
        ("https_login.example.com._443", "DNS", "login.example.com"),
    ];
    let clusters = tls_clusters(&v);
    for (name, tls) in &clusters {
        let vc = &tls["common_tls_context"]["validation_context"];
        if name == "https_jenkins.internal_8443" {
            assert!(vc.is_null(), "secure: false: no validation at all: {tls}");
            continue;
        }
        assert_eq!(
            vc["trusted_ca"]["filename"],
            "/etc/ssl/certs/ca-certificates.crt"
        );
        let sans = vc["match_typed_subject_alt_names"].as_array().unwrap();
        assert_eq!(sans.len(), 1, "{name}: one host, one name: {sans:?}");
        if let Some((_, kind, host)) = want.iter().find(|(n, _, _)| n == name) {
            assert_eq!(
                sans[0],
                serde_json::json!({ "san_type": kind, "matcher": { "exact": host } }),
                "{name}"
            );
        } else {
            let rls = &l.plan.as_ref().unwrap().gateway.rate_limit_service;
            assert_eq!(Some(name), rls.as_ref().map(|s| &s.cluster));
            assert_eq!(
                sans[0],
                serde_json::json!({ "san_type": "DNS", "matcher": { "exact": "ratelimit.example.com" } }),
                "{name}"
            );
        }
    }
    let names: Vec<&str> = clusters.iter().map(|(n, _)| n.as_str()).collect();
    for (n, _, _) in want {
        assert!(names.contains(&n), "{n} not among {names:?}");
    }
    assert!(names.contains(&"https_jenkins.internal_8443"));
    assert_eq!(
        clusters.len(),
        want.len() + 2,
        "the rate limit service's too: {names:?}"
    );
    let plain = v["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "http_plain.example.com_80")
        .unwrap();
    assert!(plain.get("transport_socket").is_none());
}

/// A cluster two endpoints share is verified unless both say
/// `secure: false`; verified, it checks the name.
#[test]
fn a_shared_cluster_is_unverified_only_when_every_endpoint_says_so() {
    let l = loaded("proxy:\n  endpoints:\n    /a: {target: 'https://api.example.com/a', secure: false}\n    /b: https://api.example.com/b\n    /c: {target: 'https://other.example.com/c', secure: false}\n    /d: {target: 'https://other.example.com/d', secure: false}\n");
    let v = envoy(&l, &Options::default()).unwrap();
    let clusters = tls_clusters(&v);
    let vc = |n: &str| {
        clusters.iter().find(|(c, _)| c == n).unwrap().1["common_tls_context"]["validation_context"]
            .clone()
    };
    assert_eq!(
        vc("https_api.example.com_443")["match_typed_subject_alt_names"][0]["matcher"]["exact"],
        "api.example.com"
    );
    assert!(vc("https_other.example.com_443").is_null());
}
