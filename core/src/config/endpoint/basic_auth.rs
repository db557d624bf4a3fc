//! `auth`: http-proxy's basic-auth option, which Backstage's proxy passes
//! through (`auth: '${SONARQUBE_TOKEN}:'` in SonarQube's documented
//! configuration). Node sends `Authorization: Basic <base64 of the value>`
//! when the outgoing request has no `Authorization` of its own
//! (`docs/configuration.md#an-endpoint`).

use super::super::interpolate;
use super::super::json::*;
use crate::base64;
use serde_json::{Map, Value};

/// The `Authorization` value `auth` gives, with `${VAR}` read from the
/// VM's environment. An empty value sends nothing, as in Node (an empty
/// `auth` is falsy there). Errors name the variable, never the value.
pub(super) fn basic_auth(
    errs: &mut Errors,
    path: &str,
    obj: &Map<String, Value>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let ap = join(path, "auth");
    let template = match obj.get("auth")? {
        Value::String(s) => s,
        other => {
            errs.add(
                &ap,
                format!("must be a string, but is of type {}", type_name(other)),
            );
            return None;
        }
    };
    let value = match interpolate(template, env) {
        Ok(v) => v,
        Err(msg) => {
            errs.add(&ap, msg);
            return None;
        }
    };
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        errs.add(&ap, "value contains CR, LF or NUL");
        return None;
    }
    (!value.is_empty()).then(|| format!("Basic {}", base64::encode_std(value.as_bytes())))
}
