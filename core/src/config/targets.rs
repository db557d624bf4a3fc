//! How endpoints' targets nest on one origin: the reading behind
//! credentials that follow where a request lands, and behind the
//! endpoints whose policies and budgets a request may land under.

use super::{Credentials, Endpoint};

/// A warning for each open endpoint whose target holds a stricter one's.
pub(super) fn nesting_warnings(
    warnings: &mut Vec<String>,
    endpoints: &[Endpoint],
    nested: &[Vec<usize>],
) {
    for (outer, inner) in nested.iter().enumerate() {
        for &b in inner {
            if let (Some(a), Some(b)) = (endpoints.get(outer), endpoints.get(b)) {
                warnings.push(format!(
                    "proxy.endpoints.{}: its target contains the target of '{}', whose credentials are stricter; requests through '{}' that land under {} get '{}''s credentials",
                    a.raw_key, b.raw_key, a.raw_key, b.target.path, b.raw_key
                ));
            }
        }
    }
}

/// `b`'s target lies strictly under `a`'s on the same origin (scheme,
/// host, port). Equal targets are not nesting.
pub(super) fn target_contains(a: &Endpoint, b: &Endpoint) -> bool {
    let outer = a.target.path.trim_end_matches('/');
    let inner = b.target.path.trim_end_matches('/');
    b.target.scheme == a.target.scheme
        && b.target.host == a.target.host
        && b.target.port == a.target.port
        && inner.len() > outer.len()
        && inner
            .get(..outer.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(outer))
        && inner.as_bytes().get(outer.len()) == Some(&b'/')
}

/// For each endpoint, the others on the same origin whose targets hold,
/// equal or lie under its target.
pub(super) fn landing_candidates(endpoints: &[Endpoint]) -> Vec<Vec<usize>> {
    endpoints
        .iter()
        .enumerate()
        .map(|(i, a)| {
            endpoints
                .iter()
                .enumerate()
                .filter(|(j, b)| *j != i && targets_nest(a, b))
                .map(|(j, _)| j)
                .collect()
        })
        .collect()
}

/// A request through either endpoint may land under the other's target:
/// on one origin, one target holds, lies under or equals the other.
pub(super) fn targets_nest(a: &Endpoint, b: &Endpoint) -> bool {
    target_contains(a, b) || target_contains(b, a) || same_target(a, b)
}

/// The same origin and the same target path (ignoring a trailing `/` and
/// ASCII case, as [`target_contains`] reads them).
pub(super) fn same_target(a: &Endpoint, b: &Endpoint) -> bool {
    a.target.scheme == b.target.scheme
        && a.target.host == b.target.host
        && a.target.port == b.target.port
        && a.target
            .path
            .trim_end_matches('/')
            .eq_ignore_ascii_case(b.target.path.trim_end_matches('/'))
}

/// `docs/contract.md#4-credentials-per-endpoint`: for each endpoint A, the endpoints B whose target lies
/// under A's ([`target_contains`]) and whose credentials are stricter.
pub(super) fn nested_stricter(endpoints: &[Endpoint], all_open: bool) -> Vec<Vec<usize>> {
    endpoints
        .iter()
        .map(|a| {
            if all_open || a.credentials != Credentials::DangerouslyAllowUnauthenticated {
                return Vec::new();
            }
            endpoints
                .iter()
                .enumerate()
                .filter(|(_, b)| {
                    b.credentials != Credentials::DangerouslyAllowUnauthenticated
                        && target_contains(a, b)
                })
                .map(|(i, _)| i)
                .collect()
        })
        .collect()
}
