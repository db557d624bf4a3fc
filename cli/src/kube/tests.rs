use super::*;
use crate::test_support::{istio_docs, kube_options as opts, loaded};

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
