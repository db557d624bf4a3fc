//! `backend.cors`, read as Backstage's `readCorsOptions` reads it: each of
//! `origin`, `methods`, `allowedHeaders` and `exposedHeaders` is a string
//! or a list of strings, and a false-like value (`false`, `""`) counts as
//! not set; `origin` entries are minimatch globs.

use super::json::*;
use crate::cors::glob::Pattern;
use crate::cors::NULL_ORIGIN;
use crate::cors::{Policy, DEFAULT_METHODS};
use serde_json::{Map, Value};

const KEYS: [&str; 8] = [
    "origin",
    "methods",
    "allowedHeaders",
    "exposedHeaders",
    "credentials",
    "maxAge",
    "preflightContinue",
    "optionsSuccessStatus",
];

/// `origin`: the patterns (`None`: every origin), with a warning for each
/// that matches nothing a browser sends, or allows `null`.
fn origins(
    errs: &mut Errors,
    warnings: &mut Vec<String>,
    obj: &Map<String, Value>,
) -> Option<Vec<Pattern>> {
    let p = "backend.cors";
    match string_array(errs, obj, p, "origin") {
        None => {
            if obj.contains_key("origin") {
                warnings.push(format!(
                    "{p}.origin is empty or false: as in Backstage, every origin is then allowed (`access-control-allow-origin: *`)"
                ));
            }
            None
        }
        Some(list) => {
            let single = matches!(obj.get("origin"), Some(Value::String(_)));
            let mut patterns = Vec::new();
            for (i, s) in list.iter().enumerate() {
                match Pattern::compile(s) {
                    Ok(pat) => {
                        if s == NULL_ORIGIN {
                            warnings.push(format!(
                                "{p}.origin: 'null' allows the origin sandboxed iframes, file: pages and some redirects send; any of them may then call with credentials"
                            ));
                        } else if !s.contains('/') && !s.starts_with(['!', '#']) {
                            warnings.push(format!(
                                "{p}.origin: '{s}' matches no origin (its `*` never crosses the `/` of `https://`, and the `null` origin is matched only by an explicit 'null' entry); write 'https://*.example.com', or leave origin out to allow every origin"
                            ));
                        }
                        if crate::cors::glob::has_escaped_suffix(s) {
                            warnings.push(format!(
                                "{p}.origin: '{s}' has a `\\` after a leading `*` or `?`; minimatch compares it with the backslash, so in Backstage and here it matches no origin a browser sends"
                            ));
                        }
                        patterns.push(pat)
                    }
                    Err(e) => {
                        let at = if single {
                            format!("{p}.origin")
                        } else {
                            format!("{p}.origin[{i}]")
                        };
                        errs.add(&at, format!("'{s}' {e}"));
                    }
                }
            }
            Some(patterns)
        }
    }
}

/// `None` when `backend.cors` is absent: no CORS at all, as in Backstage.
pub(super) fn parse_cors(
    errs: &mut Errors,
    warnings: &mut Vec<String>,
    v: &Value,
) -> Option<Policy> {
    let p = "backend.cors";
    let obj = as_object(errs, p, v)?;
    check_keys(errs, p, obj, &KEYS);
    let origins = origins(errs, warnings, obj);
    let methods = string_array(errs, obj, p, "methods")
        .map(|l| l.join(","))
        .unwrap_or_else(|| DEFAULT_METHODS.to_string());
    let allowed_headers = string_array(errs, obj, p, "allowedHeaders").map(|l| l.join(","));
    let exposed_headers = string_array(errs, obj, p, "exposedHeaders").map(|l| l.join(","));
    let credentials = opt_bool(errs, obj, p, "credentials").unwrap_or(false);
    let preflight_continue = opt_bool(errs, obj, p, "preflightContinue").unwrap_or(false);
    let max_age = match obj.get("maxAge") {
        None => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Some(i.to_string()),
            None => n.as_f64().map(|f| f.to_string()),
        },
        Some(other) => {
            errs.add(
                &join(p, "maxAge"),
                format!("must be a number, but is of type {}", type_name(other)),
            );
            None
        }
    };
    let success_status = opt_uint(errs, obj, p, "optionsSuccessStatus", 200, 299)
        .and_then(|n| u16::try_from(n).ok())
        .unwrap_or(204);
    let null_origin =
        string_array(errs, obj, p, "origin").is_some_and(|l| l.iter().any(|o| *o == NULL_ORIGIN));
    Some(Policy {
        null_origin,
        origins,
        methods,
        allowed_headers,
        exposed_headers,
        credentials,
        max_age,
        preflight_continue,
        success_status,
    })
}

/// Backstage's `readStringArray`: a string is a list of one, a false-like
/// value is absent, anything else must be a list of strings. Header and
/// method values must be printable ASCII (they go into response headers).
fn string_array(
    errs: &mut Errors,
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Option<Vec<String>> {
    let v = obj.get(key)?;
    let kp = join(path, key);
    let list = match v {
        Value::Null | Value::Bool(false) => return None,
        Value::String(s) if s.is_empty() => return None,
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    other => {
                        errs.add(
                            &format!("{kp}[{i}]"),
                            format!("must be a string, but is of type {}", type_name(other)),
                        );
                        return None;
                    }
                }
            }
            out
        }
        other => {
            errs.add(
                &kp,
                format!(
                    "must be a string or an array of strings, but is of type {}",
                    type_name(other)
                ),
            );
            return None;
        }
    };
    if key != "origin" {
        for (i, s) in list.iter().enumerate() {
            if !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                errs.add(
                    &format!("{kp}[{i}]"),
                    "must be printable ASCII (it is sent in a response header)",
                );
                return None;
            }
        }
    }
    Some(list)
}
