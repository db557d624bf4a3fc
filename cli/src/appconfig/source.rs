//! The sources of an app-config: YAML (or JSON) files, nulls dropped as
//! Backstage drops them, and the `APP_CONFIG_<path>` environment overrides.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::positions::{positions, Position};

/// One loaded app-config file.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub name: String,
    pub value: Value,
    /// Where each JSON path was written (none for the environment's
    /// overrides).
    pub positions: BTreeMap<String, Position>,
}

/// An error or a warning found loading: the file, the JSON path (empty
/// for the file as a whole), what is wrong, and where in the file when
/// that is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub path: String,
    pub message: String,
    /// Where in `file`: the key of `path`, or a YAML syntax error's place.
    pub at: Option<Position>,
    /// A YAML syntax error's line, its values masked, with a caret under
    /// the column (two lines).
    pub excerpt: Option<String>,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.path.is_empty(), self.file.is_empty(), self.at) {
            // A YAML syntax error: where, as editors and compilers say it.
            (true, false, Some(at)) => {
                write!(
                    f,
                    "{}:{}:{}: {}",
                    self.file, at.line, at.column, self.message
                )
            }
            (true, true, _) => f.write_str(&self.message),
            (true, false, _) => write!(f, "{}: {}", self.file, self.message),
            // A message that names its path itself ("gateway.x is set but…").
            (false, true, _) if self.message.starts_with(&self.path) => f.write_str(&self.message),
            (false, false, _) if self.message.starts_with(&self.path) => {
                write!(f, "{}: {}", self.file, self.message)
            }
            (false, true, _) => write!(f, "{}: {}", self.path, self.message),
            (false, false, _) => write!(f, "{}: {}: {}", self.file, self.path, self.message),
        }
    }
}

impl std::error::Error for LoadError {}

/// Parses one YAML (or JSON) document.
pub fn load_yaml(name: &str, text: &str) -> Result<ConfigFile, LoadError> {
    let value: Value = if text.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_saphyr::from_str(text).map_err(|e| syntax::error(name, text, &e))?
    };
    if !value.is_object() && !value.is_null() {
        return Err(LoadError {
            file: name.to_string(),
            message: "the document must be a mapping".to_string(),
            ..LoadError::default()
        });
    }
    Ok(ConfigFile {
        name: name.to_string(),
        value: if value.is_null() {
            Value::Object(Map::new())
        } else {
            drop_nulls(value)
        },
        positions: positions(text),
    })
}

/// A YAML `null` is absent, as in Backstage's loader: a key whose children
/// are all commented out (`proxy:` in every new Backstage app) neither
/// sets nor overrides anything.
pub(super) fn drop_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, drop_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(drop_nulls).collect()),
        other => other,
    }
}

/// `APP_CONFIG_<path>` environment overrides, as Backstage applies them
/// after every file: the name's segments (split at `_`) are the path, the
/// value is JSON when it parses as JSON, else a string.
pub fn env_overrides(vars: &[(String, String)]) -> Result<Option<ConfigFile>, LoadError> {
    const PREFIX: &str = "APP_CONFIG_";
    let mut root = Map::new();
    for (name, raw) in vars {
        let Some(key) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let error = |message: String| LoadError {
            file: "environment".to_string(),
            path: name.clone(),
            message,
            ..LoadError::default()
        };
        if raw.is_empty() {
            continue;
        }
        let parts: Vec<&str> = key.split('_').collect();
        if !parts.iter().all(|p| is_key_part(p)) {
            return Err(error("invalid environment config key".to_string()));
        }
        let value =
            serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.clone()));
        if value.is_null() {
            return Err(error("the value may not be null".to_string()));
        }
        insert_override(&mut root, &parts, value).map_err(error)?;
    }
    Ok((!root.is_empty()).then(|| ConfigFile {
        name: "environment (APP_CONFIG_*)".to_string(),
        value: drop_nulls(Value::Object(root)),
        positions: BTreeMap::new(),
    }))
}

/// Backstage's key-part pattern: words of letters and digits, each
/// starting with a letter, joined by `-`.
fn is_key_part(p: &str) -> bool {
    p.split('-').all(|w| {
        w.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && w.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// Puts one override's value at its path, refusing to nest under a value
/// or to replace one an earlier override set.
fn insert_override(
    root: &mut Map<String, Value>,
    parts: &[&str],
    value: Value,
) -> Result<(), String> {
    let mut node = root;
    let (last, parents) = parts.split_last().ok_or_else(|| "empty key".to_string())?;
    for p in parents {
        let entry = node
            .entry((*p).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        node = match entry {
            Value::Object(m) => m,
            _ => return Err(format!("could not nest config under '{p}'")),
        };
    }
    if node.contains_key(*last) {
        return Err(format!("refusing to override existing config at '{last}'"));
    }
    node.insert((*last).to_string(), value);
    Ok(())
}

mod syntax;

#[cfg(test)]
mod tests;
