//! Backstage app-config files → the filter's JSON configuration, read as
//! Backstage's config loader reads them (SPEC §9.1), in the steps its
//! loader keeps apart:
//!
//! - `source`: files read (a YAML `null` is absent), then the
//!   `APP_CONFIG_<path>` environment overrides;
//! - `merge`: merged in order (later files win, objects merged key by
//!   key, everything else replaced), every value remembering its file so
//!   that errors name it;
//! - `sections`: only the sections the gateway reads
//!   ([`GATEWAY_SECTIONS`]) are resolved, so nothing elsewhere (a database
//!   CA from `$file`, unset GitHub App variables) is resolved or refused;
//! - `resolve`: `$env`, `${VAR}`, `$file`, `$include` resolved relative
//!   to the file that holds them; an unset variable makes its value
//!   absent, and is an error only where the gateway needs the value (a
//!   target, a credential).
//!
//! [`load`] runs them in order, refuses an endpoint key without a leading
//! `/` (with the hint), and validates the result as the filter does.

mod findings;
mod merge;
mod positions;
mod resolve;
mod secrets;
mod sections;
mod source;

use std::path::Path;

use serde_json::{Map, Value};

pub use merge::{merge, Merged};
pub use positions::{positions, Position};
pub use resolve::{resolve, Resolver};
pub use sections::{gateway_sections, GATEWAY_SECTIONS};
pub use source::{env_overrides, load_yaml, ConfigFile, LoadError};

use backstage_proxy_core::config::Plan;
use findings::{filter_warning, finding, once, place, structure_errors};
use sections::needed;

/// Everything `check` and `render` need from a set of files.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub merged: Merged,
    /// The merged app-config with directives resolved.
    pub resolved: Value,
    /// The filter's configuration: the resolved gateway sections.
    pub filter_config: Value,
    /// The plan, when there is no error.
    pub plan: Option<Plan>,
    /// Variables header values need in Envoy's VM environment.
    pub vm_vars: Vec<String>,
    /// Each error once, with its file, JSON path and line where known.
    pub errors: Vec<LoadError>,
    /// Each warning once, with its file, JSON path and line where known.
    pub warnings: Vec<LoadError>,
}

/// Loads, merges, resolves and validates, with the filter's own
/// validation. Files named by `$file` and `$include` are read from disk.
pub fn load(sources: &[ConfigFile], env: &dyn Fn(&str) -> Option<String>) -> Loaded {
    load_with(sources, env, &|p: &Path| std::fs::read_to_string(p))
}

/// What resolving the gateway's sections gave.
struct Resolved {
    value: Value,
    /// Variables header values need in the VM, sorted, once each, with
    /// the first JSON path that names each.
    vm_vars: Vec<(String, String)>,
    /// Values made absent by an unset variable: (JSON path, name).
    unset: Vec<(String, String)>,
    /// Directives that could not be resolved: (JSON path, message).
    errors: Vec<(String, String)>,
}

