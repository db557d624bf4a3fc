//! Origin patterns as Backstage reads `backend.cors.origin`: each entry is
//! a minimatch glob (`nocase`, `noglobstar`), matched against the request's
//! `Origin`.
//!
//! Why our own translation: no crate speaks minimatch's dialect (its slash
//! handling, its leading-dot rule, `!` negation, `#` comments, extglobs),
//! and the usual glob crates (glob, globset, wildmatch) each differ from it
//! on origins a browser sends (`globset` has no extglobs and matches `*`
//! across a leading dot; `glob` has neither braces nor extglobs). The
//! matching itself is `regex-lite`, already in the filter for
//! `pathRewrite`; this module only turns a pattern into anchored regexes,
//! one per `/`-separated part, the way minimatch does. The reference is
//! minimatch 9 itself: `core/tests/cors_reference.rs` runs both on generated
//! patterns and origins (Node, the real package), and the fuzz target
//! `cors` feeds this module arbitrary patterns and origins.
//!
//! Supported, as minimatch has them: literals and `\` escapes; `*` (no
//! `/`; a part that is only `*` needs one character); `?`; `**` as `*`;
//! `[...]` classes with ranges and `!`/`^` negation; `{a,b}` alternatives,
//! nested; extglobs `@(..)`, `?(..)`, `+(..)`, `*(..)` with `|`; a leading
//! `!` negating the pattern; a leading `#` making it a comment that matches
//! nothing; runs of `/` counting as one; a trailing `/` in the origin.
//! Wildcards never match a leading `.` of a part.
//!
//! Refused at load, with the reason (so a pattern never silently means
//! something else here than in Backstage): `!(..)` extglobs, POSIX classes
//! (`[[:alpha:]]`), brace sequences and single-item braces (`{1..3}`,
//! `{a}`), an extglob at the start of a part, unbalanced brackets, braces
//! or parentheses, non-ASCII characters, empty patterns and patterns over
//! [`MAX_PATTERN_BYTES`]. Origins that are not ASCII never match (browsers
//! send hosts in punycode).

use regex_lite::{Regex, RegexBuilder};

/// Longest pattern accepted.
pub const MAX_PATTERN_BYTES: usize = 1024;
/// Most alternatives one pattern may expand to through braces.
pub const MAX_EXPANSIONS: usize = 64;

#[derive(Debug, Clone)]
pub struct Pattern {
    negate: bool,
    /// A `#` comment: matches nothing.
    comment: bool,
    /// Brace alternatives, each a list of parts.
    alternatives: Vec<Vec<Part>>,
}

#[derive(Debug, Clone)]
enum Part {
    /// No wildcard: compared ignoring ASCII case.
    Literal(String),
    /// minimatch's shortcut for `*<tail>` and `?<tail>` parts whose tail
    /// has no wildcard: it compares the tail as written, so an escape in it
    /// (`*\.example.com`) is compared with its backslash and never matches
    /// an origin a browser sends. Kept, so the gateway allows what
    /// Backstage allows; `check` warns about it.
    Suffix {
        /// Lower-cased tail, backslashes included.
        tail: String,
        /// For `?` runs: the exact length (the whole part's, as minimatch
        /// has it).
        len: Option<usize>,
    },
    Glob {
        re: Regex,
        /// The part starts with a literal `.`: it may match a leading dot.
        dot_first: bool,
        /// Never `.` or `..` alone.
        no_traversal: bool,
    },
}

impl Pattern {
    pub fn compile(pattern: &str) -> Result<Pattern, String> {
        if pattern.is_empty() {
            return Err("is empty, which matches no origin a browser sends".into());
        }
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(format!("is longer than {MAX_PATTERN_BYTES} bytes"));
        }
        if !pattern.is_ascii() {
            return Err("contains a character that is not ASCII; write hosts in punycode".into());
        }
        if pattern.starts_with('#') {
            return Ok(Pattern {
                negate: false,
                comment: true,
                alternatives: Vec::new(),
            });
        }
        let bangs = pattern.bytes().take_while(|b| *b == b'!').count();
        let body = pattern.get(bangs..).unwrap_or_default();
        let mut alternatives = Vec::new();
        // Brace expansion drops alternatives that expand to nothing and,
        // when the pattern has a brace pair, takes the backslash off `\\`,
        // `\{`, `\}`, `\,` and `\.`.
        let braces = has_brace_pair(body);
        for expanded in expand_braces(body)? {
            let expanded = if braces {
                unescape_brace_escapes(&expanded)
            } else {
                expanded
            };
            if braces && expanded.is_empty() {
                continue;
            }
            let mut parts = Vec::new();
            for raw in dot_dot_collapsed(split_slashes(&expanded)) {
                parts.push(compile_part(raw)?);
            }
            alternatives.push(parts);
        }
        Ok(Pattern {
            negate: bangs % 2 == 1,
            comment: false,
            alternatives,
        })
    }

    /// Does `origin` (the `Origin` header as sent) match?
    pub fn matches(&self, origin: &str) -> bool {
        if self.comment || !origin.is_ascii() {
            return false;
        }
        let file: Vec<&str> = split_slashes(origin).collect();
        let hit = self
            .alternatives
            .iter()
            .any(|parts| match_parts(&file, parts));
        hit != self.negate
    }
}

