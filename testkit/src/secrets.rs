//! Envoy logs and the secrets that must never appear in them
//!
//! With `BPW_LOG_DIR` set (make test sets it), every Envoy's log (wasm
//! component at debug) is kept there, and every secret a test hands to the
//! gateway is appended to `secrets.txt` beside it: the values of
//! `authorization` lines sent, the static tokens, legacy secrets and injected
//! header values of each filter configuration, the VM environment values.
//! tests/log_scan.rs then reads them all.

use std::io::Write;
use std::path::PathBuf;

use crate::*;

pub fn log_dir() -> Option<PathBuf> {
    let d = PathBuf::from(std::env::var_os("BPW_LOG_DIR")?);
    std::fs::create_dir_all(&d).unwrap();
    Some(d)
}

/// Records a value that must not appear in any Envoy log.
pub fn secret(value: &str) {
    // Shorter values ("x", "Bearer") would match ordinary log text; 8 is
    // the shortest static token the configuration accepts.
    if value.len() < 8 {
        return;
    }
    if let Some(d) = log_dir() {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("secrets.txt"))
            .unwrap();
        // one write per line: appends from parallel tests do not interleave
        f.write_all(format!("{}\n", value.replace('\n', " ")).as_bytes())
            .unwrap();
    }
}

pub(crate) fn register_request_secrets(raw: &str) {
    for line in raw.split("\r\n") {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if name == "authorization" || name == "proxy-authorization" {
                let value = value.trim();
                secret(value.rsplit(' ').next().unwrap_or(value));
            }
        }
    }
}

pub(crate) fn register_config_secrets(opts: &EnvoyOptions) {
    for (_, v) in &opts.vm_env {
        secret(v);
    }
    let Ok(cfg) = serde_json::from_str::<serde_json::Value>(&opts.filter_config) else {
        return;
    };
    let auth = &cfg["backend"]["auth"];
    for k in auth["keys"].as_array().into_iter().flatten() {
        secret(k["secret"].as_str().unwrap_or_default());
    }
    for e in auth["externalAccess"].as_array().into_iter().flatten() {
        for field in ["token", "secret"] {
            secret(e["options"][field].as_str().unwrap_or_default());
        }
    }
    let endpoints = cfg["proxy"]["endpoints"]
        .as_object()
        .or_else(|| cfg["proxy"].as_object());
    for ep in endpoints.into_iter().flat_map(|m| m.values()) {
        // `auth` as written, and as the `Basic` value it becomes.
        if let Some(a) = ep["auth"].as_str() {
            let mut value = a.to_string();
            for (k, v) in &opts.vm_env {
                value = value.replace(&format!("${{{k}}}"), v);
            }
            secret(&value);
            secret(&crate::mint::b64std(value.as_bytes()));
        }
        for v in ep["headers"]
            .as_object()
            .into_iter()
            .flat_map(|h| h.values())
        {
            // `${VAR}` references are resolved in the VM: their values are
            // registered through vm_env
            let v = v.as_str().unwrap_or_default();
            if !v.contains("${") {
                secret(v);
            }
        }
    }
}
