//! How paths are read, in every decision that reads one: the split of
//! `:path` into path and query, the safety rules (`docs/contract.md#1-path-safety`), runs of
//! slashes, and where a path lands as common servers read it. Pure
//! functions over strings; no configuration.

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

/// Path safety (`docs/contract.md#1-path-safety`): percent-decode the path part once, read
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

/// The rules for the path an upstream receives (`docs/contract.md#1-path-safety`), after
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
/// servers read a path, reading every spelling any of them accepts:
/// unreserved percent-encodings and `%2F` decoded; `\` and `%5C` read as
/// `/` (Node's URL parsers, WHATWG `new URL`, Deno, Bun and Hono do);
/// letters that Unicode case folding turns into ASCII (`ı` U+0131, `İ`
/// U+0130, `ſ` U+017F, `K` U+212A, raw or percent-encoded) read as those
/// ASCII letters (ASP.NET and Java's `equalsIgnoreCase` do); `;` parameters
/// stripped from each segment, empty segments dropped; compared ASCII
/// case-insensitively. Dot segments never get here (refused before).
pub fn lands_under(upstream: &str, base: &str) -> bool {
    let path = split_path(upstream).path;
    let read = server_reading(path);
    let base_read = server_reading(base);
    let mut have = server_segments(&read);
    let landed = server_segments(&base_read).all(|want| {
        have.next()
            .is_some_and(|got| got.eq_ignore_ascii_case(want))
    });
    landed
}

/// Whether `path` lies under `base` read byte for byte: its path's
/// segments (between `/`; empty ones, from runs of `/`, skipped) as sent,
/// no decoding, any letter case as written.
pub fn lands_exactly(path: &str, base: &str) -> bool {
    let mut have = exact_segments(path);
    let landed = exact_segments(base).all(|want| have.next() == Some(want));
    landed
}

fn exact_segments(path: &str) -> impl Iterator<Item = &str> {
    split_path(path).path.split('/').filter(|s| !s.is_empty())
}

fn server_segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .map(|s| s.split(';').next().unwrap_or_default())
        .filter(|s| !s.is_empty())
}

/// Letters whose Unicode case folding (or lower-casing) is an ASCII
/// letter, as UTF-8, and that letter.
const FOLDS_TO_ASCII: [(&[u8], char); 4] = [
    ("\u{0131}".as_bytes(), 'i'),
    ("\u{0130}".as_bytes(), 'i'),
    ("\u{017f}".as_bytes(), 's'),
    ("\u{212a}".as_bytes(), 'k'),
];

/// A path as servers read it, for [`lands_under`]: `%XX` decoded when it
/// stands for an unreserved character, `/` or `\`; `\` as `/`; the
/// letters of [`FOLDS_TO_ASCII`], raw or encoded, as ASCII. Every other
/// escape stays as sent (decoding `%3B` would make a `;` parameter of
/// what no server reads as one).
fn server_reading(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.bytes().any(|b| b == b'%' || b == b'\\' || b >= 0x80) {
        return std::borrow::Cow::Borrowed(path);
    }
    // Every `%XX` decoded into bytes, remembering which came from escapes.
    let bytes = path.as_bytes();
    let mut decoded: Vec<(u8, bool)> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = match (b, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex(h).zip(hex(l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(c) => {
                decoded.push((c, true));
                i += 3;
            }
            None => {
                decoded.push((b, false));
                i += 1;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    let mut j = 0;
    while let Some(&(b, escaped)) = decoded.get(j) {
        let fold = FOLDS_TO_ASCII.iter().find(|(utf8, _)| {
            decoded
                .get(j..j + utf8.len())
                .is_some_and(|run| run.iter().map(|(c, _)| *c).eq(utf8.iter().copied()))
        });
        if let Some((utf8, ascii)) = fold {
            out.push(*ascii);
            j += utf8.len();
            continue;
        }
        match (b, escaped) {
            (b'\\', _) => out.push('/'),
            (c, true) if c.is_ascii_alphanumeric() || b"-._~/".contains(&c) => {
                out.push(char::from(c))
            }
            (c, true) => {
                let _ = std::fmt::Write::write_fmt(&mut out, format_args!("%{c:02X}"));
            }
            (c, false) if c.is_ascii() => out.push(char::from(c)),
            // Raw bytes outside ASCII are refused before a path gets here;
            // keep whatever else as an escape, never as a letter.
            (c, false) => {
                let _ = std::fmt::Write::write_fmt(&mut out, format_args!("%{c:02X}"));
            }
        }
        j += 1;
    }
    std::borrow::Cow::Owned(out)
}

/// Collapses runs of `/` into one.
pub fn collapse_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    push_collapsing_slashes(&mut out, path);
    out
}

/// Appends `piece`, dropping any `/` that would follow another `/`. Paths
/// rarely hold `//`, so the usual case is one copy of the whole piece.
pub fn push_collapsing_slashes(out: &mut String, piece: &str) {
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

#[cfg(test)]
mod tests;
