//! The compiled filter in a real Envoy: every rule of SPEC §2, §4, §5, §6
//! and every deviation of §11, asserted on what a loopback upstream saw.
//!
//! One module per part of SPEC; `fixture` is the gateway they share.

mod fixture;

mod credentials;
mod headers;
mod methods;
mod observability;
mod routing;
