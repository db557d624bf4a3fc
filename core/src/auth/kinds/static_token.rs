//! Static tokens of `externalAccess` entries of `type: static`, known by
//! their SHA-256 digest (`docs/tokens.md#external-access`).

use hmac_sha256::Hash as Sha256;

use crate::auth::ct_eq;
use crate::config::{Plan, StaticToken};

/// The configured entry whose token is exactly `token`: its digest
/// compared in constant time against every entry's (no early exit on a
/// match). The digest is computed only when some static token is
/// configured.
pub(crate) fn matching<'p>(plan: &'p Plan, token: &str) -> Option<&'p StaticToken> {
    if plan.auth.static_tokens.is_empty() {
        return None;
    }
    let digest = Sha256::hash(token.as_bytes());
    let mut matched = None;
    for entry in &plan.auth.static_tokens {
        if ct_eq(&entry.digest, &digest) && matched.is_none() {
            matched = Some(entry);
        }
    }
    matched
}