/// minimatch's brace test: a `{` with a `}` after it and no `{` between.
fn has_brace_pair(p: &str) -> bool {
    let mut open = false;
    for b in p.bytes() {
        match b {
            b'{' => open = true,
            b'}' if open => return true,
            _ => {}
        }
    }
    false
}

fn unescape_brace_escapes(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&n) = chars.peek() {
                if matches!(n, '\\' | '{' | '}' | ',' | '.') {
                    out.push(n);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

/// minimatch's first optimisation (with `noglobstar`, a `**` part is `*`):
/// a `..` part takes the part before it away, unless that is `..` or `.`.
fn dot_dot_collapsed<'a>(parts: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for part in parts {
        let part = if part == "**" { "*" } else { part };
        let prev = out.last().copied();
        if part == ".." && prev.is_some_and(|p| !p.is_empty() && p != ".." && p != ".") {
            out.pop();
            continue;
        }
        out.push(part);
    }
    if out.is_empty() {
        out.push("");
    }
    out
}

/// minimatch's split: any run of `/` separates.
fn split_slashes(s: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i) == Some(&b'/') {
            parts.push(s.get(start..i).unwrap_or_default());
            while bytes.get(i) == Some(&b'/') {
                i += 1;
            }
            start = i;
        } else {
            i += 1;
        }
    }
    parts.push(s.get(start..).unwrap_or_default());
    parts.into_iter()
}

fn match_parts(file: &[&str], parts: &[Part]) -> bool {
    let n = parts.len();
    let whole = |f: &[&str]| f.iter().zip(parts).all(|(f, p)| match_part(f, p));
    if file.len() == n {
        return whole(file);
    }
    // A trailing `/` in the origin: one empty part more.
    file.len() == n + 1 && file.last() == Some(&"") && whole(file.get(..n).unwrap_or_default())
}

fn match_part(f: &str, p: &Part) -> bool {
    match p {
        Part::Literal(s) => f.eq_ignore_ascii_case(s),
        Part::Suffix { tail, len } => {
            !f.starts_with('.')
                && len.is_none_or(|n| f.len() == n)
                && f.len() >= tail.len()
                && f.get(f.len() - tail.len()..)
                    .is_some_and(|end| end.eq_ignore_ascii_case(tail))
        }
        Part::Glob {
            re,
            dot_first,
            no_traversal,
        } => {
            if *no_traversal && (f == "." || f == "..") {
                false
            } else if *dot_first {
                re.is_match(f)
            } else {
                !f.starts_with('.') && re.is_match(f)
            }
        }
    }
}

