//! What every Kubernetes output shares: its options, its warnings, and
//! Kubernetes names (a Service by its cluster DNS name, resource names,
//! `[ns/]name` references).

use serde_json::{json, Value};

use crate::error::Error;

#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// The image: `oci://REGISTRY/REPO:TAG` (Envoy Gateway takes it
    /// without the scheme).
    pub url: String,
    /// The image's manifest digest (hex, with or without `sha256:`).
    pub sha256: Option<String>,
    /// Where the resources go (for Gateway API: the Gateway's namespace).
    pub namespace: String,
    /// The gateway: a classic Istio `Gateway` (`[ns/]name`, bound by the
    /// `VirtualService`), or the Gateway API `Gateway` (`targetRefs`,
    /// `parentRefs`).
    pub gateway: String,
    /// Envoy Gateway: also write an `EnvoyProxy` with the JSON access log
    /// (principal, endpoint, decision) for the Gateway to reference.
    pub envoy_proxy: bool,
    /// Hostnames the gateway serves Backstage on (`VirtualService` hosts,
    /// default `*`; `HTTPRoute` hostnames, default none: all of the
    /// listener's).
    pub hostnames: Vec<String>,
    /// Istio classic: the gateway workload's labels.
    pub selector: Vec<(String, String)>,
    /// Istio: Gateway API (`targetRefs` + `HTTPRoute`) instead of classic.
    pub gateway_api: bool,
    /// Istio: `TrafficExtension` (Istio 1.30) instead of `WasmPlugin`.
    pub traffic_extension: bool,
    /// An image without `sha256` is written (a warning says so) rather
    /// than refused.
    pub allow_unpinned: bool,
    /// The `Secret` the gateway's pods read the VM's variables from (one
    /// key per variable).
    pub secret_name: String,
    /// Istio classic: the ingress gateway's `Deployment`, which the
    /// `--kustomize` patch names.
    pub gateway_deployment: String,
    /// The CA bundle that verifies every `https` destination instead of
    /// the system's roots.
    pub upstream_ca: Option<UpstreamCa>,
    /// Envoy Gateway: the native dynamic module instead of the Wasm image.
    pub native: Option<NativeModule>,
}

/// Where Envoy Gateway's proxy finds the native module
/// (`EnvoyProxy.spec.dynamicModules[].source`): a file on the proxy
/// container's filesystem, never a URL. Envoy Gateway's `Remote` source
/// becomes Envoy's remote module source, and Envoy 1.39.3 starts without
/// the filter when that fetch fails or its SHA-256 does not match: every
/// route served unchecked (`docs/native.md#envoys-remote-source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeModule {
    /// Absolute.
    pub path: String,
}

impl NativeModule {
    /// `--native`: an absolute path on the proxy's filesystem.
    pub fn parse(given: &str) -> Result<NativeModule, Error> {
        if given.contains("://") {
            return Err(Error::Unsupported(format!(
                "--native '{given}': a module Envoy fetches fails open (Envoy 1.39.3 serves every route without the filter when the download fails or its SHA-256 does not match); mount the module image and give its absolute path on the proxy's filesystem, e.g. /usr/lib/envoy/modules/libbackstage_proxy.so (docs/native.md#envoys-remote-source)"
            )));
        }
        if !given.starts_with('/') {
            return Err(Error::Unsupported(format!(
                "--native '{given}': a path on the proxy's filesystem must be absolute (where the module image is mounted, e.g. /usr/lib/envoy/modules/libbackstage_proxy.so)"
            )));
        }
        Ok(NativeModule {
            path: given.to_string(),
        })
    }
}

/// A CA bundle for the upstreams: where it was read from, and its PEM.
#[derive(Debug, Clone)]
pub struct UpstreamCa {
    pub path: String,
    pub pem: String,
}

impl UpstreamCa {
    /// Reads a PEM bundle; an error names the file when it cannot be read
    /// or holds no certificate.
    pub fn read(path: &str) -> Result<UpstreamCa, Error> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| Error::Unsupported(format!("{path}: {e}")))?;
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(Error::Unsupported(format!(
                "{path}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the CA bundle"
            )));
        }
        Ok(UpstreamCa {
            path: path.to_string(),
            pem,
        })
    }
}

