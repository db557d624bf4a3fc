//! `istio` run for real on the object-form example: the plugin resource
//! (image, digest, phase, fail closed, the filter's configuration naming
//! Istio's clusters, the VM's variables), `ServiceEntry`s and
//! `DestinationRule`s with TLS per port.

mod common;

use backstage_proxy_testkit::TempDir;
use common::*;

#[test]
fn istio_resources() {
    let dir = TempDir::new("istio");
    let input = write(&dir.0, "app-config.yaml", OBJECT_HTTPS_JWKS_ENV);
    let o = run_cli(
        &[
            "istio",
            "--url",
            "oci://registry.example.com/backstage-proxy-wasm:1.0",
            "--sha256",
            &format!("sha256:{}", DIGEST.to_ascii_uppercase()),
            "--namespace",
            "gw",
            &input,
        ],
        &[("FORWARD_TARGET", "https://forward.example.com")],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&stdout(&o)).unwrap();
    let plugin = &docs[0];
    assert_eq!(plugin["kind"], "WasmPlugin");
    assert_eq!(
        plugin["spec"]["url"],
        "oci://registry.example.com/backstage-proxy-wasm:1.0"
    );
    assert_eq!(plugin["spec"]["sha256"], DIGEST, "hex, lower case");
    assert_eq!(plugin["spec"]["phase"], "AUTHN");
    assert_eq!(plugin["spec"]["failStrategy"], "FAIL_CLOSE");
    let cfg = &plugin["spec"]["pluginConfig"];
    assert_eq!(
        cfg["proxy"]["endpoints"]["/pagerduty"]["cluster"],
        "outbound|443||api.pagerduty.com"
    );
    assert_eq!(
        cfg["gateway"]["backendCluster"],
        "outbound|443||backstage.example.com"
    );
    assert_eq!(
        cfg["backend"]["auth"]["externalAccess"][0]["options"]["cluster"],
        "outbound|443||login.example.com"
    );
    let env: Vec<&str> = plugin["spec"]["vmConfig"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["JENKINS_KEY", "PAGERDUTY_TOKEN"]);
    // the configuration still validates as the filter's
    backstage_proxy_core::config::parse_value(cfg, &|_| Some("x".into())).unwrap();
    let entries: Vec<&serde_json::Value> = docs
        .iter()
        .filter(|d| d["kind"] == "ServiceEntry")
        .collect();
    assert!(entries
        .iter()
        .any(|e| e["spec"]["hosts"][0] == "api.pagerduty.com"
            && e["spec"]["ports"][0]["number"] == 443));
    let rules: Vec<&serde_json::Value> = docs
        .iter()
        .filter(|d| d["kind"] == "DestinationRule")
        .collect();
    let jenkins = rules
        .iter()
        .find(|r| r["spec"]["host"] == "jenkins.internal")
        .unwrap();
    let tls = &jenkins["spec"]["trafficPolicy"]["portLevelSettings"][0];
    assert_eq!(tls["tls"]["mode"], "SIMPLE");
    assert_eq!(tls["tls"]["insecureSkipVerify"], true);
    assert!(jenkins["spec"]["trafficPolicy"].get("tls").is_none());
}
