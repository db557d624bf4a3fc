//! Every resource the tool writes for Istio and Envoy Gateway validates
//! against its project's published CRD (testkit/crds, unchanged), as the
//! API server would with strict field validation: the OpenAPI v3 schema
//! with unknown fields as errors (jsonschema) and the
//! `x-kubernetes-validations` CEL rules (cel-python), by
//! `testkit/crd_validate.py`. Planted errors of each class must be caught.

use backstage_proxy_testkit::repo_root;
use serde_json::{json, Value};

mod common;
use common::{generated, validate};

#[test]
fn every_generated_resource_validates_against_its_published_crd() {
    let mut total = 0;
    let mut checked = 0;
    let mut kinds = std::collections::BTreeSet::new();
    for (what, _, docs) in generated() {
        let report = validate(&docs);
        assert_eq!(
            report["violations"],
            json!([]),
            "{what}: {}",
            serde_json::to_string_pretty(&report["violations"]).unwrap()
        );
        total += report["documents"].as_u64().unwrap();
        checked += report["rules_checked"].as_u64().unwrap();
        for k in report["kinds"].as_object().unwrap().keys() {
            kinds.insert(k.clone());
        }
        // Only Kubernetes' own CEL library is out of reach.
        for (rule, why) in report["rules_skipped"].as_object().unwrap() {
            assert!(
                why.as_str().unwrap().contains("cannot evaluate") && rule.contains("isURL"),
                "{what}: rule skipped: {rule}: {why}"
            );
        }
    }
    eprintln!("{total} documents, {checked} CEL rule evaluations, kinds: {kinds:?}");
    for kind in [
        "WasmPlugin",
        "TrafficExtension",
        "VirtualService",
        "ServiceEntry",
        "DestinationRule",
        "HTTPRoute",
        "EnvoyExtensionPolicy",
        "Backend",
        "BackendTLSPolicy",
        "EnvoyFilter",
        "BackendTrafficPolicy",
        "EnvoyProxy",
    ] {
        assert!(
            kinds.iter().any(|k| k.starts_with(&format!("{kind} "))),
            "{kind} never generated"
        );
    }
}

/// One of each class of error, planted in a valid resource: the validator
/// must report it at the right place.
#[test]
fn planted_errors_are_caught() {
    let all: Vec<Value> = generated().into_iter().flat_map(|(_, _, d)| d).collect();
    let first = |kind: &str| all.iter().find(|d| d["kind"] == kind).unwrap().clone();
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();

    let mut d = first("WasmPlugin");
    d["spec"]["phaze"] = json!("AUTHN");
    cases.push(("unknown field", d, "phaze"));

    let mut d = first("WasmPlugin");
    d["spec"]["sha256"] = json!("not-a-digest");
    cases.push(("pattern", d, "sha256"));

    let mut d = first("DestinationRule");
    d["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]["mode"] = json!("TLS");
    cases.push(("enum", d, "mode"));

    let mut d = first("HTTPRoute");
    d["spec"]["rules"][0]["matches"][0]["headers"][0]["type"] = json!("Exactly");
    cases.push(("enum in a list", d, "type"));

    let mut d = first("HTTPRoute");
    let rule = d["spec"]["rules"][0].clone();
    d["spec"]["rules"] = Value::Array(vec![rule; 17]);
    cases.push(("maxItems", d, "rules"));

    let mut d = first("EnvoyExtensionPolicy");
    d["spec"]["targetRef"] = d["spec"]["targetRefs"][0].clone();
    cases.push((
        "CEL: targetRef and targetRefs",
        d,
        "either targetRef or targetRefs",
    ));

    let mut d = first("EnvoyExtensionPolicy");
    d["spec"]["wasm"][0]["code"]["type"] = json!("HTTP");
    cases.push((
        "CEL: code type without its field",
        d,
        "http field needs to be set",
    ));

    let mut d = first("Backend");
    d["spec"]["tls"] = json!({ "insecureSkipVerify": true, "wellKnownCACertificates": "System" });
    cases.push(("CEL: skip-verify with a CA", d, "InsecureSkipVerify"));

    let mut d = first("TrafficExtension");
    d["spec"]["selector"] = json!({ "matchLabels": { "istio": "ingressgateway" } });
    cases.push((
        "CEL: selector and targetRefs",
        d,
        "only one of targetRefs or selector",
    ));

    let mut d = first("ServiceEntry");
    d["spec"]["ports"][0]["number"] = json!("443");
    cases.push(("type", d, "number"));

    let mut d = all
        .iter()
        .find(|d| {
            d["kind"] == "DestinationRule"
                && d["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]
                    .get("subjectAltNames")
                    .is_some()
        })
        .unwrap()
        .clone();
    d["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]["subjectAltNames"] =
        json!("api.example.com");
    cases.push(("type of the names checked", d, "subjectAltNames"));

    let mut d = first("BackendTLSPolicy");
    d["spec"]["validation"]["hostname"] = json!("::1");
    cases.push(("an IPv6 address as hostname", d, "hostname"));

    // Kubernetes' own kinds, by Kubernetes' schemas.
    let env = json!([{ "name": "K", "valueFrom": { "secretKeyRef": { "nam": "s", "key": "K" } } }]);
    let d = json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "gw" },
        "spec": { "selector": {}, "template": { "spec": { "containers": [{ "name": "istio-proxy", "env": env }] } } } });
    cases.push(("core kind: unknown field", d, "'nam' was unexpected"));
    let d = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c" }, "data": { "ca.crt": 1 } });
    cases.push(("core kind: type", d, "ca.crt"));

    for (class, doc, expect) in cases {
        let report = validate(std::slice::from_ref(&doc));
        let text = report["violations"].to_string();
        assert!(text.contains(expect), "{class}: not caught: {text}");
    }
}

