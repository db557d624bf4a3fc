//! Where a request goes: the prefix, the endpoint it matches, and the path
//! its upstream receives (the rewrite and the join behind the target's
//! base path). How paths are read (safety, slashes, where a path lands)
//! is [`crate::path`]'s.

use crate::config::{Endpoint, Plan, RewriteRule};
use crate::path::{push_collapsing_slashes, split_path};

/// Where a canonical path stands relative to the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Not under `gateway.prefix`: passed through.
    Outside,
    /// Under the prefix; the rest after the prefix ("" or starting with `/`).
    Under(String),
}

/// Is `canonical` (slashes collapsed) under the prefix? Compared ASCII
/// case-insensitively, on a segment boundary.
pub fn locate(plan: &Plan, canonical: &str) -> Location {
    let prefix = &plan.prefix_lower;
    let Some(head) = canonical.get(..prefix.len()) else {
        return Location::Outside;
    };
    if !head.eq_ignore_ascii_case(prefix) {
        return Location::Outside;
    }
    let rest = canonical.get(prefix.len()..).unwrap_or_default();
    if rest.is_empty() || rest.starts_with('/') {
        Location::Under(rest.to_string())
    } else {
        Location::Outside
    }
}

/// Longest endpoint key matching `rest` (the path after the prefix). A key
/// matches when it equals `rest` or is followed by `/`, ignoring ASCII case.
///
/// Linear in `rest` whatever its shape: only its first `longest_key + 1`
/// bytes are read, so a path of thousands of short segments probes no more
/// candidates than the configuration has room for.
pub fn match_endpoint<'p>(plan: &'p Plan, rest: &str) -> Option<(usize, &'p Endpoint)> {
    let rest = rest.trim_end_matches('/');
    let window = rest
        .get(..plan.longest_key + 1)
        .unwrap_or(rest)
        .to_ascii_lowercase();
    // A key matches `rest` itself only when `rest` fits in the window;
    // otherwise the longest candidate ends before a `/` inside it.
    let mut candidate: &str = if window.len() == rest.len() {
        &window
    } else {
        match window.rfind('/') {
            Some(pos) => window.get(..pos).unwrap_or_default(),
            None => "",
        }
    };
    // Probe it, then every shorter candidate ending before a `/`.
    loop {
        if let Some(&i) = plan.index.get(candidate) {
            return plan.endpoints.get(i).map(|e| (i, e));
        }
        if candidate.is_empty() {
            return None;
        }
        candidate = match candidate.rfind('/') {
            Some(pos) => candidate.get(..pos).unwrap_or_default(),
            None => "",
        };
    }
}

/// The request path and query an endpoint's upstream receives, or `None`
/// when a `pathRewrite` result is refused (it must start with a single `/`).
pub fn upstream_path(
    endpoint: &Endpoint,
    raw_path: &str,
    canonical_rest: &str,
    query: Option<&str>,
) -> Option<String> {
    // 1. Rewrite: either the configured rules (applied to the original
    //    path-and-query) or the default strip of `<prefix><key>` and one `/`.
    let rewritten;
    let (path, query): (&str, Option<&str>) = match &endpoint.path_rewrite {
        None => {
            let after = canonical_rest.get(endpoint.key.len()..).unwrap_or_default();
            (after.strip_prefix('/').unwrap_or(after), query)
        }
        Some(rules) => {
            let original = raw_path.split('#').next().unwrap_or_default();
            rewritten = apply_rewrite(rules, original).unwrap_or_else(|| original.to_string());
            let sp = split_path(&rewritten);
            let p = sp.path;
            if !(p.is_empty() || (p.starts_with('/') && !p.starts_with("//"))) {
                return None;
            }
            (p, sp.query)
        }
    };
    // 2. Join behind the target's base path and collapse slashes; the query
    //    stays byte-for-byte, after the target's own parameters. One buffer,
    //    no intermediate strings: this runs on every forwarded request.
    let target_query = endpoint.target.query.as_deref();
    let mut out = String::with_capacity(
        endpoint.target.path.len()
            + path.len()
            + 3
            + target_query.map_or(0, str::len)
            + query.map_or(0, str::len),
    );
    for piece in [endpoint.target.path.as_str(), "/", "/", path] {
        push_collapsing_slashes(&mut out, piece);
    }
    match (target_query, query) {
        (Some(t), Some(q)) if !t.is_empty() && !q.is_empty() => {
            out.extend(["?", t, "&", q]);
        }
        (Some(t), None | Some("")) => out.extend(["?", t]),
        (_, Some(q)) => out.extend(["?", q]),
        (_, None) => {}
    }
    Some(out)
}

/// Applies the first matching rule once, with JavaScript replacement syntax.
pub fn apply_rewrite(rules: &[RewriteRule], input: &str) -> Option<String> {
    for rule in rules {
        if let Some(caps) = rule.regex.captures(input) {
            let m = caps.get(0)?;
            let mut out = String::with_capacity(input.len() + rule.replacement.len());
            out.push_str(input.get(..m.start())?);
            let has_named = rule.regex.capture_names().flatten().next().is_some();
            expand_js(
                &rule.replacement,
                &caps,
                has_named,
                input,
                m.start(),
                m.end(),
                &mut out,
            );
            out.push_str(input.get(m.end()..)?);
            return Some(out);
        }
    }
    None
}

/// `String.prototype.replace` substitution patterns: `$$`, `$&`, `` $` ``,
/// `$'`, `$n`/`$nn` and `$<name>`.
fn expand_js(
    repl: &str,
    caps: &regex_lite::Captures<'_>,
    has_named: bool,
    input: &str,
    start: usize,
    end: usize,
    out: &mut String,
) {
    let groups = caps.len().saturating_sub(1);
    let bytes = repl.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'$' {
            // copy one UTF-8 character
            let ch_len = repl
                .get(i..)
                .and_then(|s| s.chars().next())
                .map(char::len_utf8)
                .unwrap_or(1);
            out.push_str(repl.get(i..i + ch_len).unwrap_or_default());
            i += ch_len;
            continue;
        }
        match bytes.get(i + 1).copied() {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'&') => {
                out.push_str(input.get(start..end).unwrap_or_default());
                i += 2;
            }
            Some(b'`') => {
                out.push_str(input.get(..start).unwrap_or_default());
                i += 2;
            }
            Some(b'\'') => {
                out.push_str(input.get(end..).unwrap_or_default());
                i += 2;
            }
            Some(d1 @ b'0'..=b'9') => {
                let one = usize::from(d1 - b'0');
                let two = bytes
                    .get(i + 2)
                    .filter(|c| c.is_ascii_digit())
                    .map(|&d2| one * 10 + usize::from(d2 - b'0'));
                if let Some(n) = two.filter(|&n| n >= 1 && n <= groups) {
                    out.push_str(caps.get(n).map(|m| m.as_str()).unwrap_or_default());
                    i += 3;
                } else if one >= 1 && one <= groups {
                    out.push_str(caps.get(one).map(|m| m.as_str()).unwrap_or_default());
                    i += 2;
                } else {
                    out.push('$');
                    i += 1;
                }
            }
            Some(b'<') if has_named => match repl.get(i + 2..).and_then(|s| s.find('>')) {
                Some(close) => {
                    let name = repl.get(i + 2..i + 2 + close).unwrap_or_default();
                    out.push_str(caps.name(name).map(|m| m.as_str()).unwrap_or_default());
                    i += close + 3;
                }
                None => {
                    out.push('$');
                    i += 1;
                }
            },
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
