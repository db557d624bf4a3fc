//! What the host reports of a call the filter sends through an Envoy
//! cluster (a key-set fetch, a question to the permission backend), and
//! what becomes of a request that waits for one: shared by the
//! coordinators that drive them ([`crate::auth::jwks::fetch`],
//! [`crate::permission::ask`]).

/// What became of a stream whose decision needs a callout's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Park {
    /// Paused: it is decided again when the answer arrives.
    Wait,
    /// Decided too often, or too many requests are paused: refuse it now.
    Refuse,
}

/// A callout's answer, as the host reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `:status` and the body (read only when the status is 200 and the
    /// size is within the limit).
    Answered {
        status: u16,
        body: Option<Vec<u8>>,
        size: usize,
    },
    /// No response: timeout, reset, or a cluster Envoy does not know.
    Lost,
}