impl KubeOptions {
    /// The image's manifest digest as the resources take it: hex, without
    /// `sha256:`.
    pub(crate) fn image_digest_hex(&self) -> Option<String> {
        self.sha256
            .as_ref()
            .map(|d| d.trim_start_matches("sha256:").to_ascii_lowercase())
    }

    /// The gateway as (namespace, name), `--namespace` unless it names one.
    pub(crate) fn gateway_ref(&self) -> (&str, &str) {
        split_ref(&self.gateway, &self.namespace)
    }
}

/// Warnings for what a gateway route cannot carry.
pub type Warnings = Vec<String>;

/// The labels every resource carries, so that a platform team can select
/// and prune what the tool wrote (`kubectl apply --prune -l …`).
pub fn labels() -> Value {
    json!({
        "app.kubernetes.io/name": "backstage-proxy-wasm",
        "app.kubernetes.io/part-of": "backstage-proxy-wasm",
        "app.kubernetes.io/managed-by": "backstage-proxy-wasm",
        "app.kubernetes.io/version": env!("CARGO_PKG_VERSION"),
    })
}

/// Puts [`labels`] on every resource (added to any it has).
pub(crate) fn label_all(docs: &mut [Value]) {
    for d in docs {
        let Some(meta) = d.get_mut("metadata").and_then(Value::as_object_mut) else {
            continue;
        };
        let entry = meta.entry("labels").or_insert_with(|| json!({}));
        if let (Some(have), Some(add)) = (entry.as_object_mut(), labels().as_object()) {
            for (k, v) in add {
                have.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The image must be pinned: `--sha256` with a SHA-256 digest, or else
/// `--allow-unpinned` (a warning). An image by tag alone runs whatever the
/// tag names when a gateway pod pulls it, so the code that enforces the
/// rules could change under them: widening what runs is an error unless
/// asked for.
pub(crate) fn check_image(opts: &KubeOptions, warnings: &mut Warnings) -> Result<(), Error> {
    match opts.image_digest_hex() {
        Some(d) if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
        Some(d) => Err(Error::Unsupported(format!(
            "--sha256 '{d}' is not a SHA-256 digest (64 hex digits, with or without sha256:): the manifest digest `oci` prints"
        ))),
        None if opts.allow_unpinned => {
            warnings.push(format!("the image {} is not pinned (no --sha256): every gateway pod runs whatever the tag names when it pulls", opts.url));
            Ok(())
        }
        None => Err(Error::Unsupported(format!(
            "the image {} is not pinned: pass --sha256 DIGEST (what `oci` prints), or --allow-unpinned to run whatever the tag names when a gateway pod pulls it (docs/deploying.md#pinned-images)",
            opts.url
        ))),
    }
}

/// A Kubernetes Service named by its cluster DNS name
/// (`<svc>.<ns>.svc[.cluster.local]`): (service, namespace). The mesh and
/// the gateway know these already: no `ServiceEntry` or `Backend`.
pub fn in_cluster(host: &str) -> Option<(String, String)> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    let rest = h
        .strip_suffix(".svc.cluster.local")
        .or_else(|| h.strip_suffix(".svc"))?;
    let (svc, ns) = rest.split_once('.')?;
    (!svc.is_empty() && !ns.is_empty() && !ns.contains('.'))
        .then(|| (svc.to_string(), ns.to_string()))
}

/// A resource name (DNS label): `prefix-part-…`, lower case, `-` for
/// anything else, at most 63 characters.
pub(crate) fn dns_name(prefix: &str, parts: &[&str]) -> String {
    let raw = std::iter::once(prefix)
        .chain(parts.iter().copied())
        .collect::<Vec<_>>()
        .join("-");
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    name.truncate(63);
    name.trim_matches('-').to_string()
}

/// `[ns/]name` → (namespace, name).
fn split_ref<'a>(r: &'a str, default_ns: &'a str) -> (&'a str, &'a str) {
    r.split_once('/').unwrap_or((default_ns, r))
}
