//! Request budgets per endpoint (`gateway.rateLimits`): per principal and
//! in total, over fixed windows, counted in the host's shared data so that
//! every worker VM of a gateway draws on one budget.
//!
//! The bound, stated and tested (`tests/e2e_ratelimit.rs`): on one gateway a
//! principal gets at most `requests` per window whatever the number of
//! workers (one counter, updated by compare-and-swap; a request whose
//! update loses the race [`CAS_ATTEMPTS`] times is refused, never let
//! through uncounted). Like every fixed window, up to twice the budget can
//! pass around a window's edge. Principals hash (FNV-1a, the same in every
//! VM) to one of [`COUNTERS_PER_ENDPOINT`] counters per endpoint, so the state is bounded by
//! the configuration, never by how many principals there are (an identity
//! provider can mint any number); two principals in one slot share a budget,
//! which can only refuse more, never let more through. Fleets of gateways
//! multiply the budget by their replica count: for those, Envoy's global
//! rate limit service is the tool (README).

use crate::shared_data::{self, SharedData};

/// Counters per endpoint for per-principal budgets.
pub const COUNTERS_PER_ENDPOINT: u64 = 1024;
/// Window lengths Envoy's rate limit service speaks (its units: second,
/// minute, hour, day), for `gateway.rateLimitService`.
pub const SERVICE_WINDOWS: [(u64, &str); 4] = [
    (1, "second"),
    (60, "minute"),
    (3600, "hour"),
    (86_400, "day"),
];
/// Request headers the filter sets for Envoy's rate limit filter
/// (`gateway.rateLimitService`): the endpoint key and the principal. The
/// routes `render` writes turn them into descriptors and remove them
/// before the upstream; a client's own copies never get through.
pub const ENDPOINT_HEADER: &str = "x-backstage-proxy-ratelimit-endpoint";
pub const PRINCIPAL_HEADER: &str = "x-backstage-proxy-ratelimit-principal";
/// Descriptor keys of those values, as the rate limit service's
/// configuration names them.
pub const ENDPOINT_DESCRIPTOR: &str = "backstage_proxy_endpoint";
pub const PRINCIPAL_DESCRIPTOR: &str = "backstage_proxy_principal";
/// `gateway.rateLimitService.domain` unless set.
pub const DEFAULT_DOMAIN: &str = "backstage_proxy";
/// A counter's value when the filter creates it: `<window>:<count>`.
pub const NEW_COUNTER: &[u8] = b"0:0";
/// Compare-and-swap attempts before a request is refused.
pub const CAS_ATTEMPTS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub requests: u64,
    pub window_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub per_principal: Option<Budget>,
    pub total: Option<Budget>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Over budget: try again in this many seconds.
    No {
        retry_after_s: u64,
    },
}

/// FNV-1a, 64 bits: the same slot for a principal in every VM.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn total_key(scope: &str) -> String {
    shared_data::key("ratelimit", &format!("{scope}/total"))
}

fn principal_key(scope: &str, counter: u64) -> String {
    shared_data::key("ratelimit", &format!("{scope}/p{counter}"))
}

/// The shared-data keys of an endpoint's budgets. Envoy's shared data has
/// no create-if-absent (a write with version 0 is unconditional), so the
/// filter creates every counter when it loads its configuration (where
/// absent) and requests only ever update them by compare-and-swap.
pub fn keys(scope: &str, limit: &RateLimit) -> Vec<String> {
    let mut out = Vec::new();
    if limit.total.is_some() {
        out.push(total_key(scope));
    }
    if limit.per_principal.is_some() {
        out.extend((0..COUNTERS_PER_ENDPOINT).map(|i| principal_key(scope, i)));
    }
    out
}

/// Takes one request from the endpoint's budgets (`scope` names the
/// endpoint in shared data; its counters exist: [`keys`]).
pub fn admit(
    shared: &mut dyn SharedData,
    scope: &str,
    principal: Option<&str>,
    limit: &RateLimit,
    now_ms: u64,
) -> Admit {
    if let Some(b) = &limit.total {
        if let refused @ Admit::No { .. } = take(shared, &total_key(scope), b, now_ms) {
            return refused;
        }
    }
    if let (Some(b), Some(p)) = (&limit.per_principal, principal) {
        let key = principal_key(scope, fnv(p) % COUNTERS_PER_ENDPOINT);
        return take(shared, &key, b, now_ms);
    }
    Admit::Yes
}

fn take(shared: &mut dyn SharedData, key: &str, b: &Budget, now_ms: u64) -> Admit {
    let window_ms = b.window_ms.max(1);
    let window = now_ms / window_ms;
    let retry_after_s = ((window + 1) * window_ms - now_ms).div_ceil(1000).max(1);
    for _ in 0..CAS_ATTEMPTS {
        let (value, cas) = shared.get(key);
        let Some(cas) = cas.filter(|c| *c != 0) else {
            // A counter that was never created: refuse rather than write
            // without a version (which could lose another worker's count).
            return Admit::No { retry_after_s };
        };
        let count = value
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.split_once(':'))
            .filter(|(w, _)| w.parse::<u64>().ok() == Some(window))
            .and_then(|(_, c)| c.parse::<u64>().ok())
            .unwrap_or(0);
        if count >= b.requests {
            return Admit::No { retry_after_s };
        }
        let next = format!("{window}:{}", count + 1);
        if shared.set(key, next.as_bytes(), Some(cas)) {
            return Admit::Yes;
        }
    }
    Admit::No { retry_after_s: 1 }
}

/// A descriptor value as a header can carry it: bytes outside visible
/// ASCII, and `%` itself, percent-encoded, so that distinct principals stay
/// distinct and no value can break the header (a token's `sub` is the
/// issuer's to choose).
pub fn descriptor_value(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii_graphic() && b != b'%') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(char::from(b));
        } else {
            use std::fmt::Write;
            let _ = write!(out, "%{b:02X}");
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests;
