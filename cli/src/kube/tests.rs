use super::*;
use crate::test_support::loaded;

fn opts() -> KubeOptions {
    KubeOptions {
        url: "oci://r/x:1".into(),
        sha256: None,
        namespace: "gw".into(),
        gateway: "backstage-gateway".into(),
        hostnames: Vec::new(),
        selector: vec![("istio".into(), "ingressgateway".into())],
        gateway_api: false,
        traffic_extension: false,
        envoy_proxy: false,
    }
}

fn istio_docs(yaml: &str) -> Vec<Value> {
    istio(&loaded(yaml), &opts()).unwrap().0
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

#[test]
fn the_filter_is_told_to_leave_authority_to_the_routes() {
    for docs in [
        istio_docs("backend:\n  baseUrl: http://backstage:7007\nproxy:\n  endpoints:\n    /a: https://api.example.com\n"),
        envoy_gateway(&loaded("backend:\n  baseUrl: http://backstage:7007\nproxy:\n  endpoints:\n    /a: https://api.example.com\n"), &opts()).unwrap().0,
    ] {
        let cfg = docs[0]["spec"].get("pluginConfig").or(docs[0]["spec"]["wasm"][0].get("config")).unwrap();
        assert_eq!(cfg["gateway"]["authorityRewrite"], "route");
        let plan = backstage_proxy_core::config::parse_value(cfg, &|_| None).unwrap();
        assert!(plan.gateway.route_rewrites_authority);
    }
}

#[test]
fn envoy_gateway_callouts_name_the_rule_of_their_destination() {
    let l = loaded("backend:\n  baseUrl: http://backstage.internal:7007\nproxy:\n  endpoints:\n    /a: https://api.example.com\n");
    let (docs, _) = envoy_gateway(&l, &opts()).unwrap();
    let cfg = &docs[0]["spec"]["wasm"][0]["config"];
    assert_eq!(
        cfg["gateway"]["backendCluster"],
        "httproute/gw/backstage-proxy-0/rule/1"
    );
    let route = docs.iter().find(|d| d["kind"] == "HTTPRoute").unwrap();
    let rule = &route["spec"]["rules"][1];
    assert_eq!(
        rule["backendRefs"][0]["name"],
        "backstage-proxy-backstage-internal-7007"
    );
    assert_eq!(
        rule["matches"][0]["headers"][0]["value"],
        "callout_http_backstage.internal_7007"
    );
}

#[test]
fn many_destinations_split_into_routes_of_at_most_sixteen_rules() {
    let mut yaml = String::from("proxy:\n  endpoints:\n");
    for i in 0..40 {
        yaml.push_str(&format!("    /e{i}: https://h{i}.example.com\n"));
    }
    let (docs, _) = envoy_gateway(&loaded(&yaml), &opts()).unwrap();
    let routes: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "HTTPRoute").collect();
    assert_eq!(routes.len(), 3);
    assert!(routes
        .iter()
        .all(|r| r["spec"]["rules"].as_array().unwrap().len() <= MAX_RULES_PER_ROUTE));
}
