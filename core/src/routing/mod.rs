//! Path safety, endpoint matching, path rewriting and the join behind the
//! target's base path. Pure functions over strings.

use crate::config::{Endpoint, Plan, RewriteRule};

/// `:path` split into its path part and query (without `?`). A fragment, if
/// a client sent one, is dropped: it is never matched and never forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitPath<'a> {
    pub path: &'a str,
    pub query: Option<&'a str>,
}

pub fn split_path(raw: &str) -> SplitPath<'_> {
    let raw = raw.split('#').next().unwrap_or_default();
    match raw.split_once('?') {
        Some((path, query)) => SplitPath {
            path,
            query: Some(query),
        },
        None => SplitPath {
            path: raw,
            query: None,
        },
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Why a path was refused with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafePath {
    /// Raw byte outside printable ASCII (control characters, NUL, non-ASCII).
    RawByte,
    /// A `%` not followed by two hex digits, or decoding to invalid UTF-8.
    BadEncoding,
    /// NUL or a control character after decoding.
    ControlCharacter,
    /// A `.` or `..` segment (also `.;x`, `..;x`), after decoding with `\` as `/`.
    DotSegment,
    /// An upstream path that a URL parser would read as another host: it
    /// starts with `//` once `\` is read as `/` and `%2F`/`%5C` decoded
    /// (`/\evil.example/a` is `//evil.example/a` to WHATWG parsers).
    AuthorityLike,
    /// An upstream path outside the target's base path.
    OutsideBase,
}

/// Path safety (SPEC §2 step 1): percent-decode the path part once, read
/// `\` as `/`, and refuse dot segments, bad encodings and control
/// characters. The path itself is not changed.
pub fn check_path_safety(path: &str) -> Result<(), UnsafePath> {
    let bytes = path.as_bytes();
    if !crate::ascii::all_visible(bytes) {
        return Err(UnsafePath::RawByte);
    }
    // Without `%` there is nothing to decode, and the bytes just checked
    // (visible ASCII) hold no control character.
    if !bytes.contains(&b'%') {
        return check_segments(path);
    }
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex);
            let lo = bytes.get(i + 2).copied().and_then(hex);
            match (hi, lo) {
                (Some(h), Some(l)) => decoded.push(h << 4 | l),
                _ => return Err(UnsafePath::BadEncoding),
            }
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    let decoded = String::from_utf8(decoded).map_err(|_| UnsafePath::BadEncoding)?;
    if decoded.chars().any(|c| c.is_control()) {
        return Err(UnsafePath::ControlCharacter);
    }
    check_segments(&decoded)
}

fn check_segments(decoded: &str) -> Result<(), UnsafePath> {
    for segment in decoded.as_bytes().split(|&b| b == b'/' || b == b'\\') {
        // Servlet-style containers strip `;params` per segment: `..;x` is `..` to them.
        let name = segment.split(|&b| b == b';').next().unwrap_or_default();
        if name == b"." || name == b".." {
            return Err(UnsafePath::DotSegment);
        }
    }
    Ok(())
}

/// The rules for the path an upstream receives (SPEC §2 step 1), after
/// `pathRewrite` and the join behind `base`: the same safety rules as an
/// incoming path, never a leading `//` in any spelling, and under `base`.
pub fn check_upstream_path(path_and_query: &str, base: &str) -> Result<(), UnsafePath> {
    let path = split_path(path_and_query).path;
    check_path_safety(path)?;
    if authority_like(path) {
        return Err(UnsafePath::AuthorityLike);
    }
    let base = base.trim_end_matches('/');
    let under = path.get(..base.len()).is_some_and(|head| head == base)
        && matches!(path.as_bytes().get(base.len()), None | Some(b'/'));
    if !under {
        return Err(UnsafePath::OutsideBase);
    }
    Ok(())
}

/// Whether `path` starts with two separators, reading `\` as `/` and
/// decoding `%2F` and `%5C`.
fn authority_like(path: &str) -> bool {
    let mut rest = path.as_bytes();
    let mut separators = 0;
    while separators < 2 {
        let (is_sep, len) = match rest {
            [b'/' | b'\\', ..] => (true, 1),
            [b'%', b'2', b'f' | b'F', ..] | [b'%', b'5', b'c' | b'C', ..] => (true, 3),
            _ => (false, 0),
        };
        if !is_sep {
            return false;
        }
        separators += 1;
        rest = rest.get(len..).unwrap_or_default();
    }
    true
}

/// Whether `upstream` (a path and query) lands under `base` as common
/// servers read a path: unreserved percent-encodings and `%2F` decoded,
/// `;` parameters stripped from each segment, empty segments dropped,
/// compared ASCII case-insensitively (stricter on case-sensitive servers,
/// right on the others). Dot segments never get here (refused before).
pub fn lands_under(upstream: &str, base: &str) -> bool {
    let path = split_path(upstream).path;
    let decoded = decode_for_servers(path);
    let mut have = server_segments(&decoded);
    server_segments(base).all(|want| {
        have.next()
            .is_some_and(|got| got.eq_ignore_ascii_case(want))
    })
}

fn server_segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .map(|s| s.split(';').next().unwrap_or_default())
        .filter(|s| !s.is_empty())
}

/// Decodes `%XX` when it stands for an unreserved character or `/`; every
/// other escape stays as sent.
fn decode_for_servers(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains('%') {
        return std::borrow::Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = match (b, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex(h).zip(hex(l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(c) if c.is_ascii_alphanumeric() || b"-._~/".contains(&c) => {
                out.push(char::from(c));
                i += 3;
            }
            _ => {
                out.push(char::from(b));
                i += 1;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Collapses runs of `/` into one.
pub fn collapse_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    push_collapsing_slashes(&mut out, path);
    out
}

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

/// Appends `piece`, dropping any `/` that would follow another `/`. Paths
/// rarely hold `//`, so the usual case is one copy of the whole piece.
fn push_collapsing_slashes(out: &mut String, piece: &str) {
    let mut start = 0;
    let mut prev_slash = out.ends_with('/');
    for (i, b) in piece.bytes().enumerate() {
        let slash = b == b'/';
        if slash && prev_slash {
            // `/` is one byte, so i and i + 1 are character boundaries
            out.push_str(piece.get(start..i).unwrap_or_default());
            start = i + 1;
        }
        prev_slash = slash;
    }
    out.push_str(piece.get(start..).unwrap_or_default());
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
