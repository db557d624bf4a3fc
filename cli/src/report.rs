//! `check`'s findings for machines (`docs/cli.md#machine-readable-output`):
//! JSON of the tool's own, and SARIF 2.1.0 for code scanning. Each finding
//! has its severity, rule, file, line and column where known, JSON path and
//! message.

use serde_json::{json, Map, Value};

use crate::appconfig::LoadError;
use crate::json::set;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// The rules findings come under: (id, what it is about).
pub const RULES: [(&str, &str); 6] = [
    (
        "yaml-syntax",
        "The file is not valid YAML (or JSON), or a key appears twice in a mapping",
    ),
    ("unknown-key", "A key the gateway does not know"),
    (
        "unset-variable",
        "An environment variable a value needs is not set",
    ),
    (
        "invalid-configuration",
        "A value the filter refuses: it would not load",
    ),
    (
        "configuration-warning",
        "Loads, but is probably not what was meant",
    ),
    (
        "unreadable-file",
        "A file that cannot be read, or whose document is not a mapping",
    ),
];

/// The rule a finding comes under.
pub fn rule(f: &LoadError, severity: Severity) -> &'static str {
    if f.path.is_empty() && f.excerpt.is_some() {
        "yaml-syntax"
    } else if f.path.is_empty() && f.at.is_none() && severity == Severity::Error {
        "unreadable-file"
    } else if f.message.starts_with("unknown key") {
        "unknown-key"
    } else if f.message.starts_with("environment variable '") {
        "unset-variable"
    } else if severity == Severity::Error {
        "invalid-configuration"
    } else {
        "configuration-warning"
    }
}

/// Errors then warnings, each with its severity.
fn all<'a>(
    errors: &'a [LoadError],
    warnings: &'a [LoadError],
) -> impl Iterator<Item = (&'a LoadError, Severity)> {
    errors
        .iter()
        .map(|e| (e, Severity::Error))
        .chain(warnings.iter().map(|w| (w, Severity::Warning)))
}

/// One JSON object for the whole check: whether it passed (with
/// `--strict`, warnings fail it too), how many endpoints there are when it
/// loaded, and every finding.
pub fn json(
    errors: &[LoadError],
    warnings: &[LoadError],
    endpoints: Option<usize>,
    ok: bool,
) -> Value {
    let findings: Vec<Value> = all(errors, warnings)
        .map(|(f, severity)| {
            json!({
                "severity": severity.as_str(),
                "rule": rule(f, severity),
                "file": (!f.file.is_empty()).then_some(&f.file),
                "line": f.at.map(|a| a.line),
                "column": f.at.map(|a| a.column),
                "path": (!f.path.is_empty()).then_some(&f.path),
                "message": f.message,
            })
        })
        .collect();
    json!({
        "ok": ok,
        "endpoints": endpoints,
        "errors": errors.len(),
        "warnings": warnings.len(),
        "findings": findings,
    })
}

/// A file name as a SARIF artifact URI: relative paths stay relative
/// (to the directory `check` ran in), absolute ones become `file://` URIs;
/// standard input and the environment are no file (`None`).
fn artifact_uri(file: &str) -> Option<String> {
    if file.is_empty() || file == "<stdin>" || file == "-" || file.starts_with("environment") {
        return None;
    }
    let mut out = String::new();
    if file.starts_with('/') {
        out.push_str("file://");
    }
    for b in file.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Some(out)
}

/// One SARIF result.
fn sarif_result(f: &LoadError, severity: Severity) -> Value {
    let rule_id = rule(f, severity);
    let rule_index = RULES.iter().position(|(id, _)| *id == rule_id);
    let mut location = Map::new();
    if let Some(uri) = artifact_uri(&f.file) {
        let mut physical = json!({ "artifactLocation": { "uri": uri } });
        if let Some(at) = f.at {
            let region = json!({ "startLine": at.line, "startColumn": at.column });
            set(&mut physical, "region", region);
        }
        location.insert("physicalLocation".to_string(), physical);
    }
    if !f.path.is_empty() {
        location.insert(
            "logicalLocations".to_string(),
            json!([{ "fullyQualifiedName": f.path, "kind": "member" }]),
        );
    }
    let text = if f.path.is_empty() {
        f.message.clone()
    } else {
        format!("{}: {}", f.path, f.message)
    };
    let mut result = json!({
        "ruleId": rule_id,
        "level": severity.as_str(),
        "message": { "text": text },
    });
    if let Some(i) = rule_index {
        set(&mut result, "ruleIndex", json!(i));
    }
    if !location.is_empty() {
        set(&mut result, "locations", json!([Value::Object(location)]));
    }
    result
}

/// A SARIF 2.1.0 log of one run of the tool, its rules described.
pub fn sarif(errors: &[LoadError], warnings: &[LoadError]) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(id, text)| json!({ "id": id, "shortDescription": { "text": text } }))
        .collect();
    let results: Vec<Value> = all(errors, warnings)
        .map(|(f, s)| sarif_result(f, s))
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "backstage-proxy-wasm",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            } },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests;
