//! What every Kubernetes output shares: its options, its warnings, and
//! Kubernetes names (a Service by its cluster DNS name, resource names,
//! `[ns/]name` references).

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
}

impl KubeOptions {
    /// The image's manifest digest as the resources take it: hex, without
    /// `sha256:`.
    pub(crate) fn image_digest_hex(&self) -> Option<String> {
        self.sha256
            .as_ref()
            .map(|d| d.trim_start_matches("sha256:").to_string())
    }

    /// The gateway as (namespace, name), `--namespace` unless it names one.
    pub(crate) fn gateway_ref(&self) -> (&str, &str) {
        split_ref(&self.gateway, &self.namespace)
    }
}

/// Warnings for what a gateway route cannot carry.
pub type Warnings = Vec<String>;

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
