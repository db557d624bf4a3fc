//! How the values the filter reads from its VM's environment reach the
//! gateway's pods (`docs/deploying.md#secrets-in-the-gateways-pods`): each
//! variable of [`Loaded::vm_vars`] comes from one key of a Kubernetes
//! `Secret` (`--secret-name`), by `valueFrom.secretKeyRef`, into the proxy
//! container: Envoy Gateway's `EnvoyProxy`, Istio's gateway `Deployment`
//! (a strategic-merge patch, or with Gateway API the `ConfigMap` Istio
//! merges into the `Deployment` it runs). The `Secret`'s values are never
//! written by default: see [`super::kustomize`].

use serde_json::{json, Value};

use super::common::{KubeOptions, Warnings};
use crate::appconfig::Loaded;
use crate::error::Error;

/// The proxy container of an Istio gateway (the `istio-proxy` Istio
/// injects into the gateway's pods, or runs as the gateway).
pub const ISTIO_PROXY_CONTAINER: &str = "istio-proxy";

/// Istio with Gateway API: the `ConfigMap` the Gateway takes with
/// `spec.infrastructure.parametersRef`.
pub const ISTIO_GATEWAY_CONFIGMAP: &str = "backstage-proxy-wasm-gateway";

/// Each variable from the key of the same name in the `Secret`; a missing
/// `Secret` or key keeps the pod from starting (never a filter without its
/// values).
pub(crate) fn env_from_secret(vars: &[String], secret: &str) -> Vec<Value> {
    vars.iter()
        .map(
            |v| json!({ "name": v, "valueFrom": { "secretKeyRef": { "name": secret, "key": v } } }),
        )
        .collect()
}

/// The namespace of the gateway's pods, where the `Secret` must be: the
/// Gateway's with Gateway API (Istio runs the pods there; Envoy Gateway
/// does in gateway-namespace mode), else `--namespace`.
pub fn pod_namespace(opts: &KubeOptions) -> String {
    if opts.gateway_api {
        opts.gateway_ref().0.to_string()
    } else {
        opts.namespace.clone()
    }
}

/// The strategic-merge patch for a classic Istio ingress gateway's
/// `Deployment` (`--gateway-deployment`): the variables into its
/// `istio-proxy` container. Strategic merge adds them by name to the
/// container's `env`; `None` without variables.
pub fn istio_deployment_patch(loaded: &Loaded, opts: &KubeOptions) -> Option<Value> {
    (!loaded.vm_vars.is_empty()).then(|| {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": opts.gateway_deployment, "namespace": opts.namespace },
            "spec": { "template": { "spec": { "containers": [{
                "name": ISTIO_PROXY_CONTAINER,
                "env": env_from_secret(&loaded.vm_vars, &opts.secret_name)
            }] } } }
        })
    })
}

/// Istio with Gateway API runs the gateway's `Deployment` itself and
/// merges the `deployment` key of the `ConfigMap` the Gateway names in
/// `spec.infrastructure.parametersRef` into it (Istio 1.24 and later).
pub(crate) fn istio_gateway_configmap(
    loaded: &Loaded,
    opts: &KubeOptions,
    warnings: &mut Warnings,
) -> Result<Option<Value>, Error> {
    if loaded.vm_vars.is_empty() {
        return Ok(None);
    }
    let overlay = json!({ "spec": { "template": { "spec": { "containers": [{
        "name": ISTIO_PROXY_CONTAINER,
        "env": env_from_secret(&loaded.vm_vars, &opts.secret_name)
    }] } } } });
    let text = serde_saphyr::to_string(&overlay).map_err(|e| Error::Serialise(e.to_string()))?;
    let (gw_ns, gw_name) = opts.gateway_ref();
    warnings.push(format!(
        "the ConfigMap '{ISTIO_GATEWAY_CONFIGMAP}' takes effect when the Gateway '{gw_ns}/{gw_name}' references it (spec.infrastructure.parametersRef: {{group: \"\", kind: ConfigMap, name: {ISTIO_GATEWAY_CONFIGMAP}}}); a Gateway with a ConfigMap of its own needs this env added to that one's deployment instead"
    ));
    Ok(Some(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": ISTIO_GATEWAY_CONFIGMAP, "namespace": gw_ns },
        "data": { "deployment": text }
    })))
}

/// Envoy Gateway: the `EnvoyProxy`'s Envoy container reads the variables
/// from the `Secret` (`spec.provider.kubernetes.envoyDeployment.container.env`).
pub(crate) fn envoy_proxy_provider(loaded: &Loaded, opts: &KubeOptions) -> Option<Value> {
    (!loaded.vm_vars.is_empty()).then(|| {
        json!({ "type": "Kubernetes", "kubernetes": { "envoyDeployment": { "container": {
            "env": env_from_secret(&loaded.vm_vars, &opts.secret_name)
        } } } })
    })
}

/// Where the values come from, and what must be done for them: a warning,
/// since the `Secret` itself is the operator's to fill.
pub(crate) fn secret_warning(loaded: &Loaded, opts: &KubeOptions, how: &str) -> Option<String> {
    (!loaded.vm_vars.is_empty()).then(|| {
        format!(
            "the filter reads {} from the gateway pods' environment: they come from the Secret '{}' in namespace '{}', one key per variable, which these resources do not hold ({how}); `--kustomize DIR` writes a secretGenerator and the env file to fill (docs/deploying.md#secrets-in-the-gateways-pods)",
            loaded.vm_vars.join(", "),
            opts.secret_name,
            pod_namespace(opts)
        )
    })
}
