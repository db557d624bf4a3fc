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
