//! `backend.auth.externalAccess` entries: static tokens, legacy shared
//! secrets and external `jwks` providers, with their access restrictions.

use super::interpolate;
use super::json::*;
use super::{
    AccessRestriction, AuthConfig, JwksProvider, LegacySecret, Restrictions, StaticToken,
    JWS_ALGORITHMS,
};
use crate::base64;
use crate::permission::{Action, Restriction};
use crate::url::Url;
use hmac_sha256::Hash as Sha256;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// The VM's environment, as the configuration reads it.
pub(super) type Env<'e> = &'e dyn Fn(&str) -> Option<String>;

/// A secret (a static token, a legacy secret) with `${VAR}` read from the
/// VM's environment, so that no rendered configuration needs to hold it
/// (`docs/tokens.md#secrets-in-the-configuration`). Errors name the
/// variable, never a value.
pub(super) fn secret_string(
    errs: &mut Errors,
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
    env: Env<'_>,
) -> Option<String> {
    let raw = required_string(errs, obj, path, key)?;
    match interpolate(raw, env) {
        Ok(v) => Some(v),
        Err(msg) => {
            errs.add(&join(path, key), msg);
            None
        }
    }
}

pub(super) fn required_string<'a>(
    errs: &mut Errors,
    obj: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Option<&'a str> {
    if !obj.contains_key(key) {
        errs.add(&join(path, key), "is required");
        return None;
    }
    opt_string(errs, obj, path, key)
}

pub(super) fn parse_subject<'a>(
    errs: &mut Errors,
    obj: &'a Map<String, Value>,
    path: &str,
) -> Option<&'a str> {
    let s = required_string(errs, obj, path, "subject")?;
    if !is_non_whitespace(s) {
        errs.add(
            &join(path, "subject"),
            "must not be empty or contain whitespace",
        );
        return None;
    }
    Some(s)
}

/// A base64 (either alphabet) secret that must decode to a non-empty key.
/// Errors never quote the secret.
pub(super) fn parse_secret(
    errs: &mut Errors,
    obj: &Map<String, Value>,
    path: &str,
    env: Env<'_>,
) -> Option<Vec<u8>> {
    let s = secret_string(errs, obj, path, "secret", env)?;
    let s = s.as_str();
    if !is_non_whitespace(s) {
        errs.add(
            &join(path, "secret"),
            "must not be empty or contain whitespace",
        );
        return None;
    }
    let valid = s
        .trim_end_matches('=')
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'));
    let key = base64::decode_secret(s);
    if !valid || key.is_empty() {
        errs.add(
            &join(path, "secret"),
            "must be base64 that decodes to a non-empty key",
        );
        return None;
    }
    Some(key)
}

/// `accessRestrictions`, as Backstage reads them: one entry per plugin (a
/// second entry for the same plugin is an error, as in Backstage), each
/// with the permission names and actions it is limited to. A list written
/// empty is an error here where Backstage would read it as unset, which
/// would lift the restriction.
pub(super) fn parse_restrictions(errs: &mut Errors, path: &str, v: &Value) -> Restrictions {
    let Value::Array(items) = v else {
        errs.add(
            path,
            format!("must be an array, but is of type {}", type_name(v)),
        );
        return None;
    };
    if items.is_empty() {
        errs.add(path, "must not be empty");
        return None;
    }
    let mut out: Vec<AccessRestriction> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let Some(o) = as_object(errs, &ip, item) else {
            continue;
        };
        check_keys(
            errs,
            &ip,
            o,
            &["plugin", "permission", "permissionAttribute"],
        );
        let names = o
            .get("permission")
            .and_then(|perm| string_list(errs, &join(&ip, "permission"), perm))
            .map(dedup);
        let actions = o
            .get("permissionAttribute")
            .and_then(|attr| parse_actions(errs, &join(&ip, "permissionAttribute"), attr));
        match required_string(errs, o, &ip, "plugin") {
            Some(p) if !is_non_whitespace(p) => errs.add(
                &join(&ip, "plugin"),
                "must not be empty or contain whitespace",
            ),
            Some(p) if out.iter().any(|x| x.plugin == p) => errs.add(
                &join(&ip, "plugin"),
                format!("'{p}' has restrictions already; give each plugin one entry"),
            ),
            Some(p) => out.push(AccessRestriction {
                plugin: p.to_string(),
                permission: Restriction { names, actions },
            }),
            None => {}
        }
    }
    Some(out.into())
}