/// [`load`] with the file reader given.
pub fn load_with(
    sources: &[ConfigFile],
    env: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Loaded {
    let merged = merge(sources);
    let mut errors = endpoint_key_errors(&merged);
    let mut warnings = Vec::new();
    let resolved = resolve_sections(&merged, env, read);
    errors.extend(
        resolved
            .errors
            .iter()
            .map(|(path, message)| finding(&merged, path, message.clone())),
    );
    for (path, name) in &resolved.unset {
        if needed(path) {
            let message = format!("environment variable '{name}' is not set");
            errors.push(finding(&merged, path, message));
        } else {
            let message = format!(
                "environment variable '{name}' is not set; the value is absent, as in Backstage"
            );
            warnings.push(finding(&merged, path, message));
        }
    }
    let mut filter_config = gateway_sections(&resolved.value);
    for (v, path) in &resolved.vm_vars {
        if env(v).is_none() {
            let message = format!("environment variable '{v}' is not set here; Envoy's Wasm VM must provide it (host_env_keys)");
            warnings.push(finding(&merged, path, message));
        }
    }
    // A variable the VM provides is unknown here: a value that passes
    // every check a secret's value gets (no whitespace, at least 8
    // characters, base64 alphabet), the same for the same variable. So,
    // for the checks that do not depend on values, is every other one.
    let placeholder = |name: &str| -> Option<String> {
        env(name).or_else(|| Some(format!("{name}-is-read-in-the-gateway")))
    };
    let mut plan = validate(
        &filter_config,
        &placeholder,
        &merged,
        &resolved.unset,
        &mut errors,
        &mut warnings,
    );
    if !resolved.unset.is_empty() {
        let structure = gateway_sections(&resolve_sections(&merged, &placeholder, read).value);
        let found = structure_errors(&structure, &resolved.unset, &placeholder);
        errors.extend(
            found
                .into_iter()
                .map(|e| finding(&merged, &e.path, e.message)),
        );
    }
    warnings.extend(
        secrets::literal_secret_warnings(&filter_config)
            .into_iter()
            .map(|(path, message)| finding(&merged, &path, message)),
    );
    secrets::digest_static_tokens(&mut filter_config);
    once(&mut errors);
    once(&mut warnings);
    place(&merged, &mut errors);
    place(&merged, &mut warnings);
    if !errors.is_empty() {
        plan = None;
    }
    Loaded {
        merged,
        resolved: resolved.value,
        filter_config,
        plan,
        vm_vars: resolved.vm_vars.into_iter().map(|(name, _)| name).collect(),
        errors,
        warnings,
    }
}

/// Backstage ignores an endpoint key without a leading `/`: an error with
/// the fix.
fn endpoint_key_errors(merged: &Merged) -> Vec<LoadError> {
    let Some(Value::Object(endpoints)) = merged.value.get("proxy").and_then(|p| p.get("endpoints"))
    else {
        return Vec::new();
    };
    endpoints
        .keys()
        .filter(|k| !k.starts_with('/'))
        .map(|key| {
            let path = format!("proxy.endpoints.{key}");
            let message = format!(
                "endpoint keys start with '/': write '/{key}' (Backstage ignores this endpoint)"
            );
            finding(merged, &path, message)
        })
        .collect()
}

/// The gateway's sections of the merged app-config, their directives
/// resolved.
fn resolve_sections(
    merged: &Merged,
    env: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Resolved {
    let file_of = |path: &str| merged.file_of(path);
    let mut resolver = Resolver {
        env,
        read,
        file_of: &file_of,
        vm_vars: Vec::new(),
        unset: Vec::new(),
        stand_in: &needed,
    };
    let mut errors = Vec::new();
    let value = resolve(
        &gateway_sections(&merged.value),
        &mut Vec::new(),
        &mut resolver,
        None,
        &mut errors,
    )
    .unwrap_or_else(|| Value::Object(Map::new()));
    let mut vm_vars = resolver.vm_vars;
    // Sorted by name, each once, with the first path that names it.
    vm_vars.sort_by(|a, b| a.0.cmp(&b.0));
    vm_vars.dedup_by(|a, b| a.0 == b.0);
    Resolved {
        value,
        vm_vars,
        unset: resolver.unset,
        errors,
    }
}

/// The filter's own validation of its configuration, header variables
/// taken as set (the VM's). Its errors name their file, except those about
/// a value an unset variable made absent (reported already, naming the
/// variable).
fn validate(
    filter_config: &Value,
    placeholder: &dyn Fn(&str) -> Option<String>,
    merged: &Merged,
    unset: &[(String, String)],
    errors: &mut Vec<LoadError>,
    warnings: &mut Vec<LoadError>,
) -> Option<Plan> {
    match backstage_proxy_core::config::parse_value(filter_config, placeholder) {
        Ok(plan) => {
            warnings.extend(plan.warnings.iter().map(|w| filter_warning(merged, w)));
            warnings.extend(unverified_upstreams(&plan, filter_config, merged));
            Some(plan)
        }
        Err(list) => {
            let reported = |p: &str| {
                unset
                    .iter()
                    .any(|(u, _)| needed(u) && (p == u || p.starts_with(&format!("{u}."))))
            };
            errors.extend(
                list.into_iter()
                    .filter(|e| !reported(&e.path))
                    .map(|e| finding(merged, &e.path, e.message)),
            );
            None
        }
    }
}

/// `secure: false` on an endpoint whose target is `https`: what it turns
/// off, said for each such endpoint (the filter's own note only says the
/// option is Envoy's). Its upstream's certificate is then checked neither
/// for its issuer nor for its name, so whoever answers for that address
/// gets the endpoint's requests and the credentials the gateway injects.
fn unverified_upstreams(plan: &Plan, filter_config: &Value, merged: &Merged) -> Vec<LoadError> {
    // The legacy form keeps the endpoints directly under `proxy`.
    let under = if filter_config.pointer("/proxy/endpoints").is_some() {
        "proxy.endpoints"
    } else {
        "proxy"
    };
    plan.endpoints
        .iter()
        .filter(|e| e.envoy.secure == Some(false) && e.target.scheme == "https")
        .map(|e| {
            let path = format!("{under}.{}.secure", e.raw_key);
            let message = format!(
                "false turns off certificate verification for {}://{}: neither the issuer nor the name of the upstream's certificate is checked, so whoever answers at that address receives this endpoint's requests with the headers the gateway injects; remove it once the upstream's certificate is one the gateway trusts (a private CA: render --ca-file)",
                e.target.scheme,
                e.target.authority()
            );
            finding(merged, &path, message)
        })
        .collect()
}

#[cfg(test)]
mod tests;
