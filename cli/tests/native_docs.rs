//! The Kubernetes and Envoy Gateway examples of
//! docs/native.md#getting-the-module-into-envoy, read from the page as a
//! reader copies them: each Deployment valid for Kubernetes (its published
//! schemas, strictly), the EnvoyProxy for Envoy Gateway 1.8's CRD, and all
//! of them agreeing with each other and with what `envoy-gateway --native`
//! writes: the module's path is the mount path of the image volume, the
//! search path Envoy is given is that directory. Planted mistakes must be
//! caught, so the validation is live.

mod common;

use backstage_proxy_testkit::docs;
use common::{fixture, run_cli, stderr, stdout, validate, validate_18, FIXTURES};
use serde_json::{json, Value};

const MODULES: &str = "/usr/lib/envoy/modules";
const IMAGE: &str = "registry.example.com/backstage-proxy-wasm-native:1.0";

/// Every document of the section's `yaml` blocks.
fn examples() -> Vec<Value> {
    let section = docs::section("docs/native.md", "## Getting the module into Envoy");
    docs::blocks(&section, "yaml")
        .iter()
        .flat_map(|b| serde_saphyr::from_multiple::<Value>(b).unwrap())
        .collect()
}

fn of_kind(all: &[Value], kind: &str) -> Vec<Value> {
    all.iter().filter(|d| d["kind"] == kind).cloned().collect()
}

/// The `modules` volume of a pod spec and where `container` mounts it.
fn modules_volume<'a>(pod: &'a Value, container: &'a Value) -> (&'a Value, &'a str) {
    let named = |list: &'a Value, what: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "modules")
            .unwrap_or_else(|| panic!("{what}"))
    };
    let volume = named(&pod["volumes"], "a volume named modules");
    let mount = named(&container["volumeMounts"], "the modules volume mounted");
    (volume, mount["mountPath"].as_str().unwrap())
}

#[test]
fn the_deployments_are_valid_kubernetes_and_mount_the_module_where_envoy_looks() {
    let all = examples();
    let deployments = of_kind(&all, "Deployment");
    assert_eq!(
        deployments.len(),
        2,
        "the image volume and the init container"
    );
    let report = validate(&deployments);
    assert_eq!(report["violations"], json!([]), "{report}");
    assert_eq!(report["documents"], 2);

    let mut sources = Vec::new();
    for d in &deployments {
        let pod = &d["spec"]["template"]["spec"];
        let envoy = &pod["containers"][0];
        assert_eq!(envoy["name"], "envoy");
        let (volume, mount_path) = modules_volume(pod, envoy);
        assert_eq!(mount_path, MODULES);
        let env = envoy["env"].as_array().unwrap();
        assert!(
            env.contains(&json!({ "name": "ENVOY_DYNAMIC_MODULES_SEARCH_PATH", "value": MODULES })),
            "{env:?}"
        );
        if volume.get("image").is_some() {
            assert_eq!(volume["image"]["reference"], IMAGE);
            sources.push("image");
        } else {
            // the init container copies the .so into the emptyDir
            assert_eq!(volume["emptyDir"], json!({}));
            let init = &pod["initContainers"][0];
            let (_, init_mount) = modules_volume(pod, init);
            assert_eq!(
                init["command"],
                json!(["cp", "/libbackstage_proxy.so", format!("{init_mount}/")])
            );
            sources.push("init");
        }
    }
    assert_eq!(sources, ["image", "init"]);

    // planted: a misspelt field of the image volume
    let mut bad = deployments[0].clone();
    let v = bad["spec"]["template"]["spec"]["volumes"][0]["image"]
        .as_object_mut()
        .unwrap();
    let reference = v.remove("reference").unwrap();
    v.insert("references".into(), reference);
    let report = validate(&[bad]);
    assert!(
        report["violations"].to_string().contains("references"),
        "{report}"
    );
}

#[test]
fn the_envoyproxy_is_valid_for_envoy_gateway_and_is_the_one_the_tool_writes_plus_the_volume() {
    let all = examples();
    let proxies = of_kind(&all, "EnvoyProxy");
    assert_eq!(proxies.len(), 1);
    let proxy = &proxies[0];
    let report = validate_18(&proxies);
    assert_eq!(report["violations"], json!([]), "{report}");
    assert_eq!(report["documents"], 1);

    // the tool's EnvoyProxy for the path in the image volume
    let path = format!("{MODULES}/libbackstage_proxy.so");
    let o = run_cli(
        &["envoy-gateway", "--native", &path, &fixture(FIXTURES[0])],
        &[("CI_TOKEN", "ci-token-0123456789")],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let written: Vec<Value> = serde_saphyr::from_multiple(&stdout(&o)).unwrap();
    let tools = &of_kind(&written, "EnvoyProxy")[0];
    assert_eq!(proxy["metadata"]["name"], tools["metadata"]["name"]);
    assert_eq!(
        proxy["metadata"]["namespace"],
        tools["metadata"]["namespace"]
    );
    assert_eq!(
        proxy["spec"]["dynamicModules"],
        tools["spec"]["dynamicModules"]
    );

    let deployment = &proxy["spec"]["provider"]["kubernetes"]["envoyDeployment"];
    let (volume, mount_path) = modules_volume(&deployment["pod"], &deployment["container"]);
    assert_eq!(volume["image"]["reference"], IMAGE);
    assert_eq!(format!("{mount_path}/libbackstage_proxy.so"), path);

    // planted: the volume on the container instead of the pod
    let mut bad = proxy.clone();
    let d = &mut bad["spec"]["provider"]["kubernetes"]["envoyDeployment"];
    let volumes = d["pod"].as_object_mut().unwrap().remove("volumes").unwrap();
    d["container"]["volumes"] = volumes;
    let report = validate_18(&[bad]);
    assert!(
        report["violations"].to_string().contains("volumes"),
        "{report}"
    );
}
