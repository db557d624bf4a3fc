//! `gateway.access`: who may call each endpoint, beyond Backstage's "any
//! valid credential" (backstage/backstage#17513, #24551). The `proxy`
//! section stays exactly Backstage's; the policy sits under `gateway`,
//! keyed by the endpoint's key:
//!
//! ```json
//! "gateway": { "access": {
//!   "/pagerduty": {
//!     "allow": ["user"],
//!     "rules": [{ "methods": ["POST", "PUT"], "path": "/incidents",
//!                 "allow": ["group:default/sre", "plugin:scaffolder"] }]
//!   } } }
//! ```
//!
//! A principal matches `user`, `plugin` or `external` (its kind: external is
//! every service principal that is not a plugin: static tokens, legacy
//! secrets, `jwks` callers), `user:<ref>`, `plugin:<id>`, `subject:<s>` (a
//! service principal's subject as Backstage gives it, e.g. a static token's
//! configured subject) or `group:<ref>`, which holds when the user token's
//! `ent` claim lists the group. Only full user tokens carry `ent`; a plugin
//! token acting for a user (`obo`) carries a limited user token, which does
//! not: for it no `group:` matcher holds (the request is refused unless
//! another matcher allows it). Entity references compare without regard to
//! case, as Backstage's do.
//!
//! The first rule whose methods and path both match the request decides
//! (the path below the endpoint, read as servers read it: segment by
//! segment, unreserved `%XX` and `%2F` decoded, `;` parameters dropped, any
//! letter case, so `/%69ncidents` is `/incidents`); with none,
//! the endpoint's `allow` does; with no `allow` either, any principal the
//! endpoint's credentials admit. A policy always needs credentials, even
//! with `dangerouslyDisableDefaultAuthPolicy`; an endpoint that is
//! `dangerously-allow-unauthenticated` cannot have one.

use super::json::*;
use super::{Credentials, Endpoint};
use crate::auth::{Ownership, Principal};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    AnyUser,
    AnyPlugin,
    AnyExternal,
    User(String),
    Plugin(String),
    Subject(String),
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `None`: every method.
    pub methods: Option<Vec<String>>,
    /// Lower-cased, leading `/`, no trailing `/`; `None`: every path.
    pub path: Option<String>,
    pub allow: Vec<Matcher>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    /// `None`: any principal the credentials admit.
    pub allow: Option<Vec<Matcher>>,
    pub rules: Vec<Rule>,
}

impl Matcher {
    fn holds(&self, principal: &Principal, ownership: &Ownership) -> bool {
        match (self, principal) {
            (Matcher::AnyUser, Principal::User(_)) => true,
            (Matcher::User(r), Principal::User(sub)) => sub.eq_ignore_ascii_case(r),
            (Matcher::Group(g), Principal::User(_)) => ownership
                .as_ref()
                .is_some_and(|ent| ent.iter().any(|e| e.eq_ignore_ascii_case(g))),
            (Matcher::AnyPlugin, Principal::Service(s)) => is_plugin(s),
            (Matcher::AnyExternal, Principal::Service(s)) => !is_plugin(s),
            (Matcher::Plugin(id), Principal::Service(s)) => s
                .strip_prefix("plugin:")
                .is_some_and(|p| p.eq_ignore_ascii_case(id)),
            (Matcher::Subject(subject), Principal::Service(s)) => s == subject,
            _ => false,
        }
    }
}

fn is_plugin(subject: &str) -> bool {
    subject.starts_with("plugin:")
}

impl AccessPolicy {
    /// Whether `principal` may make this request; `rest` is the path below
    /// the endpoint's key (`/incidents/1`, or empty).
    pub fn allows(
        &self,
        method: &str,
        rest: &str,
        principal: &Principal,
        ownership: &Ownership,
    ) -> bool {
        let rule = self.rules.iter().find(|r| {
            r.methods
                .as_ref()
                .is_none_or(|m| m.iter().any(|m| m == method))
                && r.path
                    .as_ref()
                    .is_none_or(|p| crate::routing::lands_under(rest, p))
        });
        let allow = match rule {
            Some(r) => Some(&r.allow),
            None => self.allow.as_ref(),
        };
        allow.is_none_or(|list| list.iter().any(|m| m.holds(principal, ownership)))
    }
}

