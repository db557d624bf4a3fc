//! The security catalogue's cases (`docs/security.md`) decided end to end:
//! the compiled filter in real Envoy with the shipped HCM settings,
//! asserting the contract's outcome and, where a request must be refused, that nothing reached an
//! upstream. Every path case runs twice: with Envoy's path normalisation off
//! (the shipped envoy.yaml) and on; the filter must hold either way.
//! tests/CATALOG.md maps every case id to its test or says why it does not
//! apply.
//!
//! One module per group of the catalogue; `fixture` is the gateway they share.

mod fixture;

mod bearer;
mod bodies;
mod credentials;
mod host;
mod local_replies;
mod methods;
mod paths;
mod request_headers;
mod response_headers;
