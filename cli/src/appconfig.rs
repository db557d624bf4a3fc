//! Backstage app-config files → the filter's JSON configuration.
//!
//! Files are merged as Backstage merges them (later files win, objects are
//! merged key by key, everything else is replaced), `$env` and `${VAR}` are
//! resolved, and `proxy`, `backend.baseUrl`, `backend.auth` (and, for the
//! generator, `backend.cors`) are taken. Every value remembers which file
//! gave it, so errors name their file.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// One loaded app-config file.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub name: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.path.is_empty(), self.file.is_empty()) {
            (true, _) => write!(f, "{}: {}", self.file, self.message),
            (false, true) => write!(f, "{}: {}", self.path, self.message),
            (false, false) => write!(f, "{}: {}: {}", self.file, self.path, self.message),
        }
    }
}

impl std::error::Error for LoadError {}

/// Parses one YAML (or JSON) document.
pub fn load_yaml(name: &str, text: &str) -> Result<ConfigFile, LoadError> {
    let value: Value = if text.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_saphyr::from_str(text).map_err(|e| LoadError {
            file: name.to_string(),
            path: String::new(),
            // The location only: the parser's message may quote the text.
            message: format!(
                "not valid YAML{}",
                e.location()
                    .map(|l| format!(": line {} column {}", l.line(), l.column()))
                    .unwrap_or_default()
            ),
        })?
    };
    if !value.is_object() && !value.is_null() {
        return Err(LoadError {
            file: name.to_string(),
            path: String::new(),
            message: "the document must be a mapping".to_string(),
        });
    }
    Ok(ConfigFile {
        name: name.to_string(),
        value: if value.is_null() {
            Value::Object(Map::new())
        } else {
            value
        },
    })
}

/// The merged configuration and, for each JSON path, the file it came from.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    pub value: Value,
    pub origin: BTreeMap<String, String>,
}

impl Merged {
    /// The file that gave `path` (or its nearest ancestor).
    pub fn file_of(&self, path: &str) -> String {
        let mut p = path.to_string();
        loop {
            if let Some(f) = self.origin.get(&p) {
                return f.clone();
            }
            match p.rfind(['.', '[']) {
                Some(i) => p.truncate(i),
                None => return self.origin.get("").cloned().unwrap_or_default(),
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Merges in order: later files override earlier ones, objects key by key.
pub fn merge(sources: &[ConfigFile]) -> Merged {
    let mut merged = Merged {
        value: Value::Object(Map::new()),
        origin: BTreeMap::new(),
    };
    for s in sources {
        merge_into(&mut merged.value, &s.value, "", &s.name, &mut merged.origin);
    }
    merged
}

fn record(origin: &mut BTreeMap<String, String>, path: &str, v: &Value, file: &str) {
    origin.insert(path.to_string(), file.to_string());
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                record(origin, &join(path, k), v, file);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                record(origin, &format!("{path}[{i}]"), v, file);
            }
        }
        _ => {}
    }
}

fn merge_into(
    dst: &mut Value,
    src: &Value,
    path: &str,
    file: &str,
    origin: &mut BTreeMap<String, String>,
) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                let p = join(path, k);
                match d.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_into(existing, v, &p, file, origin)
                    }
                    _ => {
                        origin.retain(|key, _| {
                            !(key == &p
                                || key.starts_with(&format!("{p}."))
                                || key.starts_with(&format!("{p}[")))
                        });
                        d.insert(k.clone(), v.clone());
                        record(origin, &p, v, file);
                    }
                }
            }
        }
        (d, s) => {
            *d = s.clone();
            record(origin, path, s, file);
        }
    }
}

/// What resolving directives needs from the environment, and learns.
pub struct Resolver<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Variables that header values reference (left for the Wasm VM).
    pub vm_vars: Vec<String>,
}

/// Is this path an injected header value (resolved in the VM, not here)?
fn is_header_value(path: &[String]) -> bool {
    let n = path.len();
    n >= 4
        && path.first().map(String::as_str) == Some("proxy")
        && path.get(n.wrapping_sub(2)).map(String::as_str) == Some("headers")
}

