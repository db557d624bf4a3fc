//! Backstage's proxy plugin rules, enforced inside Envoy as a proxy-wasm
//! filter.
//!
//! Everything but [`filter`] is a pure core that compiles and is tested
//! natively; `filter` is the only code that calls the proxy-wasm host.

#[cfg(not(target_arch = "wasm32"))]
pub mod appconfig;
pub mod ascii;
pub mod auth;
pub mod base64;
pub mod config;
pub mod decision;
pub mod fasthash;
pub mod headers;
pub mod reply;
pub mod routing;
pub mod url;

#[cfg(not(target_arch = "wasm32"))]
pub mod oci;
#[cfg(not(target_arch = "wasm32"))]
pub mod render;

#[cfg(target_arch = "wasm32")]
mod filter;
