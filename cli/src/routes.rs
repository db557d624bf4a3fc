//! The model every output is written from: where the plan's requests go.
//!
//! - `ClusterSpec`s: each Envoy cluster the filter names (an endpoint's,
//!   the Backstage backend's, a key set's) and the destination it reaches
//!   (`cluster_specs`, which refuses one name for two destinations);
//! - [`Route`]s: the destinations the Kubernetes gateways route to, one per
//!   value of the destination header ([`group_by_destination`]);
//! - what a route removes before the request leaves
//!   (`removed_headers`), and the filter configuration that names the
//!   routes rather than Envoy clusters (`filter_config_for_routes`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::appconfig::Loaded;
use crate::error::Error;
use crate::json::{set, set_in};
use backstage_proxy_core::config::Plan;
use backstage_proxy_core::url::Url;

/// One Envoy cluster the filter can name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterSpec {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    pub(crate) verify: bool,
}

/// Every cluster the filter names (endpoints, the backend, key sets), by
/// name; verification is off only when every user of a cluster says so.
pub(crate) fn cluster_specs(plan: &Plan) -> Result<BTreeMap<String, ClusterSpec>, Error> {
    let mut out: BTreeMap<String, ClusterSpec> = BTreeMap::new();
    let mut add = |name: &str, url: &Url, secure: Option<bool>| -> Result<(), Error> {
        let spec = ClusterSpec {
            host: url.host.clone(),
            port: url.port,
            tls: url.scheme == "https",
            verify: secure != Some(false),
        };
        match out.get(name) {
            Some(existing)
                if existing.host != spec.host
                    || existing.port != spec.port
                    || existing.tls != spec.tls =>
            {
                Err(Error::ClusterConflict(format!(
                    "cluster '{name}' is named for two different destinations"
                )))
            }
            Some(existing) => {
                // Verification is off only when every user of the cluster says so.
                let verify = existing.verify || spec.verify;
                out.insert(name.to_string(), ClusterSpec { verify, ..spec });
                Ok(())
            }
            None => {
                out.insert(name.to_string(), spec);
                Ok(())
            }
        }
    };
    for e in &plan.endpoints {
        add(&e.cluster, &e.target, e.envoy.secure)?;
    }
    if let Some(b) = &plan.backend {
        add(&b.cluster, &b.url, None)?;
    }
    for j in &plan.auth.jwks {
        add(&j.cluster, &j.url, None)?;
    }
    Ok(out)
}

/// An IP literal (an IPv6 one in brackets): no DNS.
pub(crate) fn is_ip(host: &str) -> bool {
    host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok()
}

/// The host without an IPv6 literal's brackets.
pub(crate) fn bare_host(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The name an `https` upstream's certificate must carry for the gateway
/// to send it anything: the target's host. Trust in the issuer alone is not
/// enough: any certificate a trusted CA issued (for `evil.example`) would
/// otherwise be accepted for `api.pagerduty.com`, and the endpoint's
/// injected credentials sent to whoever holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertificateName {
    /// A DNS name, lower case, without a trailing dot (a certificate's
    /// wildcard entry matches it as DNS names match).
    Dns(String),
    /// An IP address in its canonical text form (IPv6 compressed, without
    /// brackets), as Envoy prints a certificate's IP address entries.
    Ip(String),
}

impl CertificateName {
    /// The name as text.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            CertificateName::Dns(n) | CertificateName::Ip(n) => n,
        }
    }
}

/// The name `host` (a URL's, IPv6 in brackets) must have in its
/// certificate.
pub(crate) fn certificate_name(host: &str) -> CertificateName {
    let bare = bare_host(host);
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => CertificateName::Ip(ip.to_string()),
        Err(_) if is_ip(host) => CertificateName::Ip(bare.to_ascii_lowercase()),
        Err(_) => CertificateName::Dns(bare.trim_end_matches('.').to_ascii_lowercase()),
    }
}

/// Where one value of the destination header takes a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The header value the filter sets.
    pub value: String,
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub verify: bool,
    /// `:authority` the route sets; `None` keeps the client's.
    pub authority: Option<String>,
    pub timeout_ms: Option<u64>,
    /// Some endpoint here has `xfwd`: a variant keeps `x-forwarded-proto`.
    pub xfwd: bool,
    /// The endpoints (indexes into the plan) whose requests take it.
    pub endpoints: Vec<usize>,
}

