use serde_json::Value;

use crate::test_support::istio_docs;

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

/// Issue: the DestinationRules set `sni` and no `subjectAltNames`, and with
/// `sni` set Istio checks no name of its own: any certificate a trusted CA
/// issued, for any name, was accepted. Every verified TLS port (endpoints,
/// the backend, key sets, the rate limit service) now names its host;
/// `secure: false` stays the only way out (`insecureSkipVerify`, no name).
#[test]
fn verified_tls_names_the_certificate_the_host_must_present() {
    let docs = istio_docs(
        "backend:\n  baseUrl: https://backstage.example.com\n  auth:\n    externalAccess:\n      - type: jwks\n        options: {url: 'https://login.example.com/.well-known/jwks.json', issuer: https://login.example.com}\nproxy:\n  endpoints:\n    /pd: https://api.pagerduty.com\n    /v4: https://10.0.0.7:8443\n    /v6: 'https://[2001:DB8:0:0::1]:9443'\n    /jenkins: {target: 'https://jenkins.internal:8443', secure: false}\ngateway:\n  rateLimitService: {url: 'https://ratelimit.example.com:8081'}\n  rateLimits:\n    /pd: {total: {requests: 10, seconds: 60}}\n",
    );
    let tls_of = |host: &str| -> Value {
        let rule = docs
            .iter()
            .find(|d| d["kind"] == "DestinationRule" && d["spec"]["host"] == host)
            .unwrap_or_else(|| panic!("no DestinationRule for {host}"));
        let policy = &rule["spec"]["trafficPolicy"];
        policy
            .get("tls")
            .cloned()
            .unwrap_or_else(|| policy["portLevelSettings"][0]["tls"].clone())
    };
    for (host, name) in [
        ("api.pagerduty.com", "api.pagerduty.com"),
        ("10.0.0.7", "10.0.0.7"),
        ("2001:db8:0:0::1", "2001:db8::1"),
        ("backstage.example.com", "backstage.example.com"),
        ("login.example.com", "login.example.com"),
        ("ratelimit.example.com", "ratelimit.example.com"),
    ] {
        let tls = tls_of(host);
        assert_eq!(tls["mode"], "SIMPLE", "{host}");
        assert_eq!(tls["insecureSkipVerify"], false, "{host}");
        assert_eq!(tls["subjectAltNames"], serde_json::json!([name]), "{host}");
    }
    let jenkins = tls_of("jenkins.internal");
    assert_eq!(jenkins["insecureSkipVerify"], true);
    assert!(jenkins.get("subjectAltNames").is_none(), "{jenkins}");
}
