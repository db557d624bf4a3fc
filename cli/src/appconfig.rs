//! Backstage app-config files → the filter's JSON configuration, read as
//! Backstage's config loader reads them (SPEC §9.1):
//!
//! - files merged in order (later files win, objects merged key by key,
//!   everything else replaced), then `APP_CONFIG_<path>` overrides;
//! - a YAML `null` is absent;
//! - only the sections the gateway reads (`proxy`, `backend.baseUrl`,
//!   `backend.auth`, `backend.cors`, `gateway`) are resolved, so nothing
//!   elsewhere (a database CA from `$file`, unset GitHub App variables) is
//!   resolved or refused;
//! - `$env`, `${VAR}`, `$file`, `$include` resolved relative to the file
//!   that holds them; an unset variable makes its value absent, and is an
//!   error only where the gateway needs the value (a target, a credential);
//! - an endpoint key without a leading `/` is refused with the hint.
//!
//! Every value remembers which file gave it, so errors name their file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
            drop_nulls(value)
        },
    })
}

/// A YAML `null` is absent, as in Backstage's loader: a key whose children
/// are all commented out (`proxy:` in every new Backstage app) neither
/// sets nor overrides anything.
fn drop_nulls(v: Value) -> Value {
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
        };
        if raw.is_empty() {
            continue;
        }
        let parts: Vec<&str> = key.split('_').collect();
        // Backstage's key-part pattern: words of letters and digits, each
        // starting with a letter, joined by `-`.
        let valid = |p: &&str| {
            p.split('-').all(|w| {
                w.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && w.chars().all(|c| c.is_ascii_alphanumeric())
            })
        };
        if !parts.iter().all(valid) {
            return Err(error("invalid environment config key".to_string()));
        }
        let value =
            serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.clone()));
        if value.is_null() {
            return Err(error("the value may not be null".to_string()));
        }
        let mut node = &mut root;
        let (last, parents) = parts
            .split_last()
            .ok_or_else(|| error("empty key".to_string()))?;
        for p in parents {
            let entry = node
                .entry((*p).to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            node = match entry {
                Value::Object(m) => m,
                _ => return Err(error(format!("could not nest config under '{p}'"))),
            };
        }
        if node.contains_key(*last) {
            return Err(error(format!(
                "refusing to override existing config at '{last}'"
            )));
        }
        node.insert((*last).to_string(), value);
    }
    Ok((!root.is_empty()).then(|| ConfigFile {
        name: "environment (APP_CONFIG_*)".to_string(),
        value: drop_nulls(Value::Object(root)),
    }))
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

/// What resolving directives needs from the environment and the files,
/// and what it learns.
pub struct Resolver<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Reads a file a `$file` or `$include` names.
    pub read: &'a dyn Fn(&Path) -> std::io::Result<String>,
    /// The file that gave a JSON path: relative directives resolve
    /// against its directory.
    pub file_of: &'a dyn Fn(&str) -> String,
    /// Variables that header values reference (left for the Wasm VM).
    pub vm_vars: Vec<String>,
    /// Values made absent because a variable is unset: (JSON path, name).
    pub unset: Vec<(String, String)>,
}

/// Is this path an injected header value (resolved in the VM, not here)?
fn is_header_value(path: &[String]) -> bool {
    let n = path.len();
    n >= 4
        && path.first().map(String::as_str) == Some("proxy")
        && path.get(n.wrapping_sub(2)).map(String::as_str) == Some("headers")
}

/// The sections the gateway reads; nothing else is resolved or refused
/// (a database CA from `$file`, GitHub App keys from unset variables).
const READ: [&[&str]; 5] = [
    &["proxy"],
    &["backend", "baseUrl"],
    &["backend", "auth"],
    &["backend", "cors"],
    &["gateway"],
];