/// `{a,b}` → alternatives, nested, at most [`MAX_EXPANSIONS`]. A `\`
/// escapes the next character; classes `[...]` are not looked into.
fn expand_braces(p: &str) -> Result<Vec<String>, String> {
    let bytes = p.as_bytes();
    let mut i = 0;
    let mut open = None;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'\\') => i += 1,
            Some(b'{') => {
                open = Some(i);
                break;
            }
            Some(b'}') => return Err("has a `}` without its `{`".into()),
            _ => {}
        }
        i += 1;
    }
    let Some(open) = open else {
        return Ok(vec![p.to_string()]);
    };
    // Find the matching close and the top-level commas.
    let mut depth = 0usize;
    let mut commas = Vec::new();
    let mut close = None;
    let mut j = open;
    while j < bytes.len() {
        match bytes.get(j) {
            Some(b'\\') => j += 1,
            Some(b'{') => depth += 1,
            Some(b'}') => {
                depth -= 1;
                if depth == 0 {
                    close = Some(j);
                    break;
                }
            }
            Some(b',') if depth == 1 => commas.push(j),
            _ => {}
        }
        j += 1;
    }
    let Some(close) = close else {
        return Err("has a `{` without its `}`".into());
    };
    if commas.is_empty() {
        return Err("has braces without a comma (`{a}` or a sequence like `{1..3}`), which the gateway does not support; list the origins".into());
    }
    let head = p.get(..open).unwrap_or_default();
    let tail = p.get(close + 1..).unwrap_or_default();
    let mut bounds = vec![open];
    bounds.extend(&commas);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let (Some(&a), Some(&b)) = (w.first(), w.get(1)) else {
            continue;
        };
        let item = p.get(a + 1..b).unwrap_or_default();
        for rest in expand_braces(&format!("{item}{tail}"))? {
            out.push(format!("{head}{rest}"));
            if out.len() > MAX_EXPANSIONS {
                return Err(format!(
                    "expands to more than {MAX_EXPANSIONS} alternatives"
                ));
            }
        }
    }
    Ok(out)
}

/// A part minimatch answers with its shortcut and an escape in the tail.
fn escaped_suffix(raw: &str) -> Option<Part> {
    let lead = raw.bytes().next().filter(|b| *b == b'*' || *b == b'?')?;
    let tail = raw.trim_start_matches(char::from(lead));
    let plain = !tail.bytes().any(|b| b"+@!?*[(".contains(&b));
    (plain && tail.contains('\\')).then(|| Part::Suffix {
        tail: tail.to_ascii_lowercase(),
        len: (lead == b'?').then_some(raw.len()),
    })
}

/// Whether `pattern` has a part that minimatch's shortcut compares with a
/// backslash in it (see [`Part::Suffix`]).
pub fn has_escaped_suffix(pattern: &str) -> bool {
    split_slashes(pattern).any(|p| escaped_suffix(p).is_some())
}

fn compile_part(raw: &str) -> Result<Part, String> {
    if let Some(part) = escaped_suffix(raw) {
        return Ok(part);
    }
    let mut c = Translator {
        src: raw.as_bytes(),
        i: 0,
        magic: false,
        extglob_end: None,
    };
    let body = c.sequence(None)?;
    if !c.magic {
        return Ok(Part::Literal(unescape(raw)));
    }
    if raw.len() >= 2
        && matches!(raw.get(1..2), Some("("))
        && matches!(raw.get(..1), Some("@" | "?" | "+" | "*" | "!"))
    {
        return Err("starts a part with an extglob, which the gateway does not support; put a literal character first or list the origins".into());
    }
    let dot_first = raw.starts_with('.') || raw.starts_with("\\.");
    // minimatch keeps `.` and `..` from a part whose one or two leading
    // literal dots are followed by a wildcard or class.
    let after_dots = body
        .strip_prefix("\\.")
        .map(|b| b.strip_prefix("\\.").unwrap_or(b));
    let no_traversal = after_dots.is_some_and(|b| b.starts_with('['));
    let re = RegexBuilder::new(&format!("^(?:{body})$"))
        .case_insensitive(true)
        .size_limit(64 * 1024)
        .build()
        .map_err(|e| format!("cannot be compiled: {e}"))?;
    Ok(Part::Glob {
        re,
        dot_first,
        no_traversal,
    })
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for ch in s.chars() {
        if ch == '\\' && !escaped {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(ch);
    }
    out
}

struct Translator<'a> {
    src: &'a [u8],
    i: usize,
    magic: bool,
    /// Where the last extglob of the part's top level ended.
    extglob_end: Option<usize>,
}

fn is_extglob_at(src: &[u8], i: usize) -> bool {
    matches!(src.get(i), Some(b'@' | b'?' | b'+' | b'*' | b'!')) && src.get(i + 1) == Some(&b'(')
}

