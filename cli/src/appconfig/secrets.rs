//! What the tool writes for the secrets it reads
//! (`docs/tokens.md#secrets-in-the-configuration`): a static token's
//! SHA-256 in place of the token, and a warning for every secret that
//! would otherwise reach an output as written.

use serde_json::{json, Map, Value};

use crate::oci::sha256_hex;

/// Replaces every resolved static token by `tokenDigest`: no output the
/// tool writes holds a token that calls an endpoint. A token still
/// written as `${VAR}` (unset where the tool runs) is left for the VM.
pub fn digest_static_tokens(filter_config: &mut Value) {
    let Some(list) = filter_config
        .pointer_mut("/backend/auth/externalAccess")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for options in list
        .iter_mut()
        .filter(|e| e.get("type").and_then(Value::as_str) == Some("static"))
        .filter_map(|e| e.get_mut("options").and_then(Value::as_object_mut))
    {
        digest_one(options);
    }
}

fn digest_one(options: &mut Map<String, Value>) {
    let Some(Value::String(token)) = options.get("token") else {
        return;
    };
    if token.contains("${") {
        return;
    }
    // The filter reads `$${` as a literal `${`: none is left in a
    // resolved token, so the digest is of the token exactly.
    let digest = format!("sha256:{}", sha256_hex(token.as_bytes()));
    options.remove("token");
    options.insert("tokenDigest".to_string(), json!(digest));
}

/// Legacy secrets written as values in the app-config reach every output
/// as written (an HMAC key has no digest to stand in for it): one warning
/// each, (JSON path, message), naming where, never the value.
pub fn literal_secret_warnings(filter_config: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut check = |path: String, v: Option<&Value>| {
        if let Some(Value::String(s)) = v {
            if !s.contains("${") {
                out.push((path, "a literal secret is written into the gateway's configuration as it is in the app-config; write it as ${VAR} so that the gateway reads it from its environment".to_string()));
            }
        }
    };
    if let Some(Value::Array(keys)) = filter_config.pointer("/backend/auth/keys") {
        for (i, k) in keys.iter().enumerate() {
            check(format!("backend.auth.keys[{i}].secret"), k.get("secret"));
        }
    }
    if let Some(Value::Array(list)) = filter_config.pointer("/backend/auth/externalAccess") {
        for (i, e) in list.iter().enumerate() {
            if e.get("type").and_then(Value::as_str) == Some("legacy") {
                check(
                    format!("backend.auth.externalAccess[{i}].options.secret"),
                    e.pointer("/options/secret"),
                );
            }
        }
    }
    out
}
