//! What the gateway reads of an app-config: its sections (nothing else is
//! resolved or refused), and within them the values it cannot do without.

use serde_json::{Map, Value};

/// The sections the gateway reads: `proxy`, `backend.baseUrl`,
/// `backend.auth`, `backend.cors` (the filter answers CORS) and `gateway`.
/// Nothing else is resolved or refused (a database CA from `$file`,
/// GitHub App keys from unset variables).
pub const GATEWAY_SECTIONS: [&[&str]; 5] = [
    &["proxy"],
    &["backend", "baseUrl"],
    &["backend", "auth"],
    &["backend", "cors"],
    &["gateway"],
];

/// An app-config cut down to [`GATEWAY_SECTIONS`]: the directives to
/// resolve in a merged one, the filter's configuration in a resolved one.
pub fn gateway_sections(config: &Value) -> Value {
    let mut out = Value::Object(Map::new());
    for path in GATEWAY_SECTIONS {
        let Some(v) = path.iter().try_fold(config, |v, k| v.get(*k)) else {
            continue;
        };
        let mut node = &mut out;
        for (i, k) in path.iter().enumerate() {
            let Value::Object(m) = node else { break };
            let last = i + 1 == path.len();
            node = m.entry((*k).to_string()).or_insert_with(|| {
                if last {
                    v.clone()
                } else {
                    Value::Object(Map::new())
                }
            });
        }
    }
    out
}

/// Where an unset variable is an error rather than an absent value: the
/// values the gateway cannot do without (a target, a credential, where the
/// Backstage backend is), and every value whose absence would widen access
/// or void a limit (the `gateway` section's policies and budgets, a rule's
/// `path` that would then match every path; `backend.cors`, whose absent
/// `origin` allows every origin; an entry's `accessRestrictions`).
pub(super) fn needed(path: &str) -> bool {
    let within = |section: &str| {
        path == section
            || path
                .strip_prefix(section)
                .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
    };
    if within("gateway") || within("backend.cors") {
        return true;
    }
    if path.starts_with("backend.auth.externalAccess[") && path.contains("].accessRestrictions") {
        return true;
    }
    if let Some(rest) = path
        .strip_prefix("proxy.endpoints.")
        .or_else(|| path.strip_prefix("proxy.").filter(|r| r.starts_with('/')))
    {
        return !rest.contains('.') || rest.ends_with(".target");
    }
    if matches!(path, "backend.baseUrl" | "gateway.backendUrl") {
        return true;
    }
    if path.starts_with("backend.auth.keys[") && path.ends_with("].secret") {
        return true;
    }
    path.starts_with("backend.auth.externalAccess[")
        && [
            ".type",
            ".options.token",
            ".options.secret",
            ".options.subject",
            ".options.url",
        ]
        .iter()
        .any(|f| path.ends_with(f))
}

#[cfg(test)]
mod tests;