impl Translator<'_> {
    /// Translates until the end, or (inside an extglob) until `|` or `)`,
    /// which are left for the caller.
    fn sequence(&mut self, inside: Option<u8>) -> Result<String, String> {
        let mut out = String::new();
        while let Some(&b) = self.src.get(self.i) {
            let next = self.src.get(self.i + 1).copied();
            match b {
                b'|' | b')' if inside.is_some() => return Ok(out),
                b'\\' => {
                    match next {
                        Some(n) => push_literal(&mut out, n),
                        // A trailing `\` is a literal backslash.
                        None => push_literal(&mut out, b'\\'),
                    }
                    self.i += 2;
                }
                b'@' | b'?' | b'+' | b'*' | b'!' if next == Some(b'(') => {
                    if b == b'!' {
                        return Err("uses a `!(..)` extglob, which the gateway does not support; list the origins".into());
                    }
                    self.magic = true;
                    self.i += 2;
                    let mut alts = vec![self.sequence(Some(b))?];
                    loop {
                        match self.src.get(self.i) {
                            Some(b'|') => {
                                self.i += 1;
                                alts.push(self.sequence(Some(b))?);
                            }
                            Some(b')') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err("has a `(` without its `)`".into()),
                        }
                    }
                    if alts.iter().any(|a| a.starts_with("\\.")) {
                        return Err("has an extglob alternative starting with `.`, which the gateway does not support".into());
                    }
                    if inside.is_none() {
                        self.extglob_end = Some(self.i);
                    }
                    let group = alts.join("|");
                    out.push_str(&format!("(?:{group})"));
                    out.push_str(match b {
                        b'?' => "?",
                        b'+' => "+",
                        b'*' => "*",
                        _ => "",
                    });
                }
                b'*' => {
                    self.magic = true;
                    let start = self.i;
                    while self.src.get(self.i) == Some(&b'*') && !is_extglob_at(self.src, self.i) {
                        self.i += 1;
                    }
                    // A top-level run of stars between the part's ends or
                    // extglobs is minimatch's "star, not empty".
                    let alone = inside.is_none()
                        && (start == 0 || self.extglob_end == Some(start))
                        && (self.i == self.src.len() || is_extglob_at(self.src, self.i));
                    out.push_str(if alone { "[^/]+" } else { "[^/]*" });
                }
                b'?' => {
                    self.magic = true;
                    self.i += 1;
                    out.push_str("[^/]");
                }
                b'[' => {
                    self.magic = true;
                    out.push_str(&self.class()?);
                }
                _ => {
                    push_literal(&mut out, b);
                    self.i += 1;
                }
            }
        }
        if inside.is_some() {
            return Err("has a `(` without its `)`".into());
        }
        Ok(out)
    }

    /// `[...]` at `self.i`.
    fn class(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = String::from("[");
        if matches!(self.src.get(self.i), Some(b'!' | b'^')) {
            out.push('^');
            self.i += 1;
        }
        let mut first = true;
        let mut items = 0;
        loop {
            let Some(&b) = self.src.get(self.i) else {
                return Err("has a `[` without its `]`".into());
            };
            match b {
                b']' if !first => {
                    self.i += 1;
                    break;
                }
                b'[' if self.src.get(self.i + 1) == Some(&b':') => {
                    return Err(
                        "uses a POSIX class like `[[:alpha:]]`, which the gateway does not support"
                            .into(),
                    );
                }
                b'\\' => {
                    let Some(&n) = self.src.get(self.i + 1) else {
                        return Err("has a `[` without its `]`".into());
                    };
                    push_class_char(&mut out, n);
                    self.i += 2;
                }
                b'-' if !first && self.src.get(self.i + 1) != Some(&b']') => {
                    out.push('-');
                    self.i += 1;
                    let Some(&n) = self.src.get(self.i) else {
                        return Err("has a `[` without its `]`".into());
                    };
                    let n = if n == b'\\' {
                        self.i += 1;
                        self.src.get(self.i).copied().unwrap_or(b'\\')
                    } else {
                        n
                    };
                    push_class_char(&mut out, n);
                    self.i += 1;
                }
                _ => {
                    push_class_char(&mut out, b);
                    self.i += 1;
                }
            }
            first = false;
            items += 1;
        }
        if items == 0 {
            return Err("has an empty class `[]`".into());
        }
        // Never `/`, as in minimatch.
        if out.starts_with("[^") {
            out.push('/');
        }
        out.push(']');
        Ok(out)
    }
}

/// Characters regex-lite gives a meaning, outside and inside a class.
const META: &[u8] = b"\\.+*?()|[]{}^$#&-~";

fn push_literal(out: &mut String, b: u8) {
    if META.contains(&b) {
        out.push('\\');
    }
    out.push(char::from(b));
}

fn push_class_char(out: &mut String, b: u8) {
    push_literal(out, b);
}

#[cfg(test)]
mod tests;