/// `permissionAttribute`: only `action`, each one Backstage knows.
fn parse_actions(errs: &mut Errors, ap: &str, attr: &Value) -> Option<Vec<Action>> {
    let a = as_object(errs, ap, attr)?;
    check_keys(errs, ap, a, &["action"]);
    let list = string_list(errs, &join(ap, "action"), a.get("action")?)?;
    let mut out = Vec::new();
    for action in dedup(list) {
        match Action::parse(&action) {
            Some(a) => out.push(a),
            None => errs.add(
                &join(ap, "action"),
                format!("unknown action '{action}'; expected one of create, read, update, delete"),
            ),
        }
    }
    Some(out)
}

fn dedup(mut list: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    list.retain(|s| seen.insert(s.clone()));
    list
}

pub(super) fn parse_jwks(
    errs: &mut Errors,
    options: &Map<String, Value>,
    op: &str,
    restrictions: Restrictions,
) -> Option<JwksProvider> {
    check_keys(
        errs,
        op,
        options,
        &[
            "url",
            "issuer",
            "audience",
            "algorithm",
            "subjectPrefix",
            "cluster",
        ],
    );
    let raw_url = required_string(errs, options, op, "url");
    let url = raw_url.and_then(|u| match Url::parse(u) {
        Ok(url) => Some(url),
        Err(e) => {
            errs.add(&join(op, "url"), format!("is not a valid URL: {e}"));
            None
        }
    });
    let issuers = options
        .get("issuer")
        .and_then(|v| string_list(errs, &join(op, "issuer"), v));
    let audiences = options
        .get("audience")
        .and_then(|v| string_list(errs, &join(op, "audience"), v));
    let algorithms = options
        .get("algorithm")
        .and_then(|v| string_list(errs, &join(op, "algorithm"), v));
    if let Some(algs) = &algorithms {
        for alg in algs {
            if !JWS_ALGORITHMS.contains(&alg.as_str()) || alg.starts_with("HS") {
                errs.add(
                    &join(op, "algorithm"),
                    format!("unsupported algorithm '{alg}' for a key set; expected asymmetric algorithms such as ES256, RS256, PS256, EdDSA"),
                );
            }
        }
    }
    let subject_prefix = opt_string(errs, options, op, "subjectPrefix").map(str::to_string);
    let cluster = opt_string(errs, options, op, "cluster").map(str::to_string);
    let url = url?;
    Some(JwksProvider {
        cluster: cluster.unwrap_or_else(|| url.cluster_name()),
        raw_url: raw_url.unwrap_or_default().to_string(),
        url,
        issuers,
        audiences,
        algorithms,
        subject_prefix,
        restrictions,
    })
}

/// `backend.auth.externalAccess`: every entry into `auth`, in order;
/// static tokens are checked for duplicates once all are read.
pub(super) fn parse_external_access(
    errs: &mut Errors,
    ext: &Value,
    auth: &mut AuthConfig,
    env: Env<'_>,
) {
    let ep = "backend.auth.externalAccess";
    let Value::Array(items) = ext else {
        errs.add(
            ep,
            format!("must be an array, but is of type {}", type_name(ext)),
        );
        return;
    };
    let mut statics = Vec::new();
    for (i, item) in items.iter().enumerate() {
        parse_entry(errs, &format!("{ep}[{i}]"), item, auth, &mut statics, env);
    }
    let mut seen_tokens: HashSet<[u8; 32]> = HashSet::new();
    for (path, digest, subject, restrictions) in statics {
        if !seen_tokens.insert(digest) {
            errs.add(&path, "the same static token is configured more than once");
            continue;
        }
        auth.static_tokens.push(StaticToken {
            digest,
            subject: subject.to_string(),
            restrictions,
        });
    }
}

