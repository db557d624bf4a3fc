//! The load checks across sections that keep policies and budgets from
//! being voided: `gateway.rateLimits` and `gateway.access` onto their
//! endpoints, an endpoint inside a policied or budgeted target saying what
//! it has of its own, budgets with someone to count, principals no two
//! sources can produce.

use serde_json::{Map, Value};

use super::endpoint::ParsedProxy;
use super::json::*;
use super::targets::{same_target, target_contains, targets_nest};
use super::{access, rate_limits, AuthConfig, Credentials, Endpoint, Gateway};

/// `gateway.rateLimits` and `gateway.access` onto their endpoints, and
/// the load checks that keep them from being voided: a policy or budget
/// follows where a request lands (`docs/contract.md#where-a-request-lands-decides`),
/// so an endpoint inside a policied or budgeted target must say what it
/// has of its own, and a budget must have someone to count.
pub(super) fn parse_policies(
    errs: &mut Errors,
    warnings: &mut Vec<String>,
    gateway_obj: &Map<String, Value>,
    gateway: &Gateway,
    open_everywhere: bool,
    auth: &AuthConfig,
    proxy: ParsedProxy,
) -> Vec<Endpoint> {
    let service = gateway.rate_limit_service.is_some();
    let valid = proxy.endpoints.len();
    let mut endpoints = proxy.endpoints;
    endpoints.extend(proxy.stand_ins);
    if let Some(v) = gateway_obj.get("rateLimits") {
        rate_limits::parse_rate_limits(errs, v, &mut endpoints, service);
    }
    if let Some(v) = gateway_obj.get("access") {
        access::parse_access(errs, v, &mut endpoints);
    }
    // The stand-ins of refused endpoints served their entries' checks; the
    // checks below are about where requests land, which only valid
    // endpoints decide.
    endpoints.truncate(valid);
    let no_budget = |e: &Endpoint| e.rate_limit.as_ref().is_none_or(|l| l.is_empty());
    if service && endpoints.iter().all(no_budget) {
        warnings.push(
            "gateway.rateLimitService is set but no endpoint has a budget in gateway.rateLimits: the service is never asked".to_string(),
        );
    }
    let policed = gateway_obj.contains_key("access") || gateway_obj.contains_key("rateLimits");
    if policed {
        refuse_shared_principals(errs, auth);
    }
    require_own_entry(
        errs,
        &endpoints,
        "gateway.access",
        |e| e.access.is_some(),
        "access policy",
        "{}",
    );
    require_own_entry(
        errs,
        &endpoints,
        "gateway.rateLimits",
        |e| e.rate_limit.is_some(),
        "budget",
        "{}",
    );
    for e in endpoints.iter() {
        check_endpoint(errs, &endpoints, e, open_everywhere, service);
    }
    endpoints
}

/// The checks of one endpoint's budget and rules against the endpoints
/// its requests can land under, or that land under it.
fn check_endpoint(
    errs: &mut Errors,
    endpoints: &[Endpoint],
    e: &Endpoint,
    open_everywhere: bool,
    service: bool,
) {
    let counts_principals = e
        .rate_limit
        .as_ref()
        .is_some_and(|l| l.per_principal.is_some());
    let anonymous =
        open_everywhere || e.credentials == Credentials::DangerouslyAllowUnauthenticated;
    if counts_principals && anonymous && e.access.is_none() {
        errs.add(
            &format!("gateway.rateLimits.{}.perPrincipal", e.raw_key),
            if open_everywhere {
                "backend.auth.dangerouslyDisableDefaultAuthPolicy is true, so no token is read for this endpoint and a per-principal budget never counts; give the endpoint an access policy (which reads one) or use total".to_string()
            } else {
                format!("endpoint '{}' is dangerously-allow-unauthenticated, so no token is read and a per-principal budget never counts; use total", e.raw_key)
            },
        );
    }
    let related = |o: &&Endpoint| !std::ptr::eq(*o, e) && targets_nest(e, o);
    // Requests through an endpoint that reads no token, landing under
    // this one's target, would pass its per-principal budget uncounted.
    if counts_principals {
        for o in endpoints.iter().filter(related) {
            let o_anonymous =
                open_everywhere || o.credentials == Credentials::DangerouslyAllowUnauthenticated;
            if o_anonymous && o.access.is_none() {
                errs.add(
                    &format!("gateway.rateLimits.{}.perPrincipal", e.raw_key),
                    format!("requests through '{}', which reads no token, land under this endpoint's target and would pass this per-principal budget uncounted; make '{}' read one (credentials, or with dangerouslyDisableDefaultAuthPolicy an access policy) or use total", o.raw_key, o.raw_key),
                );
            }
        }
    }
    // A rule's path is read below the endpoint's key for its own
    // requests; with a pathRewrite the upstream path differs, so the
    // rule could not be read for requests that land here through
    // another endpoint.
    let path_rules = e
        .access
        .as_ref()
        .is_some_and(|a| a.rules.iter().any(|r| r.path.is_some()));
    if path_rules && e.path_rewrite.is_some() {
        if let Some(o) = endpoints.iter().find(related) {
            errs.add(
                &format!("gateway.access.{}.rules", e.raw_key),
                format!("this endpoint rewrites its paths (pathRewrite), so its rules' paths, read below its key, cannot be read for requests that land under its target through '{}'; give the endpoints targets that do not nest, or rules without a path here", o.raw_key),
            );
        }
    }
    if service && e.rate_limit.is_some() {
        for o in endpoints.iter().filter(related) {
            errs.add(
                &format!("gateway.rateLimits.{}", e.raw_key),
                format!("the targets of '{}' and '{}' nest, so requests through one land under the other's target; with gateway.rateLimitService a request is counted for one endpoint only, so budgets cannot follow where it lands: give the endpoints targets that do not nest, or count here without the service", e.raw_key, o.raw_key),
            );
        }
    }
}

