//! `--kustomize DIR` built for real by Kustomize (`kubectl kustomize`, the
//! Kustomize built into kubectl) and everything it outputs validated: the
//! CRDs' kinds against the published CRDs, Kubernetes' own (Secret,
//! ConfigMap, Deployment) against Kubernetes' published schemas
//! (`testkit/crd_validate.py`). The Istio gateway's Deployment patches are
//! applied by Kustomize to a Deployment shaped as Istio's, and the env
//! file's values go through Kustomize unchanged.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use backstage_proxy_testkit::TempDir;
use common::*;
use serde_json::{json, Value};

const IMAGE: &str = "oci://ghcr.io/example/backstage-proxy-wasm:1.0.0";
const SECRET_VALUE: &str = "pd-secret-value-7f3a9c";
const VARS_CONFIG: &str = "backend:\n  baseUrl: https://backstage.example.com\nproxy:\n  endpoints:\n    /pd:\n      target: https://api.pagerduty.com\n      headers: { Authorization: \"Token token=${PAGERDUTY_TOKEN}\" }\n    /jenkins:\n      target: https://jenkins.tools.svc:8443\n      headers: { X-Api-Key: \"${JENKINS_KEY}\" }\n";
const TEST_CA: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIUQ2ZXRlc3RjYQ==\n-----END CERTIFICATE-----\n";

/// kubectl, whose `kustomize` is Kustomize itself (kubectl 1.32 carries
/// Kustomize 5.5; the machine image ships it).
fn kubectl() -> PathBuf {
    ["/usr/bin/kubectl", "/usr/local/bin/kubectl"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("kubectl is not installed: its built-in Kustomize builds the base (it comes with the machine image; docs/deploying.md#a-kustomize-base)"))
}

/// `kubectl kustomize DIR`: the resources Kustomize outputs.
fn kustomize_build(dir: &Path) -> Vec<Value> {
    let o = Command::new(kubectl())
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "kustomize build {}: {}",
        dir.display(),
        stderr(&o)
    );
    serde_saphyr::from_multiple(&stdout(&o)).unwrap()
}

/// The command with `--kustomize DIR`.
fn write_base(
    dir: &Path,
    mode: &[&str],
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let input = write(dir.parent().unwrap(), "app-config.yaml", VARS_CONFIG);
    let base = dir.display().to_string();
    let mut args: Vec<&str> = mode.to_vec();
    args.extend(["--url", IMAGE, "--sha256", DIGEST, "--kustomize", &base]);
    args.extend(extra);
    args.push(&input);
    run_cli(&args, env, None)
}

fn decode_base64(text: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut bits, mut n, mut out) = (0u32, 0, Vec::new());
    for c in text.bytes().filter(|&c| c != b'=') {
        bits = (bits << 6) | A.iter().position(|&a| a == c).unwrap() as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    String::from_utf8(out).unwrap()
}

/// The values of the Secret Kustomize generated.
fn secret_values(docs: &[Value], name: &str, ns: &str) -> Vec<(String, String)> {
    let s = docs
        .iter()
        .find(|d| {
            d["kind"] == "Secret"
                && d["metadata"]["name"] == name
                && d["metadata"]["namespace"] == ns
        })
        .unwrap_or_else(|| panic!("no Secret {ns}/{name}"));
    s["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), decode_base64(v.as_str().unwrap())))
        .collect()
}

/// Every mode: the base builds, every resource validates and carries the
/// labels, the resources are the ones the command writes to standard
/// output, the Secret (in the gateway pods' namespace, named as the pods
/// name it) has one empty key per variable, and no value the environment
/// holds is written anywhere.
#[test]
fn every_base_builds_and_validates() {
    let tmp = TempDir::new("kustomize-all");
    let ca = write(&tmp.0, "ca.pem", TEST_CA);
    let env = [
        ("PAGERDUTY_TOKEN", SECRET_VALUE),
        ("JENKINS_KEY", SECRET_VALUE),
    ];
    let mut all = Vec::new();
    for (n, mode) in MODES.iter().enumerate() {
        let dir = tmp.0.join(format!("base-{n}"));
        let o = write_base(&dir, mode, &["--upstream-ca", &ca], &env);
        assert!(o.status.success(), "{mode:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{mode:?}: the base goes to DIR only");
        let built = kustomize_build(&dir);
        // The same resources as on standard output, plus the Secret.
        let mut plain_args: Vec<&str> = mode.to_vec();
        let input = tmp.0.join("app-config.yaml").display().to_string();
        plain_args.extend([
            "--url",
            IMAGE,
            "--sha256",
            DIGEST,
            "--upstream-ca",
            &ca,
            &input,
        ]);
        let plain: Vec<Value> =
            serde_saphyr::from_multiple(&stdout(&run_cli(&plain_args, &env, None))).unwrap();
        let key = |d: &Value| {
            format!(
                "{} {}/{}",
                d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]
            )
        };
        let built_keys: BTreeSet<String> = built.iter().map(key).collect();
        let mut expected: BTreeSet<String> = plain.iter().map(key).collect();
        let pod_ns = if mode[0] == "envoy-gateway" {
            "envoy-gateway-system"
        } else {
            "istio-system"
        };
        expected.insert(format!("\"Secret\" \"{pod_ns}\"/\"backstage-proxy-wasm\""));
        assert_eq!(built_keys, expected, "{mode:?}");
        assert_eq!(
            secret_values(&built, "backstage-proxy-wasm", pod_ns),
            [
                ("JENKINS_KEY".to_string(), String::new()),
                ("PAGERDUTY_TOKEN".to_string(), String::new())
            ],
            "{mode:?}: keys named, values left to the operator"
        );
        for d in &built {
            assert_eq!(
                d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
                "backstage-proxy-wasm",
                "{}",
                key(d)
            );
        }
        let mut files = Vec::new();
        files_below(&dir, &|_| true, &mut files);
        assert!(files.len() >= 4, "{files:?}");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            assert!(
                !text.contains(SECRET_VALUE),
                "{mode:?}: {} holds a value from the environment",
                f.display()
            );
        }
        let env_file = dir.join("backstage-proxy-wasm.env");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode_bits = std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode_bits, 0o600, "the env file is its owner's only");
        }
        let ignored = std::fs::read_to_string(dir.join(".gitignore")).unwrap();
        assert!(
            ignored.lines().any(|l| l == "backstage-proxy-wasm.env"),
            "{ignored}"
        );
        assert!(
            stderr(&o).contains("fill in JENKINS_KEY, PAGERDUTY_TOKEN"),
            "{}",
            stderr(&o)
        );
        all.extend(built);
    }
    let report = validate(&all);
    assert_eq!(report["violations"], json!([]), "{report}");
    let kinds = report["kinds"].as_object().unwrap();
    for k in [
        "Secret v1",
        "ConfigMap v1",
        "EnvoyProxy gateway.envoyproxy.io/v1alpha1",
    ] {
        assert!(kinds.contains_key(k), "{k} never validated: {kinds:?}");
    }
}

