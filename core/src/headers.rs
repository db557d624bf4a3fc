//! Request and response header policy: allow-lists by lower-cased name,
//! every value of a removed header removed, injected headers set.

use std::borrow::Cow;

use crate::config::Endpoint;

/// Names (lower-cased, deduplicated, in first-seen order) of the request
/// headers to remove before the request leaves. Pseudo-headers are kept.
pub fn request_removals<'a>(
    endpoint: &Endpoint,
    names: impl Iterator<Item = &'a str>,
) -> Vec<Cow<'a, str>> {
    removals(names, |n| endpoint.request_allow.contains(n))
}

/// Names of the upstream response headers to remove.
pub fn response_removals<'a>(
    endpoint: &Endpoint,
    names: impl Iterator<Item = &'a str>,
) -> Vec<Cow<'a, str>> {
    removals(names, |n| endpoint.response_allow.contains(n))
}

fn removals<'a>(
    names: impl Iterator<Item = &'a str>,
    allowed: impl Fn(&str) -> bool,
) -> Vec<Cow<'a, str>> {
    let mut out: Vec<Cow<'a, str>> = Vec::new();
    for name in names {
        if name.starts_with(':') {
            continue;
        }
        // Envoy hands over lower-cased names: allocate only when one is not.
        let lower: Cow<'a, str> = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        if !allowed(&lower) && !out.iter().any(|o| *o == *lower) {
            out.push(lower);
        }
    }
    out
}

#[cfg(test)]
mod tests;
