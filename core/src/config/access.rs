//! Parses `gateway.access` into [`crate::access::Policy`] per endpoint.

use super::endpoint::for_each_endpoint_entry;
use super::json::*;
use super::{Credentials, Endpoint};
use crate::access::{Matcher, Policy, Rule};
use serde_json::Value;

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
                                    } else if method.bytes().any(|b| b.is_ascii_lowercase()) {
                                        errs.add(
                                            &format!("{ip}.methods[{j}]"),
                                            format!("'{method}' must be written in upper case ('{}'), as methods are registered", method.to_ascii_uppercase()),
                                        );
                                    }
                                }
                                Some(list)
                            });
                            let path = match opt_string(errs, r, &ip, "path") {
                                None => None,
                                Some(s)
                                    if s.starts_with('/')
                                        && s.bytes().all(|b| b.is_ascii_graphic())
                                        && !s.contains(['?', '#', '%', '\\', ';'])
                                        && !s.contains("//")
                                        && !s.split('/').any(|seg| seg == "." || seg == "..") =>
                                {
                                    Some(s.trim_end_matches('/').to_string())
                                }
                                Some(_) => {
                                    errs.add(&join(&ip, "path"), "must be a path below the endpoint, starting with '/', in visible ASCII (no space, query, '%', ';', '\\', '//', '.' or '..' segment: a path no client spelling matches is a rule that never applies)");
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
            endpoint.access = Some(Policy { allow, rules });
        },
    );
}

#[cfg(test)]
mod tests;
