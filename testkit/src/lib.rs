//! Dev-only: what the test suites and benchmarks share. The compiled
//! `.wasm` inside a real Envoy whose configuration `render` writes
//! ([`envoy`]), a loopback upstream that records exactly what reached it
//! ([`upstream`]), a key-set server ([`keys`]), raw HTTP/1.1 and exact
//! HTTP/2 clients ([`client`]), token minting with signers independent of
//! the filter's verifiers ([`mint`]), the log of secrets the log scan
//! looks for ([`secrets`]), a private CA with an HTTPS upstream
//! ([`tls`]), and the monitoring files read as Prometheus reads them
//! ([`monitoring`]).

pub mod backstage;
pub mod client;
pub mod docs;
pub mod envoy;
pub mod keys;
pub mod monitoring;
pub mod paths;
pub mod ratelimit;
pub mod secrets;
pub mod tls;
pub mod upstream;

/// Token minting: a crate of its own (`testkit/mint/`), which the core's
/// tests use without the rest of the kit.
pub use backstage_proxy_mint as mint;

pub use client::*;
pub use envoy::*;
pub use keys::*;
pub use paths::*;
pub use ratelimit::*;
pub use secrets::*;
pub use tls::*;
pub use upstream::*;

// Tokens minted as Backstage's legacy TokenManager does (HS256)
#[allow(unused_imports)]
pub use mint::b64url;

/// An HS256 JWS over exactly this header and payload.
pub fn hs256(header: &str, payload: &str, key: &[u8]) -> String {
    mint::hs256_raw(header, payload, key)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