/// An Istio gateway's Deployment as Istio's gateway chart writes it: the
/// `istio-proxy` container (injected, `image: auto`) with env of its own.
fn istio_gateway_deployment(name: &str, ns: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "namespace": ns },
        "spec": {
            "selector": { "matchLabels": { "istio": "ingressgateway" } },
            "template": {
                "metadata": { "labels": { "istio": "ingressgateway" }, "annotations": { "inject.istio.io/templates": "gateway" } },
                "spec": { "containers": [{
                    "name": "istio-proxy",
                    "image": "auto",
                    "env": [{ "name": "ISTIO_META_UNPRIVILEGED_POD", "value": "true" }]
                }] }
            }
        }
    })
}

/// The gateway's Deployment after Kustomize applied the patch: its
/// `istio-proxy` container keeps its own env and gains each variable from
/// the Secret; the result validates as a Deployment.
fn check_patched(overlay: &Path, mode: &[&str]) {
    let built = kustomize_build(overlay);
    let dep = built
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("the Deployment");
    let env = &dep["spec"]["template"]["spec"]["containers"][0]["env"];
    let names: Vec<&str> = env
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{mode:?}: {env}");
    assert!(
        names.contains(&"ISTIO_META_UNPRIVILEGED_POD"),
        "{mode:?}: its own env kept"
    );
    for v in ["JENKINS_KEY", "PAGERDUTY_TOKEN"] {
        let e = env
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == v)
            .unwrap();
        assert_eq!(
            e["valueFrom"],
            json!({ "secretKeyRef": { "name": "backstage-proxy-wasm", "key": v } }),
            "{mode:?}"
        );
    }
    let report = validate(&built);
    assert_eq!(report["violations"], json!([]), "{mode:?}: {report}");
}