/// Resolves `$env`, `${VAR}` and refuses `$file` / `$include`, everywhere
/// except in injected header values: there `${VAR}` stays (the filter reads
/// it from the VM environment, so the secret never lands in envoy.yaml) and
/// `{$env: VAR}` becomes `${VAR}`.
pub fn resolve(
    v: &Value,
    path: &mut Vec<String>,
    r: &mut Resolver<'_>,
    errors: &mut Vec<(String, String)>,
) -> Value {
    let here = |path: &Vec<String>| path.join(".");
    match v {
        Value::Object(m) => {
            if let Some(directive) = m.keys().find(|k| k.starts_with('$')) {
                if m.len() == 1 {
                    let arg = m.get(directive).cloned().unwrap_or(Value::Null);
                    return match (directive.as_str(), arg) {
                        ("$env", Value::String(name)) => {
                            if is_header_value(path) {
                                r.vm_vars.push(name.clone());
                                Value::String(format!("${{{name}}}"))
                            } else {
                                match (r.env)(&name) {
                                    Some(val) => Value::String(val),
                                    None => {
                                        errors.push((
                                            here(path),
                                            format!("environment variable '{name}' is not set"),
                                        ));
                                        Value::Null
                                    }
                                }
                            }
                        }
                        ("$file" | "$include", _) => {
                            errors.push((here(path), format!("{directive} is not supported by backstage-proxy-wasm; inline the value or use $env")));
                            Value::Null
                        }
                        (d, _) => {
                            errors.push((here(path), format!("unsupported directive {d}")));
                            Value::Null
                        }
                    };
                }
            }
            let mut out = Map::new();
            for (k, v) in m {
                path.push(k.clone());
                out.insert(k.clone(), resolve(v, path, r, errors));
                path.pop();
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    if let Some(last) = path.last_mut() {
                        last.push_str(&format!("[{i}]"));
                    }
                    let out = resolve(v, path, r, errors);
                    if let Some(last) = path.last_mut() {
                        let cut = last.rfind('[').unwrap_or(last.len());
                        last.truncate(cut);
                    }
                    out
                })
                .collect(),
        ),
        Value::String(s) if is_header_value(path) => {
            r.vm_vars
                .extend(backstage_proxy_core::config::referenced_env_vars(s));
            Value::String(s.clone())
        }
        Value::String(s) => match backstage_proxy_core::config::interpolate(s, r.env) {
            Ok(v) => Value::String(v),
            Err(msg) => {
                errors.push((here(path), msg));
                Value::String(s.clone())
            }
        },
        other => other.clone(),
    }
}

/// The filter's configuration taken from a merged app-config: `proxy`,
/// `backend.baseUrl`, `backend.auth`, and any `gateway` section.
pub fn filter_config(merged: &Value) -> Value {
    let mut out = Map::new();
    if let Some(p) = merged.get("proxy") {
        out.insert("proxy".to_string(), p.clone());
    }
    let mut backend = Map::new();
    for key in ["baseUrl", "auth"] {
        if let Some(v) = merged.get("backend").and_then(|b| b.get(key)) {
            backend.insert(key.to_string(), v.clone());
        }
    }
    if !backend.is_empty() {
        out.insert("backend".to_string(), Value::Object(backend));
    }
    if let Some(g) = merged.get("gateway") {
        out.insert("gateway".to_string(), g.clone());
    }
    Value::Object(out)
}

/// Everything `check` and `render` need from a set of files.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub merged: Merged,
    /// The merged app-config with directives resolved.
    pub resolved: Value,
    pub filter_config: Value,
    pub plan: Option<backstage_proxy_core::config::Plan>,
    /// Variables header values need in Envoy's VM environment.
    pub vm_vars: Vec<String>,
    pub errors: Vec<LoadError>,
    pub warnings: Vec<String>,
}

/// Loads, merges, resolves and validates, with the filter's own validation.
pub fn load(sources: &[ConfigFile], env: &dyn Fn(&str) -> Option<String>) -> Loaded {
    let merged = merge(sources);
    let mut resolver = Resolver {
        env,
        vm_vars: Vec::new(),
    };
    let mut raw_errors = Vec::new();
    let resolved = resolve(
        &merged.value,
        &mut Vec::new(),
        &mut resolver,
        &mut raw_errors,
    );
    let mut vm_vars = resolver.vm_vars;
    vm_vars.sort();
    vm_vars.dedup();
    let mut errors: Vec<LoadError> = raw_errors
        .into_iter()
        .map(|(path, message)| LoadError {
            file: merged.file_of(&path),
            path,
            message,
        })
        .collect();
    let filter_config = filter_config(&resolved);
    // Header variables are the VM's: validate them as set, say which must be.
    let placeholder =
        |name: &str| -> Option<String> { env(name).or_else(|| Some(format!("<{name}>"))) };
    let mut warnings = Vec::new();
    for v in &vm_vars {
        if env(v).is_none() {
            warnings.push(format!("environment variable '{v}' is not set here; Envoy's Wasm VM must provide it (host_env_keys)"));
        }
    }
    let plan = match backstage_proxy_core::config::parse_value(&filter_config, &placeholder) {
        Ok(plan) => {
            warnings.extend(plan.warnings.iter().cloned());
            Some(plan)
        }
        Err(list) => {
            errors.extend(list.into_iter().map(|e| LoadError {
                file: merged.file_of(&e.path),
                path: e.path,
                message: e.message,
            }));
            None
        }
    };
    Loaded {
        merged,
        resolved,
        filter_config,
        plan,
        vm_vars,
        errors,
        warnings,
    }
}

#[cfg(test)]
mod tests;
