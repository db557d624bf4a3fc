//! What a platform team needs from `istio` and `envoy-gateway` beyond the
//! routing (docs/deploying.md): the VM's variables reach the gateway's
//! pods from a Secret in every mode, no secret value is ever written, the
//! image is pinned unless asked otherwise, an internal CA verifies the
//! https destinations, every resource carries the tool's labels, and the
//! warnings for loopback destinations and per-replica budgets. Every
//! resource validates against its CRD or Kubernetes' own schema.

mod common;

use std::collections::BTreeSet;

use backstage_proxy_testkit::TempDir;
use common::*;
use serde_json::{json, Value};

const IMAGE: &str = "oci://ghcr.io/example/backstage-proxy-wasm:1.0.0";
/// A value that must never appear in any output.
const SECRET_VALUE: &str = "pd-secret-value-7f3a9c";

/// Header values from the VM's environment, https destinations outside
/// the cluster, a Service in the gateway's namespace and one elsewhere.
pub const VARS_CONFIG: &str = r#"
backend:
  baseUrl: https://backstage.example.com
proxy:
  endpoints:
    /pd:
      target: https://api.pagerduty.com
      headers: { Authorization: "Token token=${PAGERDUTY_TOKEN}" }
    /jenkins:
      target: https://jenkins.tools.svc:8443
      headers: { X-Api-Key: "${JENKINS_KEY}" }
    /local: https://api.envoy-gateway-system.svc
    /plain: { target: 'https://legacy.example.com', secure: false }
"#;

/// Every mode of both commands, with the image pinned.
fn run(dir: &TempDir, mode: &[&str], extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let input = write(&dir.0, "app-config.yaml", VARS_CONFIG);
    let mut args: Vec<&str> = mode.to_vec();
    args.extend(["--url", IMAGE, "--sha256", DIGEST]);
    args.extend(extra);
    args.push(&input);
    run_cli(&args, env, None)
}

fn docs_of(o: &std::process::Output) -> Vec<Value> {
    assert!(o.status.success(), "{}", stderr(o));
    serde_saphyr::from_multiple(&stdout(o)).unwrap()
}

