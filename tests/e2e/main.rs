//! The compiled filter in a real Envoy: every rule of `docs/contract.md` (request pipeline, headers,
//! path and host, local replies)
//! and every deviation of §11, asserted on what a loopback upstream saw.
//!
//! One module per part of the contract; `fixture` is the gateway they share.

mod fixture;

mod credentials;
mod headers;
mod methods;
mod observability;
mod routing;
