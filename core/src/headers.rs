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

/// Up to this many removals, duplicates are found by a scan of the list;
/// beyond, by a set. A scan per header made a request with 100 headers
/// cost about 450,000 instructions in the VM (quadratic in the number of
/// headers removed: `make bench-instructions`, growth table).
const SCAN_DEDUP_UP_TO: usize = 8;

fn removals<'a>(
    names: impl Iterator<Item = &'a str>,
    allowed: impl Fn(&str) -> bool,
) -> Vec<Cow<'a, str>> {
    let mut out: Vec<Cow<'a, str>> = Vec::new();
    let mut seen: Option<crate::fasthash::FastSet<String>> = None;
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
        if allowed(&lower) {
            continue;
        }
        let duplicate = match &mut seen {
            Some(set) => !set.insert(lower.to_string()),
            None => out.iter().any(|o| *o == *lower),
        };
        if duplicate {
            continue;
        }
        out.push(lower);
        if seen.is_none() && out.len() > SCAN_DEDUP_UP_TO {
            let mut set = crate::fasthash::set();
            set.extend(out.iter().map(|o| o.to_string()));
            seen = Some(set);
        }
    }
    out
}

#[cfg(test)]
mod tests;