/// One route per (destination, authority, timeout); `value_for` names the
/// first of a destination, later ones get `;2`, `;3`, ….
pub fn group_by_destination(
    plan: &Plan,
    value_for: &dyn Fn(&str, u16, bool) -> String,
) -> Vec<Route> {
    let mut out: Vec<Route> = Vec::new();
    for (i, e) in plan.endpoints.iter().enumerate() {
        let host = bare_host(&e.target.host).to_string();
        let tls = e.target.scheme == "https";
        let found = out.iter_mut().find(|r| {
            r.host == host
                && r.port == e.target.port
                && r.tls == tls
                && r.authority == e.upstream_authority
                && r.timeout_ms == e.envoy.proxy_timeout_ms
        });
        match found {
            Some(r) => {
                r.endpoints.push(i);
                r.xfwd |= e.xfwd;
                r.verify |= e.envoy.secure != Some(false);
            }
            None => {
                let base = value_for(&host, e.target.port, tls);
                let same = out
                    .iter()
                    .filter(|r| r.value.split(';').next() == Some(&base))
                    .count();
                let value = if same == 0 {
                    base
                } else {
                    format!("{base};{}", same + 1)
                };
                out.push(Route {
                    value,
                    host,
                    port: e.target.port,
                    tls,
                    verify: e.envoy.secure != Some(false),
                    authority: e.upstream_authority.clone(),
                    timeout_ms: e.envoy.proxy_timeout_ms,
                    xfwd: e.xfwd,
                    endpoints: vec![i],
                });
            }
        }
    }
    out
}

/// The filter's own destinations: the Backstage backend and `jwks` URLs.
pub(crate) fn callout_urls(plan: &Plan) -> Vec<Url> {
    let mut out: Vec<Url> = plan.backend.iter().map(|b| b.url.clone()).collect();
    out.extend(plan.auth.jwks.iter().map(|j| j.url.clone()));
    out
}

/// Headers a route removes before the request leaves.
pub(crate) fn removed_headers(plan: &Plan, xfwd: bool) -> Vec<String> {
    let mut out = vec![plan.gateway.cluster_header.clone()];
    if xfwd {
        out.push(plan.gateway.xfwd_marker.clone());
    } else {
        out.push("x-forwarded-proto".to_string());
    }
    if plan.gateway.rate_limit_service.is_some() {
        out.extend(
            crate::ratelimit::descriptors::HEADERS
                .iter()
                .map(|h| h.to_string()),
        );
    }
    out
}

/// The filter configuration for these routes: each endpoint's `cluster` is
/// its route's header value, the filter's own calls name `callout`'s
/// clusters, and the routes rewrite `:authority`.
pub(crate) fn filter_config_for_routes(
    loaded: &Loaded,
    plan: &Plan,
    routes: &[Route],
    callout: &dyn Fn(&Url) -> String,
) -> Value {
    let mut config = loaded.filter_config.clone();
    name_route_clusters(&mut config, plan, routes);
    if let Some(b) = &plan.backend {
        set_in(
            &mut config,
            &["gateway"],
            "backendCluster",
            json!(callout(&b.url)),
        );
    }
    if let Some(list) = config
        .pointer_mut("/backend/auth/externalAccess")
        .and_then(Value::as_array_mut)
    {
        for item in list.iter_mut() {
            if item.get("type").and_then(Value::as_str) != Some("jwks") {
                continue;
            }
            let url = item
                .pointer("/options/url")
                .and_then(Value::as_str)
                .and_then(|u| Url::parse(u).ok());
            if let Some(u) = url {
                set_in(item, &["options"], "cluster", json!(callout(&u)));
            }
        }
    }
    set_in(
        &mut config,
        &["gateway"],
        "authorityRewrite",
        json!("route"),
    );
    config
}

/// Sets each endpoint's `cluster` in `config` to its route's header value
/// (a string endpoint becomes `{ target }` first).
fn name_route_clusters(config: &mut Value, plan: &Plan, routes: &[Route]) {
    // The legacy form keeps the endpoints directly under proxy.
    let endpoints_ptr = if config.pointer("/proxy/endpoints").is_some() {
        "/proxy/endpoints"
    } else {
        "/proxy"
    };
    for r in routes {
        for &i in &r.endpoints {
            let Some(e) = plan.endpoints.get(i) else {
                continue;
            };
            let key = e.raw_key.replace('~', "~0").replace('/', "~1");
            let Some(entry) = config.pointer_mut(&format!("{endpoints_ptr}/{key}")) else {
                continue;
            };
            if entry.is_string() {
                *entry = json!({ "target": entry.clone() });
            }
            set(entry, "cluster", json!(r.value));
        }
    }
}

#[cfg(test)]
mod tests;