fn parse_matchers(errs: &mut Errors, path: &str, v: &Value) -> Option<Vec<Matcher>> {
    let Value::Array(items) = v else {
        errs.add(
            path,
            format!(
                "must be an array of principals, but is of type {}",
                type_name(v)
            ),
        );
        return None;
    };
    if items.is_empty() {
        errs.add(
            path,
            "must not be empty (an endpoint nobody may call is better removed)",
        );
        return None;
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let Some(s) = item.as_str() else {
            errs.add(
                &ip,
                format!("must be a string, but is of type {}", type_name(item)),
            );
            continue;
        };
        let m = match s {
            "user" => Some(Matcher::AnyUser),
            "plugin" => Some(Matcher::AnyPlugin),
            "external" => Some(Matcher::AnyExternal),
            _ => match s.split_once(':') {
                Some(("user", r)) if is_entity_ref(r) => {
                    Some(Matcher::User(format!("user:{}", r.to_ascii_lowercase())))
                }
                Some(("group", r)) if is_entity_ref(r) => {
                    Some(Matcher::Group(format!("group:{}", r.to_ascii_lowercase())))
                }
                Some(("plugin", id)) if is_non_whitespace(id) => {
                    Some(Matcher::Plugin(id.to_string()))
                }
                Some(("subject", sub)) if is_non_whitespace(sub) => {
                    Some(Matcher::Subject(sub.to_string()))
                }
                _ => None,
            },
        };
        match m {
            Some(m) => out.push(m),
            None => errs.add(
                &ip,
                format!("'{s}' is not a principal; expected user, plugin, external, user:<namespace>/<name>, group:<namespace>/<name>, plugin:<id> or subject:<subject>"),
            ),
        }
    }
    Some(out)
}

/// `<namespace>/<name>`, as entity references are written after the kind.
fn is_entity_ref(r: &str) -> bool {
    r.split_once('/').is_some_and(|(ns, name)| {
        !ns.is_empty() && !name.is_empty() && !name.contains('/') && is_non_whitespace(r)
    })
}

/// A `gateway` section keyed by endpoint (`access`, `rateLimits`): calls
/// `f` with each entry's JSON path, its endpoint and its object; a key that
/// names no endpoint is an error at its path.
fn for_each_endpoint_entry(
    errs: &mut Errors,
    p: &str,
    v: &Value,
    endpoints: &mut [Endpoint],
    mut f: impl FnMut(&mut Errors, &str, &mut Endpoint, &Map<String, Value>),
) {
    let Some(obj) = as_object(errs, p, v) else {
        return;
    };
    for (key, spec) in obj {
        let kp = format!("{p}.{key}");
        let norm = normalise_key(key);
        let Some(endpoint) = endpoints
            .iter_mut()
            .find(|e| e.key.eq_ignore_ascii_case(&norm))
        else {
            errs.add(&kp, "names no endpoint under proxy.endpoints");
            continue;
        };
        if let Some(spec_obj) = as_object(errs, &kp, spec) {
            f(errs, &kp, endpoint, spec_obj);
        }
    }
}

