//! `--upstream-ca FILE`: an internal CA verifies the `https` destinations
//! instead of the system's roots (`docs/deploying.md#an-internal-ca`). The
//! bundle is public material, written into the resources: Istio's
//! `DestinationRule`s name a `Secret` holding it (`tls.credentialName`, key
//! `ca.crt`, in the gateway pods' namespace); Envoy Gateway's
//! `BackendTLSPolicy`s a `ConfigMap` (`validation.caCertificateRefs`, key
//! `ca.crt`, in each policy's namespace). The certificate's name is
//! checked as without it.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::common::KubeOptions;

/// The `Secret` (Istio) or `ConfigMap` (Envoy Gateway) holding the bundle.
pub const UPSTREAM_CA_NAME: &str = "backstage-proxy-wasm-upstream-ca";

/// Istio: the `Secret` the `DestinationRule`s' `credentialName` names, in
/// the namespace of the gateway's pods (Istio reads it there).
pub(crate) fn istio_secret(opts: &KubeOptions) -> Option<Value> {
    opts.upstream_ca.as_ref().map(|ca| {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": UPSTREAM_CA_NAME, "namespace": super::secrets::pod_namespace(opts) },
            "type": "Opaque",
            "stringData": { "ca.crt": ca.pem }
        })
    })
}

/// Envoy Gateway: the reference a `BackendTLSPolicy`'s validation takes.
pub(crate) fn envoy_gateway_ref() -> Value {
    json!([{ "group": "", "kind": "ConfigMap", "name": UPSTREAM_CA_NAME }])
}

/// Envoy Gateway: the `ConfigMap` in each namespace that holds a
/// `BackendTLSPolicy` (a policy names a `ConfigMap` of its own namespace
/// only).
pub(crate) fn envoy_gateway_configmaps(opts: &KubeOptions, docs: &[Value]) -> Vec<Value> {
    let Some(ca) = &opts.upstream_ca else {
        return Vec::new();
    };
    let namespaces: BTreeSet<&str> = docs
        .iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("BackendTLSPolicy"))
        .filter_map(|d| d.get("metadata")?.get("namespace")?.as_str())
        .collect();
    namespaces
        .into_iter()
        .map(|ns| {
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": { "name": UPSTREAM_CA_NAME, "namespace": ns },
                "data": { "ca.crt": ca.pem }
            })
        })
        .collect()
}
