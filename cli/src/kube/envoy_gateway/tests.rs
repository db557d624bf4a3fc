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
