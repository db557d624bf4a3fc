//! Who did what: the outcome of every request as the access log and the
//! counters name it, and the filter-state keys the access log reads. The
//! filter writes them; the command-line tool writes the access-log format
//! that reads them. Never a token, a secret or a claim beyond the
//! principal.

use crate::reply::Reason;

/// Filter-state keys, as the filter sets them (`set_property`). Envoy's
/// access log reads a Wasm filter's as `wasm.<key>`.
pub const PRINCIPAL_KEY: &str = "backstage_proxy.principal";
pub const ENDPOINT_KEY: &str = "backstage_proxy.endpoint";
pub const DECISION_KEY: &str = "backstage_proxy.decision";
/// The path as the client sent it, kept for the body of a refusal by
/// Envoy's rate limit filter (`gateway.rateLimitService`).
pub const REQUEST_URL_KEY: &str = "backstage_proxy.request_url";
/// What the log writes where a value is absent.
pub const ABSENT: &str = "-";

/// How Envoy's access log (`%FILTER_STATE(…)%`) reads a key the Wasm filter set.
pub fn wasm_filter_state(key: &str) -> String {
    format!("%FILTER_STATE(wasm.{key}:PLAIN)%")
}

/// What the filter did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Forwarded to the endpoint's upstream.
    Allowed,
    /// Answered locally with a refusal.
    Denied(Reason),
    /// The proxy plugin's own (empty) key set, served.
    OwnJwks,
    /// A CORS preflight, answered.
    CorsPreflight,
    /// Outside the prefix: not the filter's, let through untouched.
    PassThrough,
}

impl Outcome {
    /// The word in the access log's `decision` field.
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied(reason) => reason.code(),
            Outcome::OwnJwks => "own_jwks",
            Outcome::CorsPreflight => "cors_preflight",
            Outcome::PassThrough => "passthrough",
        }
    }
}

#[cfg(test)]
mod tests;
