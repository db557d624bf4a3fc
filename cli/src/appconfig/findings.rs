//! What loading found, made to point at the files: each warning with its
//! file and JSON path, each finding with its line, and the structural
//! errors that do not depend on which environment variables are set
//! (`docs/cli.md#check`).

use serde_json::Value;

use super::merge::Merged;
use super::source::LoadError;
use backstage_proxy_core::config::ConfigError;

/// The sections a JSON path can start with.
const SECTIONS: [&str; 3] = ["proxy", "backend", "gateway"];

/// Does `token` read as a JSON path in the gateway's sections?
fn is_path(token: &str) -> bool {
    SECTIONS.iter().any(|s| {
        token
            .strip_prefix(s)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    })
}

/// A warning of the filter's validation (text that starts with the JSON
/// path it is about, or says "… due to <path>: …") with its file and path.
pub(super) fn filter_warning(merged: &Merged, text: &str) -> LoadError {
    let lead = text.split_whitespace().next().unwrap_or_default();
    let path = if is_path(lead.trim_end_matches(':')) {
        lead.trim_end_matches(':')
    } else {
        text.split_once(" due to ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .map(|t| t.trim_end_matches(':'))
            .filter(|t| is_path(t))
            .unwrap_or_default()
    };
    let message = text
        .strip_prefix(path)
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(text);
    finding(merged, path, message.to_string())
}

/// A finding at `path` of the merged app-config, naming the file that gave
/// it.
pub(super) fn finding(merged: &Merged, path: &str, message: String) -> LoadError {
    LoadError {
        file: if path.is_empty() {
            String::new()
        } else {
            merged.file_of(path)
        },
        path: path.to_string(),
        message,
        ..LoadError::default()
    }
}

/// Each finding's line and column, where the file that gave its path says.
pub(super) fn place(merged: &Merged, findings: &mut [LoadError]) {
    for f in findings.iter_mut().filter(|f| f.at.is_none()) {
        if !f.path.is_empty() && merged.file_of(&f.path) == f.file {
            f.at = merged.position_of(&f.path);
        }
    }
}

/// Every finding once, in the order first found.
pub(super) fn once(findings: &mut Vec<LoadError>) {
    let mut seen: Vec<LoadError> = Vec::new();
    findings.retain(|f| {
        let new = !seen.contains(f);
        if new {
            seen.push(f.clone());
        }
        new
    });
}

/// The filter's errors for the gateway's sections with every unset
/// variable standing in as set (`structure`) that do not depend on the
/// variables' values: an unknown key (present whether or not its value's
/// variable is set), and a value that must not be a string where a
/// variable gives one (a variable's value is always a string). The same
/// app-config so gets the same answer whichever variables are set.
pub(super) fn structure_errors(
    structure: &Value,
    unset: &[(String, String)],
    placeholder: &dyn Fn(&str) -> Option<String>,
) -> Vec<ConfigError> {
    let Err(list) = backstage_proxy_core::config::parse_value(structure, placeholder) else {
        return Vec::new();
    };
    list.into_iter()
        .filter(|e| {
            e.message.starts_with("unknown key")
                || (e.message.ends_with("but is of type string")
                    && unset.iter().any(|(p, _)| *p == e.path))
        })
        .collect()
}

#[cfg(test)]
mod tests;