/// The principals a configured source can produce: a static token's or a
/// legacy secret's subject exactly, or every subject under a `jwks`
/// entry's `external:[<prefix>:]`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Produces {
    Exactly(String),
    Under(String),
}

impl Produces {
    fn overlaps(&self, other: &Produces) -> bool {
        match (self, other) {
            (Produces::Exactly(a), Produces::Exactly(b)) => a == b,
            (Produces::Exactly(a), Produces::Under(n))
            | (Produces::Under(n), Produces::Exactly(a)) => a.starts_with(n.as_str()),
            (Produces::Under(a), Produces::Under(b)) => {
                a.starts_with(b.as_str()) || b.starts_with(a.as_str())
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Produces::Exactly(s) => format!("'{s}'"),
            Produces::Under(n) => format!("'{n}…'"),
        }
    }
}

/// Where policies or budgets name principals, no two configured sources
/// (static tokens, legacy secrets, `jwks` entries) may produce the same
/// principal: a `jwks` entry without `subjectPrefix` could otherwise
/// present `sub: corp:deployer` and be the caller another entry's prefix
/// `corp` names, or `sub: backstage-plugin` and be every legacy secret.
/// Static tokens that share a subject (kept for rotation) are one source.
fn refuse_shared_principals(errs: &mut Errors, auth: &AuthConfig) {
    let mut sources: Vec<(String, Produces)> = Vec::new();
    let mut seen_static: Vec<&str> = Vec::new();
    for t in &auth.static_tokens {
        if !seen_static.contains(&t.subject.as_str()) {
            seen_static.push(&t.subject);
            sources.push((
                format!("the static token of subject '{}'", t.subject),
                Produces::Exactly(t.subject.clone()),
            ));
        }
    }
    let mut seen_legacy: Vec<&str> = Vec::new();
    for l in &auth.legacy {
        if !seen_legacy.contains(&l.subject.as_str()) {
            seen_legacy.push(&l.subject);
            sources.push((
                format!("the legacy secret of subject '{}'", l.subject),
                Produces::Exactly(l.subject.clone()),
            ));
        }
    }
    for j in &auth.jwks {
        let under = match &j.subject_prefix {
            Some(p) => format!("external:{p}:"),
            None => "external:".to_string(),
        };
        sources.push((
            match &j.subject_prefix {
                Some(p) => format!("the jwks entry with subjectPrefix '{p}'"),
                None => "a jwks entry without subjectPrefix".to_string(),
            },
            Produces::Under(under),
        ));
    }
    for (i, (a_name, a)) in sources.iter().enumerate() {
        for (b_name, b) in sources.iter().skip(i + 1) {
            if a.overlaps(b) {
                errs.add(
                    "backend.auth.externalAccess",
                    format!(
                        "{a_name} and {b_name} can both produce the principal {}, so a policy or budget naming it could not tell them apart; give the jwks entries distinct subjectPrefix values and the tokens subjects outside them",
                        if matches!(a, Produces::Exactly(_)) { a.describe() } else { b.describe() }
                    ),
                );
            }
        }
    }
}

/// An endpoint whose target lies under, or is, the target of an endpoint
/// that `holds` a policy of `section` is held to that policy too; it must
/// say so with an entry of its own (its own policy, or `empty`: nothing of
/// its own), never be held to it unawares.
fn require_own_entry(
    errs: &mut Errors,
    endpoints: &[Endpoint],
    section: &str,
    holds: impl Fn(&Endpoint) -> bool,
    what: &str,
    empty: &str,
) {
    for a in endpoints.iter().filter(|a| holds(a)) {
        for b in endpoints.iter().filter(|b| {
            !std::ptr::eq(*b, a) && !holds(b) && (target_contains(a, b) || same_target(a, b))
        }) {
            errs.add(
                &format!("{section}.{}", a.raw_key),
                format!(
                    "the target of '{}' lies under this endpoint's target, so requests through '{}' are held to this {what} too; give '{}' an entry in {section}, its own {what} or {empty} for nothing of its own",
                    b.raw_key, b.raw_key, b.raw_key
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests;
