//! Static tokens of `externalAccess` entries of `type: static`.

use crate::auth::ct_eq;
use crate::config::{Plan, StaticToken};

/// The configured entry whose token is exactly `token`, compared in
/// constant time against every entry (no early exit on a match).
pub(crate) fn matching<'p>(plan: &'p Plan, token: &str) -> Option<&'p StaticToken> {
    let mut matched = None;
    for entry in &plan.auth.static_tokens {
        if ct_eq(entry.token.as_slice(), token.as_bytes()) && matched.is_none() {
            matched = Some(entry);
        }
    }
    matched
}