/// A static token read but not yet checked against the others: its JSON
/// path, digest, subject and restrictions.
type PendingStatic<'a> = (String, [u8; 32], &'a str, Restrictions);

/// The SHA-256 of a static token: from `token` (a value, or `${VAR}` from
/// the VM's environment) or `tokenDigest` (`sha256:` and 64 hex digits),
/// exactly one of the two.
fn static_digest(
    errs: &mut Errors,
    options: &Map<String, Value>,
    op: &str,
    env: Env<'_>,
) -> Option<[u8; 32]> {
    match (options.contains_key("token"), options.get("tokenDigest")) {
        (true, Some(_)) => {
            errs.add(op, "has both token and tokenDigest; give one of them");
            None
        }
        (false, Some(v)) => {
            let digest = match v {
                Value::String(s) => parse_digest(s),
                _ => None,
            };
            if digest.is_none() {
                errs.add(
                    &join(op, "tokenDigest"),
                    "must be 'sha256:' followed by 64 hexadecimal digits",
                );
            }
            digest
        }
        (_, None) => {
            let t = secret_string(errs, options, op, "token", env)?;
            if !is_non_whitespace(&t) {
                errs.add(
                    &join(op, "token"),
                    "must not be empty or contain whitespace",
                );
                None
            } else if t.chars().count() < 8 {
                errs.add(&join(op, "token"), "must be at least 8 characters long");
                None
            } else {
                Some(Sha256::hash(t.as_bytes()))
            }
        }
    }
}

/// `sha256:` and 64 hex digits (either case) → the digest.
fn parse_digest(s: &str) -> Option<[u8; 32]> {
    let hex = s.strip_prefix("sha256:")?.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |b: u8| char::from(b).to_digit(16);
        let (hi, lo) = (digit(*pair.first()?)?, digit(*pair.get(1)?)?);
        *byte = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// One `externalAccess` entry.
fn parse_entry<'a>(
    errs: &mut Errors,
    ip: &str,
    item: &'a Value,
    auth: &mut AuthConfig,
    statics: &mut Vec<PendingStatic<'a>>,
    env: Env<'_>,
) {
    let Some(o) = as_object(errs, ip, item) else {
        return;
    };
    check_keys(errs, ip, o, &["type", "options", "accessRestrictions"]);
    let restrictions = o
        .get("accessRestrictions")
        .and_then(|v| parse_restrictions(errs, &join(ip, "accessRestrictions"), v));
    let op = join(ip, "options");
    let options = match o.get("options") {
        Some(v) => as_object(errs, &op, v),
        None => {
            errs.add(&op, "is required");
            None
        }
    };
    let kind = match o.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            errs.add(
                &join(ip, "type"),
                format!("must be a string, but is of type {}", type_name(other)),
            );
            return;
        }
        None => {
            errs.add(
                &join(ip, "type"),
                "is required; expected one of static, legacy, jwks",
            );
            return;
        }
    };
    let Some(options) = options else { return };
    match kind {
        "static" => {
            check_keys(errs, &op, options, &["token", "tokenDigest", "subject"]);
            let digest = static_digest(errs, options, &op, env);
            let subject = parse_subject(errs, options, &op);
            if let (Some(d), Some(s)) = (digest, subject) {
                statics.push((join(&op, "token"), d, s, restrictions));
            }
        }
        "legacy" => {
            check_keys(errs, &op, options, &["secret", "subject"]);
            let key = parse_secret(errs, options, &op, env);
            let subject = parse_subject(errs, options, &op);
            if let (Some(key), Some(subject)) = (key, subject) {
                auth.legacy.push(LegacySecret {
                    key,
                    subject: subject.to_string(),
                    restrictions,
                });
            }
        }
        "jwks" => {
            if let Some(provider) = parse_jwks(errs, options, &op, restrictions) {
                auth.jwks.push(provider);
            }
        }
        other => errs.add(
            &join(ip, "type"),
            format!("unknown type '{other}'; expected one of static, legacy, jwks"),
        ),
    }
}
