//! The command-line tool's library: reading app-config as Backstage does
//! ([`appconfig`]), writing gateway configurations ([`render`] for Envoy,
//! [`kube`] for Istio and Envoy Gateway), and the
//! compat OCI image ([`oci`]). `main.rs` parses arguments and calls these.

pub mod appconfig;
pub mod kube;
pub mod oci;
pub mod ratelimit;
pub mod render;

#[cfg(test)]
mod test_support;
