//! `envoy-gateway --native` and `istio --native`, as an operator runs them:
//! the resources validate against Envoy Gateway 1.8's published CRDs (the
//! release that brought dynamic modules, testkit/crds/envoy-gateway-1.8)
//! and against the ones every other generated resource is checked with;
//! the module the policy attaches is the one the `EnvoyProxy` allows, with
//! the configuration the Wasm policy would carry; bad `--native` values
//! are refused naming the flag; Istio, which has no resource for dynamic
//! modules, refuses `--native`.

use serde_json::{json, Value};

mod common;
use common::{fixture, run_cli, stderr, stdout, validate, validate_18, DIGEST, FIXTURES};

const SO: &str = "/usr/lib/envoy/modules/libbackstage_proxy.so";

fn docs(args: &[&str], f: &str) -> Vec<Value> {
    let mut all = vec!["envoy-gateway", "--hostname", "backstage.example.com"];
    all.extend_from_slice(args);
    all.push(f);
    let o = run_cli(&all, &[("CI_TOKEN", "ci-token-0123456789")], None);
    assert!(o.status.success(), "{all:?}: {}", stderr(&o));
    serde_saphyr::from_multiple(&stdout(&o)).unwrap()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

#[test]
fn the_module_is_allowed_and_attached_with_the_wasm_policys_configuration() {
    for f in FIXTURES {
        let f = fixture(f);
        let wasm = docs(&["--url", "oci://ghcr.io/x/y:1", "--sha256", DIGEST], &f);
        let native = vec!["--native", SO];
        let source = json!({ "type": "Local", "local": { "path": SO } });
        let out = docs(&native, &f);
        // every document, the usual CRDs
        let report = validate(&out);
        assert_eq!(report["violations"], json!([]), "{f} {native:?}: {report}");
        // the two that carry the module, Envoy Gateway 1.8's own
        let carried: Vec<&Value> = out
            .iter()
            .filter(|d| d["kind"] == "EnvoyProxy" || d["kind"] == "EnvoyExtensionPolicy")
            .collect();
        let report = validate_18(&carried);
        assert_eq!(report["violations"], json!([]), "{f} {native:?}: {report}");
        assert_eq!(report["documents"], 2);

        let proxy = kind(&out, "EnvoyProxy");
        let policy = kind(&out, "EnvoyExtensionPolicy");
        assert_eq!((proxy.len(), policy.len()), (1, 1));
        let allowed = &proxy[0]["spec"]["dynamicModules"];
        assert_eq!(allowed.as_array().unwrap().len(), 1);
        assert_eq!(allowed[0]["source"], source);
        let attached = &policy[0]["spec"]["dynamicModule"];
        assert_eq!(attached.as_array().unwrap().len(), 1);
        assert_eq!(attached[0]["name"], allowed[0]["name"]);
        assert!(policy[0]["spec"].get("wasm").is_none());
        // the same configuration, the same routes and backends
        let wasm_policy = kind(&wasm, "EnvoyExtensionPolicy")[0];
        assert_eq!(
            attached[0]["config"],
            wasm_policy["spec"]["wasm"][0]["config"]
        );
        assert_eq!(kind(&out, "HTTPRoute"), kind(&wasm, "HTTPRoute"));
        assert_eq!(kind(&out, "Backend"), kind(&wasm, "Backend"));
    }
}

/// The check is live: a module source Envoy Gateway 1.8 would refuse is
/// reported by its CRD.
#[test]
fn a_source_envoy_gateway_refuses_is_caught() {
    let out = docs(&["--native", SO], &fixture(FIXTURES[0]));
    let mut proxy = kind(&out, "EnvoyProxy")[0].clone();
    proxy["spec"]["dynamicModules"][0]["source"] =
        json!({ "type": "Remote", "remote": { "url": "https://m.example/x.so" } });
    let report = validate_18(&[&proxy]);
    assert_ne!(report["violations"], json!([]), "{report}");
    let mut proxy = kind(&out, "EnvoyProxy")[0].clone();
    proxy["spec"]["dynamicModules"][0]["name"] = json!("Backstage_Proxy");
    assert_ne!(validate_18(&[&proxy])["violations"], json!([]));
}

#[test]
fn bad_native_values_are_refused_naming_the_flag() {
    let f = fixture(FIXTURES[0]);
    for (args, says) in [
        (
            vec!["--native", "build/libbackstage_proxy.so"],
            "must be absolute",
        ),
        // a module Envoy fetches: Envoy 1.39.3 serves without the filter
        // when the fetch fails (native_remote.rs), so never a URL
        (vec!["--native", "https://m.example/x.so"], "fails open"),
        (vec!["--native", "http://127.0.0.1:8000/x.so"], "fails open"),
        (vec!["--native", "HTTPS://m.example/x.so"], "fails open"),
        (vec!["--native", "file:///usr/lib/x.so"], "fails open"),
        (
            vec![
                "--native",
                "https://m.example/x.so",
                "--native-sha256",
                DIGEST,
            ],
            "--native-sha256",
        ),
        (vec!["--native", SO, "--url", "oci://x/y:1"], "--url"),
    ] {
        let mut all = vec!["envoy-gateway"];
        all.extend_from_slice(&args);
        all.push(&f);
        let o = run_cli(&all, &[("CI_TOKEN", "ci-token-0123456789")], None);
        assert!(!o.status.success(), "{args:?} accepted");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{args:?} wrote resources");
    }
}

#[test]
fn istio_refuses_native_and_says_why() {
    let o = run_cli(
        &["istio", "--native", SO, &fixture(FIXTURES[0])],
        &[("CI_TOKEN", "ci-token-0123456789")],
        None,
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Istio has no resource that loads an Envoy dynamic module"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
}