pub(super) fn parse_access(errs: &mut Errors, v: &Value, endpoints: &mut [Endpoint]) {
    for_each_endpoint_entry(
        errs,
        "gateway.access",
        v,
        endpoints,
        |errs, kp, endpoint, spec_obj| {
            check_keys(errs, kp, spec_obj, &["allow", "rules"]);
            if endpoint.credentials == Credentials::DangerouslyAllowUnauthenticated {
                errs.add(
                kp,
                format!("endpoint '{}' is dangerously-allow-unauthenticated: an access policy needs credentials", endpoint.raw_key),
            );
                return;
            }
            let allow = spec_obj
                .get("allow")
                .and_then(|a| parse_matchers(errs, &join(kp, "allow"), a));
            let mut rules = Vec::new();
            if let Some(list) = spec_obj.get("rules") {
                let rp = join(kp, "rules");
                match list {
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            let ip = format!("{rp}[{i}]");
                            let Some(r) = as_object(errs, &ip, item) else {
                                continue;
                            };
                            check_keys(errs, &ip, r, &["methods", "path", "allow"]);
                            let methods = r.get("methods").and_then(|m| {
                                let list = string_list(errs, &join(&ip, "methods"), m)?;
                                for (j, method) in list.iter().enumerate() {
                                    if !is_token(method) {
                                        errs.add(
                                            &format!("{ip}.methods[{j}]"),
                                            "must be an HTTP method",
                                        );
                                    }
                                }
                                Some(list)
                            });
                            let path = match opt_string(errs, r, &ip, "path") {
                                None => None,
                                Some(s)
                                    if s.starts_with('/')
                                        && !s.contains(['?', '#', '%', '\\'])
                                        && !s.contains("//") =>
                                {
                                    Some(s.trim_end_matches('/').to_ascii_lowercase())
                                }
                                Some(_) => {
                                    errs.add(&join(&ip, "path"), "must be a path below the endpoint, starting with '/' (no query, '%', '\\' or '//')");
                                    None
                                }
                            };
                            let Some(allow) = r.get("allow") else {
                                errs.add(&join(&ip, "allow"), "is required");
                                continue;
                            };
                            if let Some(allow) = parse_matchers(errs, &join(&ip, "allow"), allow) {
                                rules.push(Rule {
                                    methods,
                                    path,
                                    allow,
                                });
                            }
                        }
                    }
                    other => errs.add(
                        &rp,
                        format!("must be an array, but is of type {}", type_name(other)),
                    ),
                }
            }
            endpoint.access = Some(AccessPolicy { allow, rules });
        },
    );
}

/// `gateway.rateLimits`: `{"/key": {"perPrincipal": {"requests": n,
/// "seconds": s}, "total": {...}}}` (see [`crate::ratelimit`]).
/// Window lengths Envoy's rate limit service speaks (its units: second,
/// minute, hour, day), for `gateway.rateLimitService`.
pub const SERVICE_WINDOWS: [(u64, &str); 4] = [
    (1, "second"),
    (60, "minute"),
    (3600, "hour"),
    (86_400, "day"),
];

/// `service`: budgets go to the rate limit service, whose windows are
/// whole units.
pub(super) fn parse_rate_limits(
    errs: &mut Errors,
    v: &Value,
    endpoints: &mut [Endpoint],
    service: bool,
) {
    for_each_endpoint_entry(
        errs,
        "gateway.rateLimits",
        v,
        endpoints,
        |errs, kp, endpoint, spec_obj| {
            check_keys(errs, kp, spec_obj, &["perPrincipal", "total"]);
            let budget = |errs: &mut Errors, name: &str| -> Option<crate::ratelimit::Budget> {
                let bp = join(kp, name);
                let b = as_object(errs, &bp, spec_obj.get(name)?)?;
                check_keys(errs, &bp, b, &["requests", "seconds"]);
                let requests = opt_uint(errs, b, &bp, "requests", 1, 1_000_000_000);
                let seconds = opt_uint(errs, b, &bp, "seconds", 1, 86_400);
                match (requests, seconds) {
                    (Some(_), Some(seconds))
                        if service && !SERVICE_WINDOWS.iter().any(|(s, _)| *s == seconds) =>
                    {
                        errs.add(
                            &join(&bp, "seconds"),
                            "with gateway.rateLimitService the window must be one of the service's units: 1, 60, 3600 or 86400 seconds",
                        );
                        None
                    }
                    (Some(requests), Some(seconds)) => Some(crate::ratelimit::Budget {
                        requests,
                        window_ms: seconds * 1000,
                    }),
                    _ => {
                        errs.add(
                            &bp,
                            "needs requests (1 to 1000000000) and seconds (1 to 86400)",
                        );
                        None
                    }
                }
            };
            let per_principal = budget(errs, "perPrincipal");
            let total = budget(errs, "total");
            if per_principal.is_none() && total.is_none() {
                errs.add(kp, "needs perPrincipal or total");
                return;
            }
            endpoint.rate_limit = Some(crate::ratelimit::RateLimit {
                per_principal,
                total,
            });
        },
    );
}

#[cfg(test)]
mod tests;
