//! Reading the configuration's JSON: typed field reads that report every
//! problem with its JSON path, and the text rules shared by the sections.

use super::ConfigError;
use serde_json::{Map, Value};

/// Collects errors with their JSON path.
pub(super) struct Errors {
    pub(super) list: Vec<ConfigError>,
}

impl Errors {
    pub(super) fn add(&mut self, path: &str, message: impl Into<String>) {
        self.list.push(ConfigError {
            path: path.to_string(),
            message: message.into(),
        });
    }
}

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(super) fn check_keys(
    errs: &mut Errors,
    path: &str,
    obj: &Map<String, Value>,
    allowed: &[&str],
) {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            errs.add(
                &join(path, key),
                format!(
                    "unknown key '{key}'; expected one of {}",
                    allowed.join(", ")
                ),
            );
        }
    }
}

pub(super) fn as_object<'a>(
    errs: &mut Errors,
    path: &str,
    v: &'a Value,
) -> Option<&'a Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        other => {
            errs.add(
                path,
                format!("must be an object, but is of type {}", type_name(other)),
            );
            None
        }
    }
}

pub(super) fn opt_bool(
    errs: &mut Errors,
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Option<bool> {
    match obj.get(key)? {
        Value::Bool(b) => Some(*b),
        other => {
            errs.add(
                &join(path, key),
                format!("must be a boolean, but is of type {}", type_name(other)),
            );
            None
        }
    }
}

pub(super) fn opt_string<'a>(
    errs: &mut Errors,
    obj: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Option<&'a str> {
    match obj.get(key)? {
        Value::String(s) => Some(s),
        other => {
            errs.add(
                &join(path, key),
                format!("must be a string, but is of type {}", type_name(other)),
            );
            None
        }
    }
}

pub(super) fn opt_uint(
    errs: &mut Errors,
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
    min: u64,
    max: u64,
) -> Option<u64> {
    let v = obj.get(key)?;
    let n = match v {
        Value::String(s) => js_number(s)
            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
            .and_then(|f| {
                // Exact: a whole number below 2^53 converts without loss.
                (f <= 9_007_199_254_740_991.0).then_some(f as u64)
            }),
        _ => v.as_u64(),
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            errs.add(
                &join(path, key),
                format!("must be a whole number from {min} to {max}"),
            );
            None
        }
    }
}

/// A string as Backstage's config reader turns it into a number
/// (`getNumber`: JavaScript's `Number()` of the trimmed string, refused
/// when empty or not finite), so that `requests: ${RATE}` reads as
/// Backstage reads it: decimal with an optional sign, fraction and
/// exponent, or `0x`, `0o`, `0b` integers.
pub(super) fn js_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let radix = |digits: &str, radix: u32| {
        (!digits.is_empty())
            .then(|| u64::from_str_radix(digits, radix).ok())
            .flatten()
            .map(|n| n as f64)
    };
    if let Some(d) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return radix(d, 16);
    }
    if let Some(d) = t.strip_prefix("0o").or_else(|| t.strip_prefix("0O")) {
        return radix(d, 8);
    }
    if let Some(d) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
        return radix(d, 2);
    }
    // Rust's float syntax also takes `inf` and `nan`, which JavaScript's
    // reads as NaN: digits, one sign, `.`, and an exponent only.
    if !t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Backstage's `^\S+$` for tokens, secrets and subjects.
pub(super) fn is_non_whitespace(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_whitespace)
}

/// RFC 9110 token characters (header names, methods).
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Normalises an endpoint key: a leading `/`, no trailing `/`.
pub fn normalise_key(key: &str) -> String {
    let trimmed = key.trim_end_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// A string or array of strings, each string split on commas and spaces, as
/// Backstage reads `issuer`, `audience`, `algorithm` and `permission`.
pub(super) fn string_list(errs: &mut Errors, path: &str, v: &Value) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut push = |s: &str| {
        for part in s.split([',', ' ']) {
            if !part.is_empty() {
                out.push(part.to_string());
            }
        }
    };
    match v {
        Value::String(s) => push(s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => push(s),
                    other => {
                        errs.add(
                            &format!("{path}[{i}]"),
                            format!("must be a string, but is of type {}", type_name(other)),
                        );
                        return None;
                    }
                }
            }
        }
        other => {
            errs.add(
                path,
                format!(
                    "must be a string or an array of strings, but is of type {}",
                    type_name(other)
                ),
            );
            return None;
        }
    }
    if out.is_empty() {
        errs.add(path, "must not be empty");
        return None;
    }
    Some(out)
}