/// A classic gateway's patch (the component `gateway-deployment`, for the
/// kustomization that holds the gateway's Deployment), and the Gateway API
/// `ConfigMap`'s `deployment`, which Istio merges into the Deployment it
/// runs for the Gateway (`<gateway>-istio`) as a strategic-merge patch:
/// both applied by Kustomize to the gateway's Deployment.
#[test]
fn the_istio_gateway_deployment_patches_apply() {
    let tmp = TempDir::new("kustomize-istio");
    // Classic: an overlay over the base, the gateway's Deployment and the patch.
    let base = tmp.0.join("base");
    let o = write_base(&base, MODES[0], &[], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains("kubectl -n istio-system patch deployment istio-ingressgateway --patch-file"),
        "{}",
        stderr(&o)
    );
    let overlay = tmp.0.join("gateway");
    std::fs::create_dir_all(&overlay).unwrap();
    let dep = istio_gateway_deployment("istio-ingressgateway", "istio-system");
    write(
        &overlay,
        "deployment.yaml",
        &serde_json::to_string(&dep).unwrap(),
    );
    write(
        &overlay,
        "kustomization.yaml",
        "resources: [../base, deployment.yaml]\ncomponents: [../base/gateway-deployment]\n",
    );
    check_patched(&overlay, MODES[0]);
    // --gateway-deployment names another Deployment.
    let named = tmp.0.join("named");
    assert!(
        write_base(&named, MODES[0], &["--gateway-deployment", "edge"], &[])
            .status
            .success()
    );
    let patch: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(named.join("gateway-deployment/patch.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(patch["metadata"]["name"], "edge");

    // Gateway API: the ConfigMap's overlay, as Istio applies it.
    let base = tmp.0.join("base-gwapi");
    assert!(write_base(&base, MODES[2], &[], &[]).status.success());
    assert!(
        !base.join("gateway-deployment").exists(),
        "Istio runs that Deployment itself"
    );
    let built = kustomize_build(&base);
    let map = built.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let mut overlay_patch: Value =
        serde_saphyr::from_str(map["data"]["deployment"].as_str().unwrap()).unwrap();
    overlay_patch["apiVersion"] = json!("apps/v1");
    overlay_patch["kind"] = json!("Deployment");
    overlay_patch["metadata"] =
        json!({ "name": "backstage-gateway-istio", "namespace": "istio-system" });
    let dir = tmp.0.join("gwapi");
    std::fs::create_dir_all(&dir).unwrap();
    write(
        &dir,
        "deployment.yaml",
        &serde_json::to_string(&istio_gateway_deployment(
            "backstage-gateway-istio",
            "istio-system",
        ))
        .unwrap(),
    );
    write(
        &dir,
        "patch.yaml",
        &serde_json::to_string(&overlay_patch).unwrap(),
    );
    write(
        &dir,
        "kustomization.yaml",
        "resources: [deployment.yaml]\npatches:\n  - path: patch.yaml\n",
    );
    check_patched(&dir, MODES[2]);
}

/// The env file is the operator's: a second run keeps the values filled
/// in and adds only the keys a new variable needs; values are written
/// only with `--secret-values-from-env`, then exactly as the environment
/// has them (Kustomize's Secret holds the same bytes), and an unset
/// variable or one Kustomize's format cannot hold is an error naming it.
#[test]
fn the_env_file_is_kept_and_holds_values_only_on_request() {
    let tmp = TempDir::new("kustomize-env");
    let dir = tmp.0.join("base");
    let mode = MODES[4];
    assert!(write_base(&dir, mode, &[], &[]).status.success());
    let env_file = dir.join("backstage-proxy-wasm.env");
    let filled = std::fs::read_to_string(&env_file)
        .unwrap()
        .replace("PAGERDUTY_TOKEN=", "PAGERDUTY_TOKEN=filled-by-ops");
    std::fs::write(&env_file, &filled).unwrap();
    // A new variable: the filled value stays, the new key is added empty.
    let input = write(&tmp.0, "more.yaml", &format!("{VARS_CONFIG}    /new:\n      target: https://new.example.com\n      headers: {{ X-New: \"${{NEW_KEY}}\" }}\n"));
    let base = dir.display().to_string();
    let o = run_cli(
        &[
            "envoy-gateway",
            "--url",
            IMAGE,
            "--sha256",
            DIGEST,
            "--kustomize",
            &base,
            &input,
        ],
        &[],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("fill in JENKINS_KEY, NEW_KEY ("),
        "{}",
        stderr(&o)
    );
    let values = secret_values(
        &kustomize_build(&dir),
        "backstage-proxy-wasm",
        "envoy-gateway-system",
    );
    assert_eq!(
        values,
        [
            ("JENKINS_KEY", ""),
            ("NEW_KEY", ""),
            ("PAGERDUTY_TOKEN", "filled-by-ops")
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );

    // Values from the environment, on request, through Kustomize unchanged.
    let tricky = "Token token=a#b \"c\" 'd' =e ";
    let env = [("PAGERDUTY_TOKEN", tricky), ("JENKINS_KEY", SECRET_VALUE)];
    let o = write_base(&dir, mode, &["--secret-values-from-env"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains(SECRET_VALUE) && !stderr(&o).contains("fill in"),
        "{}",
        stderr(&o)
    );
    let values = secret_values(
        &kustomize_build(&dir),
        "backstage-proxy-wasm",
        "envoy-gateway-system",
    );
    assert_eq!(
        values,
        [("JENKINS_KEY", SECRET_VALUE), ("PAGERDUTY_TOKEN", tricky)]
            .map(|(k, v)| (k.to_string(), v.to_string()))
    );

    // (A value with a line break is refused: `kube::kustomize`'s unit tests.)
    let o = write_base(
        &tmp.0.join("refused"),
        mode,
        &["--secret-values-from-env"],
        &[("PAGERDUTY_TOKEN", "x")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--secret-values-from-env: JENKINS_KEY is not set in the environment"),
        "{}",
        stderr(&o)
    );
    // Values only with a base to hold them; a base and --output exclude each other.
    let input = tmp.0.join("app-config.yaml").display().to_string();
    for args in [
        &[
            "envoy-gateway",
            "--url",
            IMAGE,
            "--sha256",
            DIGEST,
            "--secret-values-from-env",
            &input,
        ][..],
        &[
            "envoy-gateway",
            "--url",
            IMAGE,
            "--sha256",
            DIGEST,
            "--kustomize",
            &base,
            "-o",
            "x.yaml",
            &input,
        ],
    ] {
        let o = run_cli(args, &[], None);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}