/// The merged app-config cut down to the sections the gateway reads.
fn gateway_sections(merged: &Value) -> Value {
    let mut out = Value::Object(Map::new());
    for path in READ {
        let Some(v) = path.iter().try_fold(merged, |v, k| v.get(*k)) else {
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
/// Backstage backend is).
fn needed(path: &str) -> bool {
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
    let here = |path: &Vec<String>| path.join(".");
    match v {
        Value::Object(m) if m.len() == 1 && m.keys().all(|k| k.starts_with('$')) => {
            let (directive, arg) = m.iter().next()?;
            match (directive.as_str(), arg) {
                ("$env", Value::String(name)) if is_header_value(path) => {
                    r.vm_vars.push(name.clone());
                    Some(Value::String(format!("${{{name}}}")))
                }
                ("$env", Value::String(name)) => match (r.env)(name) {
                    Some(val) => Some(Value::String(val)),
                    None => {
                        r.unset.push((here(path), name.clone()));
                        None
                    }
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
                        Ok((value, included_dir)) => {
                            resolve(&value, path, r, Some(&included_dir), errors)
                        }
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
        Value::Array(items) => Some(Value::Array(
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
                .collect(),
        )),
        Value::String(s) if is_header_value(path) => {
            r.vm_vars
                .extend(backstage_proxy_core::config::referenced_env_vars(s));
            Some(Value::String(s.clone()))
        }
        Value::String(s) => {
            let missing = backstage_proxy_core::config::referenced_env_vars(s)
                .into_iter()
                .find(|name| (r.env)(name).is_none());
            if let Some(name) = missing {
                r.unset.push((here(path), name));
                return None;
            }
            match backstage_proxy_core::config::interpolate(s, r.env) {
                Ok(v) => Some(Value::String(v)),
                Err(msg) => {
                    errors.push((here(path), msg));
                    Some(Value::String(s.clone()))
                }
            }
        }
        other => Some(other.clone()),
    }
}

/// The filter's configuration taken from a merged app-config: `proxy`,
/// `backend.baseUrl`, `backend.auth`, `backend.cors` (the filter answers
/// CORS), and any `gateway` section.
pub fn filter_config(merged: &Value) -> Value {
    let mut out = Map::new();
    if let Some(p) = merged.get("proxy") {
        out.insert("proxy".to_string(), p.clone());
    }
    let mut backend = Map::new();
    for key in ["baseUrl", "auth", "cors"] {
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

/// Loads, merges, resolves and validates, with the filter's own
/// validation. Files named by `$file` and `$include` are read from disk.
pub fn load(sources: &[ConfigFile], env: &dyn Fn(&str) -> Option<String>) -> Loaded {
    load_with(sources, env, &|p: &Path| std::fs::read_to_string(p))
}

/// [`load`] with the file reader given.
pub fn load_with(
    sources: &[ConfigFile],
    env: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Loaded {
    let merged = merge(sources);
    let mut errors: Vec<LoadError> = Vec::new();
    let mut warnings = Vec::new();
    if let Some(Value::Object(endpoints)) =
        merged.value.get("proxy").and_then(|p| p.get("endpoints"))
    {
        for key in endpoints.keys().filter(|k| !k.starts_with('/')) {
            let path = format!("proxy.endpoints.{key}");
            errors.push(LoadError {
                file: merged.file_of(&path),
                path,
                message: format!("endpoint keys start with '/': write '/{key}' (Backstage ignores this endpoint)"),
            });
        }
    }
    let file_of = |path: &str| merged.file_of(path);
    let mut resolver = Resolver {
        env,
        read,
        file_of: &file_of,
        vm_vars: Vec::new(),
        unset: Vec::new(),
    };
    let mut raw_errors = Vec::new();
    let resolved = resolve(
        &gateway_sections(&merged.value),
        &mut Vec::new(),
        &mut resolver,
        None,
        &mut raw_errors,
    )
    .unwrap_or_else(|| Value::Object(Map::new()));
    let mut vm_vars = resolver.vm_vars;
    vm_vars.sort();
    vm_vars.dedup();
    let unset = resolver.unset;
    errors.extend(raw_errors.into_iter().map(|(path, message)| LoadError {
        file: merged.file_of(&path),
        path,
        message,
    }));
    for (path, name) in &unset {
        if needed(path) {
            errors.push(LoadError {
                file: merged.file_of(path),
                path: path.clone(),
                message: format!("environment variable '{name}' is not set"),
            });
        } else {
            warnings.push(format!("{path}: environment variable '{name}' is not set; the value is absent, as in Backstage"));
        }
    }
    let filter_config = filter_config(&resolved);
    // Header variables are the VM's: validate them as set, say which must be.
    let placeholder =
        |name: &str| -> Option<String> { env(name).or_else(|| Some(format!("<{name}>"))) };
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
            // A value made absent by an unset variable was reported above,
            // naming the variable.
            let reported = |p: &str| {
                unset
                    .iter()
                    .any(|(u, _)| needed(u) && (p == u || p.starts_with(&format!("{u}."))))
            };
            errors.extend(
                list.into_iter()
                    .filter(|e| !reported(&e.path))
                    .map(|e| LoadError {
                        file: merged.file_of(&e.path),
                        path: e.path,
                        message: e.message,
                    }),
            );
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