/// The variables the filter's VM is told to read (Istio's `vmConfig.env`
/// from `HOST`, Envoy Gateway's `env.hostKeys`).
fn vm_vars(docs: &[Value]) -> BTreeSet<String> {
    let plugin = &docs[0];
    let names: Vec<Value> = match plugin["kind"].as_str() {
        Some("EnvoyExtensionPolicy") => plugin["spec"]["wasm"][0]["env"]["hostKeys"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        _ => {
            let spec = &plugin["spec"];
            let vm = spec.get("vmConfig").or(spec["wasm"].get("vmConfig"));
            vm.and_then(|v| v["env"].as_array())
                .map(|env| {
                    env.iter()
                        .map(|e| {
                            assert_eq!(e["valueFrom"], "HOST", "{e}");
                            e["name"].clone()
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
    };
    names
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

/// A container's `env`: each variable's Secret (name, key).
fn secret_refs(env: &Value) -> Vec<(String, String, String)> {
    env.as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let r = e["valueFrom"].get("secretKeyRef")?;
            Some((
                e["name"].as_str()?.to_string(),
                r["name"].as_str()?.to_string(),
                r["key"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// Every variable the VM reads is in the pods' environment from the named
/// Secret, key for key, in each mode: Envoy Gateway's `EnvoyProxy`,
/// Istio-with-Gateway-API's `ConfigMap` (which must be a valid patch of a
/// Deployment: checked in the Kustomize tests), and for a classic Istio
/// gateway the warning that names the Deployment (its patch is in the
/// `--kustomize` base). No secret value is written anywhere.
#[test]
fn every_vm_variable_reaches_the_pods_from_the_named_secret() {
    let dir = TempDir::new("kube-vars");
    let env = [
        ("PAGERDUTY_TOKEN", SECRET_VALUE),
        ("JENKINS_KEY", SECRET_VALUE),
    ];
    let expected: BTreeSet<String> = ["JENKINS_KEY", "PAGERDUTY_TOKEN"].map(String::from).into();
    let mut all = Vec::new();
    for mode in MODES {
        for secret in ["backstage-proxy-wasm", "team-a-gateway-values"] {
            let o = run(&dir, mode, &["--secret-name", secret], &env);
            let docs = docs_of(&o);
            assert!(
                !stdout(&o).contains(SECRET_VALUE) && !stderr(&o).contains(SECRET_VALUE),
                "{mode:?}: a secret value was written"
            );
            assert_eq!(vm_vars(&docs), expected, "{mode:?}");
            all.extend(docs.iter().cloned());
            let warning = stderr(&o);
            assert!(
                warning.contains(&format!("from the Secret '{secret}'")),
                "{mode:?}: {warning}"
            );
            let pod_env = if mode[0] == "envoy-gateway" {
                let proxy = docs
                    .iter()
                    .find(|d| d["kind"] == "EnvoyProxy")
                    .expect("an EnvoyProxy");
                assert_eq!(proxy["spec"]["provider"]["type"], "Kubernetes");
                proxy["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"]["env"]
                    .clone()
            } else if mode.contains(&"--gateway-api") {
                let map = docs
                    .iter()
                    .find(|d| d["kind"] == "ConfigMap")
                    .expect("the Gateway's ConfigMap");
                assert_eq!(
                    map["metadata"]["namespace"], "istio-system",
                    "the Gateway's namespace"
                );
                assert!(warning.contains("spec.infrastructure.parametersRef: {group: \"\", kind: ConfigMap, name: backstage-proxy-wasm-gateway}"), "{warning}");
                let overlay: Value =
                    serde_saphyr::from_str(map["data"]["deployment"].as_str().unwrap()).unwrap();
                let containers = &overlay["spec"]["template"]["spec"]["containers"];
                assert_eq!(containers[0]["name"], "istio-proxy");
                containers[0]["env"].clone()
            } else {
                assert!(warning.contains("the Deployment 'istio-ingressgateway' must pass them to its istio-proxy container"), "{warning}");
                continue;
            };
            let refs = secret_refs(&pod_env);
            let names: BTreeSet<String> = refs.iter().map(|(n, _, _)| n.clone()).collect();
            assert_eq!(names, expected, "{mode:?}: the pod's env is the VM's list");
            for (name, s, key) in refs {
                assert_eq!(
                    (s.as_str(), key.as_str()),
                    (secret, name.as_str()),
                    "{mode:?}"
                );
            }
        }
    }
    let report = validate(&all);
    assert_eq!(report["violations"], json!([]), "{report}");
}

/// Without variables nothing asks for a Secret, and Envoy Gateway writes
/// no `EnvoyProxy` unless `--envoy-proxy` asks for the access log.
#[test]
fn without_variables_no_secret_is_asked_for() {
    let dir = TempDir::new("kube-novars");
    let input = write(
        &dir.0,
        "a.yaml",
        "proxy:\n  endpoints:\n    /a: https://api.example.com\n",
    );
    for mode in MODES {
        let mut args = mode.to_vec();
        args.extend(["--url", IMAGE, "--sha256", DIGEST, &input]);
        let o = run_cli(&args, &[], None);
        let docs = docs_of(&o);
        assert!(!stderr(&o).contains("Secret"), "{mode:?}: {}", stderr(&o));
        assert!(
            !docs
                .iter()
                .any(|d| d["kind"] == "ConfigMap" || d["kind"] == "Secret"),
            "{mode:?}"
        );
        let proxy = docs.iter().find(|d| d["kind"] == "EnvoyProxy");
        assert_eq!(proxy.is_some(), mode.contains(&"--envoy-proxy"), "{mode:?}");
        if let Some(p) = proxy {
            assert!(p["spec"].get("provider").is_none(), "{p}");
        }
    }
}

/// Every resource of every output carries the tool's labels, with the
/// tool's version, so `kubectl get -l app.kubernetes.io/managed-by=…`
/// finds all of them and `apply --prune` can remove what a later run no
/// longer writes.
#[test]
fn every_resource_of_every_output_carries_the_labels() {
    let dir = TempDir::new("kube-labels");
    let ca = write(&dir.0, "ca.pem", TEST_CA);
    let mut outputs: Vec<(String, Vec<Value>)> = generated()
        .into_iter()
        .map(|(what, _, docs)| (what, docs))
        .collect();
    for mode in MODES {
        outputs.push((
            format!("{mode:?} vars, CA"),
            docs_of(&run(&dir, mode, &["--upstream-ca", &ca], &[])),
        ));
    }
    let mut kinds = BTreeSet::new();
    for (what, docs) in outputs {
        for d in docs {
            let labels = &d["metadata"]["labels"];
            kinds.insert(d["kind"].as_str().unwrap().to_string());
            for (k, v) in [
                ("app.kubernetes.io/name", "backstage-proxy-wasm"),
                ("app.kubernetes.io/part-of", "backstage-proxy-wasm"),
                ("app.kubernetes.io/managed-by", "backstage-proxy-wasm"),
                ("app.kubernetes.io/version", env!("CARGO_PKG_VERSION")),
            ] {
                assert_eq!(
                    labels[k], v,
                    "{what}: {} {}",
                    d["kind"], d["metadata"]["name"]
                );
            }
        }
    }
    for kind in [
        "WasmPlugin",
        "EnvoyExtensionPolicy",
        "Secret",
        "ConfigMap",
        "EnvoyProxy",
        "ReferenceGrant",
    ] {
        assert!(kinds.contains(kind), "{kind} never checked: {kinds:?}");
    }
}

/// An image by tag alone is refused by both commands unless
/// `--allow-unpinned` says so (then a warning, and no digest written); a
/// digest that is not a SHA-256 one is refused even then.
#[test]
fn an_unpinned_or_malformed_image_is_refused() {
    let dir = TempDir::new("kube-pin");
    let input = write(
        &dir.0,
        "a.yaml",
        "proxy:\n  endpoints:\n    /a: https://api.example.com\n",
    );
    for command in ["istio", "envoy-gateway"] {
        let o = run_cli(&[command, "--url", IMAGE, &input], &[], None);
        assert_eq!(o.status.code(), Some(1), "{command}");
        assert!(stdout(&o).is_empty(), "{command}: nothing written");
        assert!(
            stderr(&o).contains("is not pinned: pass --sha256 DIGEST")
                && stderr(&o).contains("--allow-unpinned"),
            "{}",
            stderr(&o)
        );

        let o = run_cli(
            &[command, "--url", IMAGE, "--allow-unpinned", &input],
            &[],
            None,
        );
        let docs = docs_of(&o);
        assert!(
            stderr(&o).contains("is not pinned (no --sha256)"),
            "{}",
            stderr(&o)
        );
        assert!(
            !serde_json::to_string(&docs[0]).unwrap().contains("sha256"),
            "{}",
            docs[0]
        );

        let short = &DIGEST[1..];
        let not_hex = DIGEST.replace('a', "g");
        let sha512 = format!("sha512:{DIGEST}");
        for bad in ["abc123", short, not_hex.as_str(), sha512.as_str()] {
            let o = run_cli(
                &[
                    command,
                    "--url",
                    IMAGE,
                    "--allow-unpinned",
                    "--sha256",
                    bad,
                    &input,
                ],
                &[],
                None,
            );
            assert_eq!(o.status.code(), Some(1), "{command} {bad}");
            assert!(
                stderr(&o).contains("is not a SHA-256 digest"),
                "{}",
                stderr(&o)
            );
        }
    }
}

/// A self-signed CA certificate's PEM (its contents are never parsed by
/// the tool, only carried).
pub const TEST_CA: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIUQ2ZXRlc3RjYQ==\n-----END CERTIFICATE-----\n";

/// `--upstream-ca`: every verified https destination is checked against
/// the bundle instead of the system's roots, and still by name; the
/// unverified one (`secure: false`) stays so; the bundle is carried where
/// each gateway reads it (Istio: a Secret in the gateway pods' namespace;
/// Envoy Gateway: a ConfigMap in each policy's namespace).
#[test]
fn an_upstream_ca_verifies_every_https_destination() {
    let dir = TempDir::new("kube-ca");
    let ca = write(&dir.0, "ca.pem", TEST_CA);
    let mut all = Vec::new();
    for mode in MODES {
        let docs = docs_of(&run(&dir, mode, &["--upstream-ca", &ca], &[]));
        all.extend(docs.iter().cloned());
        let holders: Vec<&Value> = docs
            .iter()
            .filter(|d| d["metadata"]["name"] == "backstage-proxy-wasm-upstream-ca")
            .collect();
        for h in &holders {
            let pem = h.get("stringData").unwrap_or(&h["data"])["ca.crt"]
                .as_str()
                .unwrap();
            assert_eq!(pem, TEST_CA, "{mode:?}");
        }
        if mode[0] == "envoy-gateway" {
            let policies: Vec<&Value> = docs
                .iter()
                .filter(|d| d["kind"] == "BackendTLSPolicy")
                .collect();
            assert_eq!(
                policies.len(),
                4,
                "{mode:?}: backstage, pagerduty, jenkins, the local Service"
            );
            for p in &policies {
                let v = &p["spec"]["validation"];
                assert!(v.get("wellKnownCACertificates").is_none(), "{v}");
                assert_eq!(
                    v["caCertificateRefs"],
                    json!([{ "group": "", "kind": "ConfigMap", "name": "backstage-proxy-wasm-upstream-ca" }])
                );
                assert!(v["hostname"].is_string(), "still checked by name: {v}");
            }
            let policy_ns: BTreeSet<&str> = policies
                .iter()
                .map(|p| p["metadata"]["namespace"].as_str().unwrap())
                .collect();
            let map_ns: BTreeSet<&str> = holders
                .iter()
                .map(|h| {
                    assert_eq!(h["kind"], "ConfigMap");
                    h["metadata"]["namespace"].as_str().unwrap()
                })
                .collect();
            assert_eq!(policy_ns, map_ns, "a ConfigMap beside every policy");
            assert_eq!(
                map_ns.len(),
                2,
                "the Gateway's namespace and the Service's 'tools'"
            );
        } else {
            assert_eq!(holders.len(), 1);
            assert_eq!(holders[0]["kind"], "Secret");
            assert_eq!(holders[0]["metadata"]["namespace"], "istio-system");
            let mut verified = 0;
            for rule in docs.iter().filter(|d| d["kind"] == "DestinationRule") {
                for s in rule["spec"]["trafficPolicy"]["portLevelSettings"]
                    .as_array()
                    .unwrap()
                {
                    let tls = &s["tls"];
                    if tls["insecureSkipVerify"] == true {
                        assert!(tls.get("credentialName").is_none(), "{tls}");
                    } else {
                        verified += 1;
                        assert_eq!(
                            tls["credentialName"], "backstage-proxy-wasm-upstream-ca",
                            "{tls}"
                        );
                        assert_eq!(
                            tls["subjectAltNames"][0], rule["spec"]["host"],
                            "still checked by name"
                        );
                    }
                }
            }
            assert_eq!(verified, 4, "{mode:?}");
        }
    }
    let report = validate(&all);
    assert_eq!(report["violations"], json!([]), "{report}");
    // Without it: the system's roots, no bundle anywhere.
    let docs = docs_of(&run(&dir, MODES[4], &[], &[]));
    assert!(docs
        .iter()
        .filter(|d| d["kind"] == "BackendTLSPolicy")
        .all(|p| p["spec"]["validation"]["wellKnownCACertificates"] == "System"));
    assert!(!docs
        .iter()
        .any(|d| d["metadata"]["name"] == "backstage-proxy-wasm-upstream-ca"));
    // A file that is missing or holds no certificate: an error naming it.
    let not_pem = write(&dir.0, "not.pem", "hello\n");
    let missing = dir.0.join("missing.pem").display().to_string();
    for (file, why) in [(&not_pem, "no PEM certificate"), (&missing, "No such file")] {
        for mode in [MODES[0], MODES[4]] {
            let o = run(&dir, mode, &["--upstream-ca", file], &[]);
            assert_eq!(o.status.code(), Some(1));
            assert!(
                stderr(&o).contains(&format!("{file}: ")) && stderr(&o).contains(why),
                "{}",
                stderr(&o)
            );
        }
    }
}

/// A loopback destination (localhost, 127.0.0.0/8, ::1, a name under
/// `localhost`) is the gateway pod itself inside a cluster: each is
/// warned about by its key, in both commands; other names are not.
#[test]
fn loopback_destinations_are_warned_about_by_key() {
    let dir = TempDir::new("kube-loopback");
    let input = write(&dir.0, "a.yaml", "backend:\n  baseUrl: http://localhost:7007\n  auth:\n    externalAccess:\n      - type: jwks\n        options: { url: 'http://127.0.0.1:8080/jwks.json', issuer: https://login.example.com }\nproxy:\n  endpoints:\n    /v4: http://127.0.0.2:9000\n    /v6: 'http://[::1]:9001'\n    /sub: http://api.localhost:9002\n    /fine: http://localhost.example.com\n    /svc: http://api.tools.svc\ngateway:\n  rateLimitService: { url: 'http://LOCALHOST:8081' }\n  rateLimits:\n    /v4: { total: { requests: 1, seconds: 1 } }\n");
    for (command, resource) in [("istio", "ServiceEntry"), ("envoy-gateway", "Backend")] {
        let o = run_cli(
            &[command, "--url", IMAGE, "--sha256", DIGEST, &input],
            &[],
            None,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let warned: Vec<String> = stderr(&o)
            .lines()
            .filter(|l| l.contains("which inside the cluster is the gateway pod itself"))
            .map(|l| {
                l.trim_start_matches("warning: ")
                    .split(':')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            warned,
            [
                "proxy.endpoints./v4.target",
                "proxy.endpoints./v6.target",
                "proxy.endpoints./sub.target",
                "backend.baseUrl",
                "backend.auth.externalAccess (jwks http",
                "gateway.rateLimitService.url"
            ],
            "{command}: {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains(&format!("is written as a {resource} for 'localhost'")),
            "{}",
            stderr(&o)
        );
    }
}

/// Budgets the filter counts itself are per gateway replica: both
/// commands say so, name the endpoints and point to
/// `gateway.rateLimitService`; not when the service counts them, nor for
/// `{}` entries (no budget of their own).
#[test]
fn budgets_counted_by_the_filter_are_warned_to_be_per_replica() {
    let dir = TempDir::new("kube-replicas");
    let base = "proxy:\n  endpoints:\n    /a: https://a.example.com\n    /b: https://b.example.com\n    /c: https://c.example.com\ngateway:\n";
    let cases = [
        ("  rateLimits:\n    /a: { total: { requests: 5, seconds: 60 } }\n    /b: { perPrincipal: { requests: 1, seconds: 1 } }\n    /c: {}\n", Some("gateway.rateLimits (/a, /b): the filter counts these budgets in each gateway pod")),
        ("  rateLimits:\n    /c: {}\n", None),
        ("  rateLimitService: { url: 'http://ratelimit.rl.svc:8081' }\n  rateLimits:\n    /a: { total: { requests: 5, seconds: 60 } }\n", None),
    ];
    for (n, (yaml, expect)) in cases.iter().enumerate() {
        let input = write(&dir.0, &format!("{n}.yaml"), &format!("{base}{yaml}"));
        for command in ["istio", "envoy-gateway"] {
            let o = run_cli(
                &[command, "--url", IMAGE, "--sha256", DIGEST, &input],
                &[],
                None,
            );
            assert!(o.status.success(), "{}", stderr(&o));
            let warned = stderr(&o)
                .lines()
                .find(|l| l.contains("per replica") || l.contains("in each gateway pod"))
                .map(str::to_string);
            match expect {
                Some(e) => {
                    let w = warned.unwrap_or_default();
                    assert!(
                        w.contains(e)
                            && w.contains("gateway.rateLimitService")
                            && w.contains("N times"),
                        "{command} {n}: {w}"
                    );
                }
                None => assert_eq!(warned, None, "{command} {n}"),
            }
        }
    }
}

/// `timeout` and `followRedirects` have no route field on Istio or the
/// Gateway API: each endpoint that sets one is named, none is dropped
/// silently; `proxyTimeout` is carried and not warned about.
#[test]
fn options_no_route_carries_are_named_per_endpoint() {
    let dir = TempDir::new("kube-uncarried");
    let input = write(
        &dir.0,
        "app-config.yaml",
        "proxy:\n  endpoints:\n    /t: { target: 'https://t.example.com', timeout: 5000 }\n    /r: { target: 'https://r.example.com', followRedirects: true }\n    /p: { target: 'https://p.example.com', proxyTimeout: 3000, followRedirects: false }\n",
    );
    for command in ["istio", "envoy-gateway"] {
        let o = run_cli(
            &[command, "--url", IMAGE, "--sha256", DIGEST, &input],
            &[],
            None,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let err = stderr(&o);
        let about = |key: &str| {
            err.lines()
                .filter(|l| l.contains(&format!("proxy.endpoints.{key}:")))
                .count()
        };
        assert!(
            err.contains("proxy.endpoints./t: timeout"),
            "{command}: {err}"
        );
        assert!(
            err.contains("proxy.endpoints./r: followRedirects"),
            "{command}: {err}"
        );
        assert_eq!(about("/p"), 0, "{command}: {err}");
    }
}
