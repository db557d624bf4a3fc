//! Parses `gateway.access` into [`crate::access::Policy`] per endpoint.

use super::endpoint::for_each_endpoint_entry;
use super::json::*;
use super::{Credentials, Endpoint};
use crate::access::{Matcher, Policy, Rule};
use crate::permission::{Action, Permission};
use serde_json::Value;

/// `permission`: a name, or `{ name, action }`. A name holds no whitespace
/// or comma (an access restriction could never list it: Backstage splits
/// those lists on spaces and commas).
fn parse_permission(errs: &mut Errors, path: &str, v: &Value) -> Option<Permission> {
    let (name, action) = match v {
        Value::String(s) => (s.as_str(), None),
        Value::Object(o) => {
            check_keys(errs, path, o, &["name", "action"]);
            let Some(name) = opt_string(errs, o, path, "name") else {
                if !o.contains_key("name") {
                    errs.add(&join(path, "name"), "is required");
                }
                return None;
            };
            let action = match opt_string(errs, o, path, "action") {
                None if o.contains_key("action") => return None,
                None => None,
                Some(a) => match Action::parse(a) {
                    Some(a) => Some(a),
                    None => {
                        errs.add(
                            &join(path, "action"),
                            format!("unknown action '{a}'; expected one of create, read, update, delete"),
                        );
                        return None;
                    }
                },
            };
            (name, action)
        }
        other => {
            errs.add(
                path,
                format!(
                    "must be a permission name or {{ name, action }}, but is of type {}",
                    type_name(other)
                ),
            );
            return None;
        }
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
        let at = if v.is_object() {
            join(path, "name")
        } else {
            path.to_string()
        };
        errs.add(
            &at,
            "must be a permission name in visible ASCII, without spaces or commas",
        );
        return None;
    }
    Some(Permission {
        name: name.to_string(),
        action,
    })
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

/// One entry of a policy's `rules`; `None` when it has an error (reported:
/// the load fails).
fn parse_rule(errs: &mut Errors, ip: &str, item: &Value) -> Option<Rule> {
    let r = as_object(errs, ip, item)?;
    check_keys(errs, ip, r, &["methods", "path", "allow", "permission"]);
    let methods = r.get("methods").and_then(|m| {
        let list = string_list(errs, &join(ip, "methods"), m)?;
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
    let path = match opt_string(errs, r, ip, "path") {
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
            errs.add(&join(ip, "path"), "must be a path below the endpoint, starting with '/', in visible ASCII (no space, query, '%', ';', '\\', '//', '.' or '..' segment: a path no client spelling matches is a rule that never applies)");
            None
        }
    };
    if !r.contains_key("allow") && !r.contains_key("permission") {
        errs.add(
            &join(ip, "allow"),
            "is required (or a permission): a rule decides who may call",
        );
        return None;
    }
    let allow = r
        .get("allow")
        .map(|a| parse_matchers(errs, &join(ip, "allow"), a));
    let permission = r
        .get("permission")
        .map(|p| parse_permission(errs, &join(ip, "permission"), p));
    // A part that failed to parse drops the rule
    // (its error is reported): the load fails.
    if let (Some(None), _) | (_, Some(None)) = (&allow, &permission) {
        return None;
    }
    Some(Rule {
        methods,
        path,
        allow: allow.flatten(),
        permission: permission.flatten(),
    })
}

pub(super) fn parse_access(errs: &mut Errors, v: &Value, endpoints: &mut [Endpoint]) {
    for_each_endpoint_entry(
        errs,
        "gateway.access",
        v,
        endpoints,
        |errs, kp, endpoint, spec_obj| {
            check_keys(errs, kp, spec_obj, &["allow", "permission", "rules"]);
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
            let permission = spec_obj
                .get("permission")
                .and_then(|p| parse_permission(errs, &join(kp, "permission"), p));
            let mut rules = Vec::new();
            if let Some(list) = spec_obj.get("rules") {
                let rp = join(kp, "rules");
                match list {
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            if let Some(rule) = parse_rule(errs, &format!("{rp}[{i}]"), item) {
                                rules.push(rule);
                            }
                        }
                    }
                    other => errs.add(
                        &rp,
                        format!("must be an array, but is of type {}", type_name(other)),
                    ),
                }
            }
            endpoint.access = Some(Policy {
                allow,
                permission,
                rules,
            });
        },
    );
}

#[cfg(test)]
mod tests;
