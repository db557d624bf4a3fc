//! An endpoint's budgets on a forwarded request: handed over to Envoy's
//! rate limit filter (`gateway.rateLimitService`), or spent here in the
//! shared data every worker sees (`gateway.rateLimits`), where a refusal
//! is a 429 with `retry-after`.

use std::borrow::Cow;

use super::{Forward, Header, Request};
use crate::config::Plan;
use crate::ratelimit::{self, Admit, ENDPOINT_HEADER, PRINCIPAL_HEADER};
use crate::reply::{Reason, Reply};
use crate::shared_data::SharedData;

/// Every shared-data key the filter's own budgets use, for the filter to
/// create when it loads its configuration (with
/// [`ratelimit::NEW_COUNTER`]). None with `gateway.rateLimitService`: the
/// service counts, and 1,024 unused counters per endpoint would only take
/// the host's memory. An endpoint's name in the keys is its normalised key
/// (keys that differ only in case are refused at load).
pub fn counter_keys(plan: &Plan) -> Vec<String> {
    if plan.gateway.rate_limit_service.is_some() {
        return Vec::new();
    }
    plan.endpoints
        .iter()
        .filter_map(|e| e.rate_limit.as_ref().map(|l| ratelimit::keys(&e.key, l)))
        .flatten()
        .collect()
}

/// Spends the forwarded request's budgets here, without the service: those
/// of every endpoint under whose target it lands, all or none. `Some` 429
/// when one of them is spent.
pub(super) fn spend(
    plan: &Plan,
    shared: &mut dyn SharedData,
    req: &Request<'_>,
    fwd: &Forward<'_>,
) -> Option<Reply> {
    let budgets: Vec<(&str, &ratelimit::RateLimit)> = fwd
        .landed
        .iter()
        .filter_map(|&j| plan.endpoints.get(j))
        .filter_map(|e| e.rate_limit.as_ref().map(|l| (e.key.as_str(), l)))
        .collect();
    if budgets.is_empty() {
        return None;
    }
    let who = fwd.principal.as_ref().map(ratelimit::budget_principal);
    let Admit::No { retry_after_s } =
        ratelimit::admit_all(shared, &budgets, who.as_deref(), req.now_ms)
    else {
        return None;
    };
    let mut r = req.error(
        429,
        Reason::RateLimited,
        "TooManyRequestsError",
        "Too many requests to this endpoint",
    );
    r.headers
        .push(("retry-after".to_string(), retry_after_s.to_string()));
    Some(r)
}

/// With `gateway.rateLimitService`, the request edits that hand Envoy's
/// rate limit filter the endpoint and the principal
/// ([`crate::config::ENDPOINT_HEADER`], `…PRINCIPAL_HEADER`):
/// set for an endpoint with budgets (the principal only when there is
/// one), and a client's own copies removed everywhere else, so that no
/// caller can choose the descriptors its request is counted under (also
/// without the service, so that a rate limit configuration left behind
/// reads nothing a client sent). Returns whether the endpoint's budgets
/// were handed over (the service may refuse it).
pub fn hand_to_service(plan: &Plan, headers: &[Header<'_>], fwd: &mut Forward<'_>) -> bool {
    let limited = plan.endpoints.get(fwd.endpoint).filter(|e| {
        e.rate_limit.as_ref().is_some_and(|l| !l.is_empty())
            && plan.gateway.rate_limit_service.is_some()
    });
    let mut set: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::new();
    if let Some(e) = limited {
        set.push((
            Cow::Borrowed(ENDPOINT_HEADER),
            Cow::Owned(ratelimit::descriptor_value(&e.raw_key).into_owned()),
        ));
        if let Some(p) = &fwd.principal {
            set.push((
                Cow::Borrowed(PRINCIPAL_HEADER),
                Cow::Owned(
                    ratelimit::descriptor_value(&ratelimit::budget_principal(p)).into_owned(),
                ),
            ));
        }
    }
    for name in [ENDPOINT_HEADER, PRINCIPAL_HEADER] {
        let sent = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        let setting = set.iter().any(|(n, _)| n == name);
        if sent && !setting && !fwd.remove.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            fwd.remove.push(Cow::Borrowed(name));
        }
    }
    // Before the destination, which stays last.
    for (i, edit) in set.into_iter().enumerate() {
        fwd.set.insert(i, edit);
    }
    limited.is_some()
}

#[cfg(test)]
mod tests;
