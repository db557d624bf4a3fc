//! A forwarded request's response: the headers it keeps (the endpoint's
//! allow-list), the CORS headers it gains, and, with
//! `gateway.rateLimitService`, what a refusal by Envoy's rate limit filter
//! (after this one) means.

use std::borrow::Cow;

use super::{After, Header};
use crate::audit::Outcome;
use crate::config::Plan;
use crate::reply::Reason;

/// The response edits, and a refusal to record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits<'h> {
    /// Response headers to remove, every value.
    pub remove: Vec<Cow<'h, str>>,
    /// Response headers to set, replacing.
    pub set: Vec<(Cow<'h, str>, Cow<'h, str>)>,
    /// Response headers to add (CORS's, where the response has none).
    pub add: Vec<(&'static str, String)>,
    /// Envoy's rate limit filter refused the request: what to count and
    /// log instead of `allowed`.
    pub refused: Option<Outcome>,
}

/// Envoy's response code details for the rate limit filter's answers.
const RATE_LIMITED_DETAILS: &[u8] = b"request_rate_limited";
const RATE_LIMITER_ERROR_DETAILS: &[u8] = b"rate_limiter_error";

/// Whether the response's status is one the rate limit filter may have
/// answered with (a `429`, or a `5xx` with `failureModeDeny`): only then
/// is Envoy's response code detail worth reading.
pub fn may_be_rate_limit_service(plan: &Plan, headers: &[Header<'_>]) -> bool {
    plan.gateway.rate_limit_service.is_some()
        && matches!(
            status(headers),
            Some(s) if s == b"429" || s.first() == Some(&b'5')
        )
}

fn status<'h>(headers: &[Header<'h>]) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(n, _)| *n == ":status")
        .map(|&(_, v)| v)
}

/// The edits for a response of a request that went on. `code_details` is
/// Envoy's response code detail, read only when
/// [`may_be_rate_limit_service`].
pub fn edits<'h>(
    plan: &Plan,
    after: After,
    headers: &'h [Header<'h>],
    code_details: Option<&[u8]>,
) -> Edits<'h> {
    let mut out = Edits::default();
    if let Some(idx) = after.endpoint {
        out.remove = super::response_removals(plan, idx, headers.iter().map(|&(n, _)| n));
        if let Some(details) = code_details {
            rate_limit_service_refusal(&mut out, headers, details);
        }
    }
    // An upstream header the endpoint lets through wins over CORS's, as
    // http-proxy's copy does in Backstage; but `Vary` is merged, so a cache
    // still keys the answer by `Origin`.
    for (name, value) in after.cors {
        let kept: Vec<&str> = headers
            .iter()
            .filter(|&&(n, _)| n == name && !out.remove.iter().any(|r| r.as_ref() == n))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .collect();
        if kept.is_empty() {
            out.add.push((name, value));
        } else if name == "vary" {
            if let Some(merged) = merge_vary(&kept, &value) {
                out.set.push((Cow::Borrowed("vary"), Cow::Owned(merged)));
            }
        }
    }
    out
}

/// The upstream's `Vary` values with CORS's added, unless every one of
/// them is already there (or `*`): `None` when nothing changes.
fn merge_vary(upstream: &[&str], cors: &str) -> Option<String> {
    let have: Vec<&str> = upstream
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if have.contains(&"*") {
        return None;
    }
    let missing: Vec<&str> = cors
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty() && !have.iter().any(|h| h.eq_ignore_ascii_case(c)))
        .collect();
    if missing.is_empty() {
        return None;
    }
    Some(
        have.into_iter()
            .chain(missing)
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// With `gateway.rateLimitService`, Envoy's rate limit filter may have
/// answered instead of the upstream: its `429` (`request_rate_limited`) is
/// the endpoint's budget spent, its error (`rate_limiter_error`, with
/// `failureModeDeny`) the service unreachable. Either is recorded as the
/// filter's own refusals are, and the `429` gets `retry-after` from
/// Envoy's `x-ratelimit-reset` (the service's time to the next window), as
/// the filter's own `429` has it.
fn rate_limit_service_refusal<'h>(out: &mut Edits<'h>, headers: &'h [Header<'h>], details: &[u8]) {
    let reason = match details {
        RATE_LIMITED_DETAILS => Reason::RateLimited,
        RATE_LIMITER_ERROR_DETAILS => Reason::RateLimitServiceError,
        _ => return,
    };
    out.refused = Some(Outcome::Denied(reason));
    let reset = headers
        .iter()
        .find(|(n, _)| *n == "x-ratelimit-reset")
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
    if let (Reason::RateLimited, Some(seconds)) = (reason, reset) {
        out.set
            .push((Cow::Borrowed("retry-after"), Cow::Borrowed(seconds)));
    }
}
