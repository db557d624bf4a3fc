//! Backstage's directives resolved as its config loader resolves them:
//! `$env`, `${VAR}`, `$file` and `$include`, relative to the file that
//! holds them. An unset variable makes its value absent; in injected
//! header values `${VAR}` is left for the Wasm VM.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::source::{drop_nulls, load_yaml};
use backstage_proxy_core::config::{interpolate, referenced_env_vars};

/// What resolving directives needs from the environment and the files,
/// and what it learns.
pub struct Resolver<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Reads a file a `$file` or `$include` names.
    pub read: &'a dyn Fn(&Path) -> std::io::Result<String>,
    /// The file that gave a JSON path: relative directives resolve
    /// against its directory.
    pub file_of: &'a dyn Fn(&str) -> String,
    /// Variables that header values reference (left for the Wasm VM):
    /// (name, JSON path).
    pub vm_vars: Vec<(String, String)>,
    /// Values made absent because a variable is unset: (JSON path, name).
    pub unset: Vec<(String, String)>,
    /// Paths whose value an unset variable makes an error (reported as
    /// such): they hold a stand-in instead of nothing, so that validation
    /// sees the endpoint or entry there and reports nothing else about it.
    pub stand_in: &'a dyn Fn(&str) -> bool,
}

/// What an unset variable leaves at `path`: nothing, as in Backstage, or
/// a stand-in where the value is needed (and the unset variable is an
/// error).
fn unset_value(r: &mut Resolver<'_>, path: &[String], name: &str) -> Option<Value> {
    let at = here(path);
    let value = (r.stand_in)(&at).then(|| Value::String(format!("<{name}>")));
    r.unset.push((at, name.to_string()));
    value
}

/// Is this path a value the filter reads `${VAR}` in from the VM's
/// environment, never resolved here (`docs/tokens.md#secrets-in-the-configuration`):
/// an injected header value, an endpoint's `auth`, a legacy secret?
fn is_header_value(path: &[String]) -> bool {
    let at = |i: usize| path.get(i).map(String::as_str).unwrap_or_default();
    let n = path.len();
    let endpoint_option = |name: &str| {
        at(0) == "proxy"
            && at(n.wrapping_sub(1)) == name
            && ((n == 4 && at(1) == "endpoints") || (n == 3 && at(1).starts_with('/')))
    };
    let header = n >= 4 && at(0) == "proxy" && at(n.wrapping_sub(2)) == "headers";
    let legacy_secret = at(0) == "backend"
        && at(1) == "auth"
        && ((n == 4 && at(2).starts_with("keys[") && at(3) == "secret")
            || (n == 5
                && at(2).starts_with("externalAccess[")
                && at(3) == "options"
                && at(4) == "secret"));
    header || endpoint_option("auth") || legacy_secret
}

/// Is this path a static token's value? Resolved here when its variables
/// are set (the tool then writes its digest), left for the VM otherwise.
fn is_static_token(path: &[String]) -> bool {
    let at = |i: usize| path.get(i).map(String::as_str).unwrap_or_default();
    path.len() == 5
        && at(0) == "backend"
        && at(1) == "auth"
        && at(2).starts_with("externalAccess[")
        && at(3) == "options"
        && at(4) == "token"
}

/// The JSON path as errors name it.
fn here(path: &[String]) -> String {
    path.join(".")
}

