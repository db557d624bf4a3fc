use super::*;
use crate::test_support::{kube_options as opts, loaded};

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

/// Gateway API's `BackendTLSPolicy.validation.hostname` is the SNI and the
/// name the certificate must match: every verified TLS destination gets
/// one naming its host (lower case, no trailing dot); `secure: false` gets
/// none, and the `Backend` skips verification.
#[test]
fn every_verified_tls_backend_names_its_host() {
    let l = loaded("backend:\n  baseUrl: https://backstage.example.com\nproxy:\n  endpoints:\n    /pd: https://API.PagerDuty.com.\n    /svc: https://api.tools.svc:8443\n    /jenkins: {target: 'https://jenkins.internal:8443', secure: false}\n");
    let (docs, warnings) = envoy_gateway(&l, &opts()).unwrap();
    assert!(
        !warnings.iter().any(|w| w.contains("certificate")),
        "{warnings:?}"
    );
    let hostnames: Vec<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "BackendTLSPolicy")
        .map(|d| d["spec"]["validation"]["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(
        hostnames,
        [
            "api.pagerduty.com",
            "api.tools.svc",
            "backstage.example.com"
        ]
    );
    let jenkins = docs
        .iter()
        .find(|d| {
            d["kind"] == "Backend"
                && d["metadata"]["name"] == "backstage-proxy-jenkins-internal-8443"
        })
        .unwrap();
    assert_eq!(jenkins["spec"]["tls"]["insecureSkipVerify"], true);
}

/// Gateway API names a certificate by DNS name only: an IPv4 target's
/// policy names the address (Envoy Gateway then requires it as a DNS
/// entry: checked, and a warning says how); an IPv6 target cannot be
/// named and is refused rather than connected to unverified, unless its
/// endpoint says `secure: false`.
#[test]
fn an_ip_targets_certificate_name_is_checked_or_refused() {
    let l = loaded("proxy:\n  endpoints:\n    /v4: https://10.0.0.7:8443\n");
    let (docs, warnings) = envoy_gateway(&l, &opts()).unwrap();
    let warnings: Vec<&String> = warnings
        .iter()
        .filter(|w| w.contains("certificate"))
        .collect();
    let policy = docs
        .iter()
        .find(|d| d["kind"] == "BackendTLSPolicy")
        .unwrap();
    assert_eq!(policy["spec"]["validation"]["hostname"], "10.0.0.7");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("https://10.0.0.7:8443: Gateway API's BackendTLSPolicy names a certificate by DNS name only"),
        "{}",
        warnings[0]
    );

    let l = loaded("proxy:\n  endpoints:\n    /v6: 'https://[2001:DB8::1]:9443'\n");
    let err = envoy_gateway(&l, &opts()).unwrap_err().to_string();
    assert!(
        err.starts_with("https://[2001:db8::1]:9443: Envoy Gateway cannot check an IPv6 address"),
        "{err}"
    );

    let l = loaded(
        "proxy:\n  endpoints:\n    /v6: {target: 'https://[2001:DB8::1]:9443', secure: false}\n",
    );
    let (docs, _) = envoy_gateway(&l, &opts()).unwrap();
    assert!(!docs.iter().any(|d| d["kind"] == "BackendTLSPolicy"));
}
