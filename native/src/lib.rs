//! The native Envoy dynamic module: the same core as the Wasm filter
//! (`backstage-proxy-core`), loaded by Envoy as a shared library through
//! `envoy.filters.http.dynamic_modules` (`docs/native.md`). Glue only; no
//! policy lives here.
//!
//! - [`abi`]: the hand-written bindings to Envoy's ABI and the hooks Envoy
//!   calls; the crate's only `unsafe`, and where every panic is caught.
//! - [`config`]: the filter configuration (the Wasm filter's JSON) and
//!   each worker's verification state.
//! - [`filter`]: one stream's request and response, applied through a
//!   host trait.
//! - [`shared`]: the store every worker shares, in process memory.

#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

#[allow(unsafe_code)]
pub mod abi;
pub mod callout;
pub mod config;
pub mod filter;
pub mod headers;
pub mod logging;
pub mod metrics;
pub mod pause;
pub mod shared;
pub mod worker;