/// The directory relative directives in `path` resolve against.
fn base_dir(r: &Resolver<'_>, path: &str, inherited: Option<&Path>) -> PathBuf {
    if let Some(d) = inherited {
        return d.to_path_buf();
    }
    let file = (r.file_of)(path);
    Path::new(&file)
        .parent()
        .filter(|_| file != "<stdin>")
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `$include`: a YAML or JSON file, or a part of it after `#` (a dotted path).
fn include(r: &Resolver<'_>, dir: &Path, arg: &str) -> Result<(Value, PathBuf), String> {
    let (file, fragment) = match arg.split_once('#') {
        Some((f, frag)) => (f, Some(frag)),
        None => (arg, None),
    };
    if ![".json", ".yaml", ".yml"]
        .iter()
        .any(|ext| file.ends_with(ext))
    {
        return Err(format!(
            "$include {file}: no configuration parser for this file type (.json, .yaml, .yml)"
        ));
    }
    let full = dir.join(file);
    let text = (r.read)(&full).map_err(|e| format!("$include {file}: {e}"))?;
    let value = if file.ends_with(".json") {
        serde_json::from_str(&text).map_err(|_| format!("$include {file}: not valid JSON"))?
    } else {
        load_yaml(file, &text)
            .map_err(|e| format!("$include {e}"))?
            .value
    };
    let value = match fragment {
        None => value,
        Some(frag) => frag
            .split('.')
            .try_fold(&value, |v, k| v.get(k))
            .cloned()
            .ok_or_else(|| format!("$include {file}: no value at '{frag}'"))?,
    };
    let included_dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((drop_nulls(value), included_dir))
}

/// Resolves Backstage's directives in the sections the gateway reads, as
/// its config loader does: `$env`, `${VAR}`, `$file` and `$include`
/// (relative to the file that holds them). An unset variable makes its
/// value absent (`None`). In injected header values `${VAR}` stays (the
/// filter reads it from the VM's environment, so the secret never lands in
/// envoy.yaml) and `{$env: VAR}` becomes `${VAR}`.
pub fn resolve(
    v: &Value,
    path: &mut Vec<String>,
    r: &mut Resolver<'_>,
    dir: Option<&Path>,
    errors: &mut Vec<(String, String)>,
) -> Option<Value> {
    match v {
        Value::Object(m) if m.len() == 1 && m.keys().all(|k| k.starts_with('$')) => {
            let (directive, arg) = m.iter().next()?;
            resolve_directive(directive, arg, path, r, dir, errors)
        }
        Value::Object(m) if m.keys().any(|k| k.starts_with('$')) => {
            let directive = m
                .keys()
                .find(|k| k.starts_with('$'))
                .cloned()
                .unwrap_or_default();
            errors.push((
                here(path),
                format!("{directive} should not have adjacent keys"),
            ));
            None
        }
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                path.push(k.clone());
                if let Some(v) = resolve(v, path, r, dir, errors) {
                    out.insert(k.clone(), v);
                }
                path.pop();
            }
            Some(Value::Object(out))
        }
        Value::Array(items) => Some(Value::Array(resolve_items(items, path, r, dir, errors))),
        Value::String(s)
            if is_header_value(path)
                || (is_static_token(path)
                    && referenced_env_vars(s).iter().any(|v| (r.env)(v).is_none())) =>
        {
            let at = here(path);
            r.vm_vars.extend(
                referenced_env_vars(s)
                    .into_iter()
                    .map(|name| (name, at.clone())),
            );
            Some(Value::String(s.clone()))
        }
        Value::String(s) => resolve_string(s, path, r, errors),
        other => Some(other.clone()),
    }
}

/// One directive (`{$env: …}`, `{$file: …}`, `{$include: …}`) at `path`.
fn resolve_directive(
    directive: &str,
    arg: &Value,
    path: &mut Vec<String>,
    r: &mut Resolver<'_>,
    dir: Option<&Path>,
    errors: &mut Vec<(String, String)>,
) -> Option<Value> {
    match (directive, arg) {
        ("$env", Value::String(name))
            if is_header_value(path) || (is_static_token(path) && (r.env)(name).is_none()) =>
        {
            r.vm_vars.push((name.clone(), here(path)));
            Some(Value::String(format!("${{{name}}}")))
        }
        ("$env", Value::String(name)) => match (r.env)(name) {
            Some(val) => Some(Value::String(val)),
            None => unset_value(r, path, name),
        },
        ("$file", Value::String(file)) => {
            let full = base_dir(r, &here(path), dir).join(file);
            match (r.read)(&full) {
                Ok(text) => Some(Value::String(text)),
                Err(e) => {
                    errors.push((here(path), format!("$file {file}: {e}")));
                    None
                }
            }
        }
        ("$include", Value::String(arg)) => {
            let base = base_dir(r, &here(path), dir);
            match include(r, &base, arg) {
                Ok((value, included_dir)) => resolve(&value, path, r, Some(&included_dir), errors),
                Err(msg) => {
                    errors.push((here(path), msg));
                    None
                }
            }
        }
        (d, _) => {
            errors.push((here(path), format!("unsupported directive {d}")));
            None
        }
    }
}

/// An array's items, each at `path[i]`; absent ones are left out.
fn resolve_items(
    items: &[Value],
    path: &mut Vec<String>,
    r: &mut Resolver<'_>,
    dir: Option<&Path>,
    errors: &mut Vec<(String, String)>,
) -> Vec<Value> {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            if let Some(last) = path.last_mut() {
                last.push_str(&format!("[{i}]"));
            }
            let out = resolve(v, path, r, dir, errors);
            if let Some(last) = path.last_mut() {
                let cut = last.rfind('[').unwrap_or(last.len());
                last.truncate(cut);
            }
            out
        })
        .collect()
}

/// A string's `${VAR}` references: absent when a variable is unset.
fn resolve_string(
    s: &str,
    path: &[String],
    r: &mut Resolver<'_>,
    errors: &mut Vec<(String, String)>,
) -> Option<Value> {
    let missing = referenced_env_vars(s)
        .into_iter()
        .find(|name| (r.env)(name).is_none());
    if let Some(name) = missing {
        return unset_value(r, path, &name);
    }
    match interpolate(s, r.env) {
        Ok(v) => Some(Value::String(v)),
        Err(msg) => {
            errors.push((here(path), msg));
            Some(Value::String(s.to_string()))
        }
    }
}

#[cfg(test)]
mod tests;
