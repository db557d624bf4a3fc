//! What the unit tests share: app-config from YAML text, loaded and
//! checked, and the Kubernetes outputs' options.

use serde_json::Value;

use crate::appconfig::{load, load_yaml, ConfigFile, Loaded};
use crate::kube::{istio, KubeOptions};

/// One app-config file from YAML text.
pub(crate) fn src(name: &str, yaml: &str) -> ConfigFile {
    load_yaml(name, yaml).unwrap()
}

/// One app-config file, loaded without errors.
pub(crate) fn loaded(yaml: &str) -> Loaded {
    let l = load(&[load_yaml("a.yaml", yaml).unwrap()], &|_| None);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    l
}

/// A classic Istio gateway in namespace `gw`.
pub(crate) fn kube_options() -> KubeOptions {
    KubeOptions {
        url: "oci://r/x:1".into(),
        sha256: Some(
            "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        ),
        namespace: "gw".into(),
        gateway: "backstage-gateway".into(),
        hostnames: Vec::new(),
        selector: vec![("istio".into(), "ingressgateway".into())],
        gateway_api: false,
        traffic_extension: false,
        envoy_proxy: false,
        allow_unpinned: false,
        secret_name: "backstage-proxy-wasm".into(),
        gateway_deployment: "istio-ingressgateway".into(),
        upstream_ca: None,
        native: None,
    }
}

/// Istio's resources for one app-config file.
pub(crate) fn istio_docs(yaml: &str) -> Vec<Value> {
    istio(&loaded(yaml), &kube_options()).unwrap().0
}
