//! The `backend` section: where the Backstage backend is (for user and
//! plugin key sets), the default auth policy, and `backend.auth` (keys and
//! external access).

use super::external_access::{parse_secret, Env};
use super::json::*;
use super::{AuthConfig, Backend, LegacySecret};
use crate::url::Url;
use serde_json::{Map, Value};

/// Keys of Backstage's `backend` block that configure the Backstage server
/// itself; accepted (so a user can paste the block) and ignored here.
pub(super) const BACKEND_SERVER_KEYS: [&str; 14] = [
    "listen",
    "https",
    "database",
    "cache",
    "csp",
    "reading",
    "workingDirectory",
    "lifecycle",
    "rateLimit",
    "trustProxy",
    "auditor",
    "health",
    "actions",
    "packages",
];

pub(super) fn parse_backend(
    errs: &mut Errors,
    warnings: &mut Vec<String>,
    obj: &Map<String, Value>,
    gateway_obj: &Map<String, Value>,
    env: Env<'_>,
) -> (Option<Backend>, bool, AuthConfig) {
    let p = "backend";
    let mut allowed = vec!["baseUrl", "auth", "cors"];
    allowed.extend_from_slice(&BACKEND_SERVER_KEYS);
    check_keys(errs, p, obj, &allowed);

    let backend = backend_location(errs, obj, gateway_obj);

    let empty = Map::new();
    let auth_obj = match obj.get("auth") {
        Some(v) => as_object(errs, "backend.auth", v).unwrap_or(&empty),
        None => &empty,
    };
    let ap = "backend.auth";
    check_keys(
        errs,
        ap,
        auth_obj,
        &[
            "dangerouslyDisableDefaultAuthPolicy",
            "keys",
            "externalAccess",
            "pluginKeyStore",
            "keyStore",
        ],
    );
    let disable =
        opt_bool(errs, auth_obj, ap, "dangerouslyDisableDefaultAuthPolicy").unwrap_or(false);
    if disable {
        warnings.push("backend.auth.dangerouslyDisableDefaultAuthPolicy is true: no endpoint requires credentials".to_string());
    }

    let mut auth = AuthConfig::default();
    if let Some(keys) = auth_obj.get("keys") {
        parse_legacy_keys(errs, warnings, keys, &mut auth, env);
    }
    if let Some(ext) = auth_obj.get("externalAccess") {
        super::external_access::parse_external_access(errs, ext, &mut auth, env);
    }
    if backend.is_none() {
        warnings.push(
            "neither backend.baseUrl nor gateway.backendUrl is set: Backstage user and plugin tokens cannot be verified".to_string(),
        );
    }
    (backend, disable, auth)
}

/// The Backstage backend, as the gateway reaches it: `gateway.backendUrl`,
/// else `backend.baseUrl`.
fn backend_location(
    errs: &mut Errors,
    obj: &Map<String, Value>,
    gateway_obj: &Map<String, Value>,
) -> Option<Backend> {
    let p = "backend";
    let base_url = opt_string(errs, obj, p, "baseUrl");
    let internal = opt_string(errs, gateway_obj, "gateway", "backendUrl");
    let explicit_cluster = opt_string(errs, gateway_obj, "gateway", "backendCluster");
    match internal
        .map(|u| ("gateway.backendUrl", u))
        .or(base_url.map(|u| ("backend.baseUrl", u)))
    {
        None => None,
        Some((path, raw)) => match Url::parse(raw) {
            Ok(url) => {
                let cluster = explicit_cluster
                    .map(str::to_string)
                    .unwrap_or_else(|| url.cluster_name());
                Some(Backend { url, cluster })
            }
            Err(e) => {
                errs.add(path, format!("is not a valid URL: {e}"));
                None
            }
        },
    }
}

/// `backend.auth.keys`: legacy shared secrets (deprecated in Backstage).
fn parse_legacy_keys(
    errs: &mut Errors,
    warnings: &mut Vec<String>,
    keys: &Value,
    auth: &mut AuthConfig,
    env: Env<'_>,
) {
    let kp = "backend.auth.keys";
    match keys {
        Value::Array(items) => {
            if !items.is_empty() {
                warnings.push("backend.auth.keys is deprecated in Backstage; prefer backend.auth.externalAccess with type: legacy".to_string());
            }
            for (i, item) in items.iter().enumerate() {
                let ip = format!("{kp}[{i}]");
                let Some(o) = as_object(errs, &ip, item) else {
                    continue;
                };
                check_keys(errs, &ip, o, &["secret"]);
                if let Some(key) = parse_secret(errs, o, &ip, env) {
                    auth.legacy.push(LegacySecret {
                        key,
                        subject: "external:backstage-plugin".to_string(),
                        restrictions: None,
                    });
                }
            }
        }
        other => errs.add(
            kp,
            format!("must be an array, but is of type {}", type_name(other)),
        ),
    }
}
