//! Resources for the gateways users run on Kubernetes (SPEC §9.2): Istio
//! (classic `selector` + `VirtualService`, or Gateway API `targetRefs` +
//! `HTTPRoute`) and Envoy Gateway (`EnvoyExtensionPolicy`, `HTTPRoute`,
//! `Backend`, `BackendTLSPolicy`). Applying them, with the image pushed, is
//! all it takes. One module per gateway ([`istio`](mod@istio), [`envoy_gateway`](mod@envoy_gateway)),
//! both written from the routes model ([`crate::routes`]); the `HTTPRoute`s
//! they share are [`gateway_api`]'s, and the options and Kubernetes names
//! [`common`]'s.
//!
//! Routing never depends on names a gateway generates. The filter sets the
//! destination header (`gateway.clusterHeader`) to a value these modules
//! choose, one per destination; the gateway's own routes match it with
//! ordinary header matching, remove it, and send the request on. Envoy
//! clears the route cache after the filter's edits (proxy-wasm ABI 0.2.1),
//! so the routes see the header. Because Istio and Envoy Gateway also pick
//! the virtual host again by `:authority`, the filter leaves `:authority`
//! alone here (`gateway.authorityRewrite: route`) and each route rewrites
//! it (`changeOrigin`, an injected `Host`).
//!
//! Only the filter's own calls (key sets from the Backstage backend and
//! `jwks` URLs) name an Envoy cluster: Istio's `outbound|<port>||<host>`,
//! Envoy Gateway's `httproute/<ns>/<route>/rule/<i>` of a rule written for
//! that destination (a rule no request can select: its header value is
//! never set by the filter unless an endpoint goes there too).

mod checks;
pub mod common;
pub mod envoy_gateway;
pub mod gateway_api;
pub mod istio;
pub mod kustomize;
pub mod secrets;
pub mod upstream_ca;

pub use common::{in_cluster, labels, KubeOptions, NativeModule, UpstreamCa, Warnings};
pub use envoy_gateway::{envoy_gateway, ENVOY_PROXY_NAME};
pub use gateway_api::MAX_RULES_PER_ROUTE;
pub use istio::istio;

#[cfg(test)]
mod tests;