/// TLS to addresses: the certificate names written for IPv4 and IPv6
/// targets (Istio's `subjectAltNames`, Envoy Gateway's
/// `BackendTLSPolicy` hostname for IPv4; IPv6 is refused there unless
/// `secure: false`) validate in every mode.
#[test]
fn tls_to_ip_targets_validates_in_every_mode() {
    let dir = backstage_proxy_testkit::TempDir::new("crds-ip");
    let both = "proxy:\n  endpoints:\n    /v4: https://10.0.0.7:8443\n    /v6off: { target: 'https://[2001:db8::2]:9443', secure: false }\n";
    let v6 = "proxy:\n  endpoints:\n    /v6: 'https://[2001:DB8:0::1]:9443'\n";
    for (name, yaml, modes) in [
        ("both.yaml", both, &common::MODES[..]),
        ("v6.yaml", v6, &common::MODES[..4]),
    ] {
        let f = common::write(&dir.0, name, yaml);
        for mode in modes {
            let mut args: Vec<&str> = mode.to_vec();
            args.extend([
                "--url",
                "oci://ghcr.io/example/backstage-proxy-wasm:1.0.0",
                "--sha256",
                common::DIGEST,
                &f,
            ]);
            let o = common::run_cli(&args, &[], None);
            assert!(
                o.status.success(),
                "{mode:?} {name}: {}",
                common::stderr(&o)
            );
            let docs: Vec<Value> = serde_saphyr::from_multiple(&common::stdout(&o)).unwrap();
            let report = validate(&docs);
            assert_eq!(report["violations"], json!([]), "{mode:?} {name}: {report}");
            assert!(
                docs.iter()
                    .any(|d| d["kind"] == "DestinationRule" || d["kind"] == "BackendTLSPolicy"),
                "{mode:?} {name}: TLS written"
            );
        }
    }
}

/// The README's Istio access-log snippet: its `Telemetry` validates against
/// Istio's CRD, and its provider's fields are the ones `render` logs.
#[test]
fn the_readmes_istio_access_log_snippet_is_valid() {
    let readme = std::fs::read_to_string(repo_root().join("docs/operations.md")).unwrap();
    let block = readme
        .split("```yaml\n# istioctl install / the istiod Helm values\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the README's Istio access-log snippet");
    let docs: Vec<Value> = serde_saphyr::from_multiple(block).unwrap();
    let resources: Vec<Value> = docs
        .iter()
        .filter(|d| d.get("kind").is_some())
        .cloned()
        .collect();
    assert_eq!(resources.len(), 1);
    let report = validate(&resources);
    assert_eq!(report["violations"], json!([]), "{report}");
    let labels = &docs[0]["meshConfig"]["extensionProviders"][0]["envoyFileAccessLog"]["logFormat"]
        ["labels"];
    let fields = backstage_proxy_wasm_cli::access_log::fields();
    for (k, v) in labels.as_object().unwrap() {
        assert_eq!(&fields[k], v, "{k}");
    }
}
