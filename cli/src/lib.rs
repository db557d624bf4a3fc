//! The command-line tool's library. App-config is read as Backstage reads
//! it ([`appconfig`]) into one model of where requests go ([`routes`]),
//! from which each output is written: Envoy ([`render`]), Istio and Envoy
//! Gateway ([`kube`]), and the rate limit service's configuration file
//! ([`ratelimit`]). The outputs share the JSON toolbox ([`json`]) and the
//! Envoy pieces more than one of them writes ([`access_log`],
//! [`ratelimit::descriptors`], [`ratelimit::envoy_filter`]); none imports
//! another. [`oci`] builds the compat OCI image; [`report`] writes `check`'s
//! findings for machines (JSON, SARIF). `main.rs` parses
//! arguments and calls these.

pub mod access_log;
pub mod appconfig;
pub mod error;
pub mod explain;
pub mod json;
pub mod kube;
pub mod oci;
pub mod ratelimit;
pub mod render;
pub mod report;
pub mod routes;

#[cfg(test)]
mod test_support;
