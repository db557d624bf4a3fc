//! Who did what: the outcome of every request as the access log and the
//! counters name it, and the filter-state keys the access log reads. The
//! filter writes them; the command-line tool writes the access-log format
//! that reads them. Never a token, a secret or a claim beyond the
//! principal.

use std::borrow::Cow;
use std::fmt::Write;

use crate::reply::Reason;

/// Filter-state keys, as the filter sets them (`set_property`). Envoy's
/// access log reads a Wasm filter's as `wasm.<key>`.
pub const PRINCIPAL_KEY: &str = "backstage_proxy.principal";
pub const ENDPOINT_KEY: &str = "backstage_proxy.endpoint";
pub const DECISION_KEY: &str = "backstage_proxy.decision";
/// The Backstage permissions a request's access policies asked, with their
/// answers (`name[:action]=ALLOW|DENY|UNCHECKABLE|UNAVAILABLE`,
/// comma-separated); absent when none was asked.
pub const PERMISSION_KEY: &str = "backstage_proxy.permission";
/// The path as the client sent it, kept for the body of a refusal by
/// Envoy's rate limit filter (`gateway.rateLimitService`).
pub const REQUEST_URL_KEY: &str = "backstage_proxy.request_url";
/// What the log writes where a value is absent.
pub const ABSENT: &str = "-";
/// The most characters of a value the log keeps; a longer one is cut and
/// says how many bytes it had.
pub const MAX_LOGGED_CHARS: usize = 256;

/// A value as the access log may show it: a principal is the token
/// issuer's to choose, so nothing in it may disguise it in a log viewer or
/// fill the line. Control characters, bidirectional controls and other
/// invisible formatting characters become `\u{…}`, a backslash `\\`, and
/// a value longer than [`MAX_LOGGED_CHARS`] is cut (`…(+N bytes)`).
pub fn loggable(value: &str) -> Cow<'_, str> {
    let plain = value.len() <= MAX_LOGGED_CHARS
        && value.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if plain {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len().min(MAX_LOGGED_CHARS) + 16);
    let mut consumed = 0;
    for (shown, c) in value.chars().enumerate() {
        if shown >= MAX_LOGGED_CHARS {
            break;
        }
        if c == '\\' {
            out.push_str("\\\\");
        } else if hidden(c) {
            let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
        } else {
            out.push(c);
        }
        consumed += c.len_utf8();
    }
    if consumed < value.len() {
        let _ = write!(out, "…(+{} bytes)", value.len() - consumed);
    }
    Cow::Owned(out)
}

/// Characters that do not show as themselves: controls, and the format
/// characters that reorder or hide text (bidirectional embeddings,
/// overrides and isolates, marks, zero-width characters, separators, tag
/// characters, variation selectors, fillers that render blank).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{034f}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{17b4}'
                | '\u{17b5}'
                | '\u{3164}'
                | '\u{ffa0}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{e0000}'..='\u{e007f}'
                | '\u{e0100}'..='\u{e01ef}'
        )
}

/// How Envoy's access log (`%FILTER_STATE(…)%`) reads a key the Wasm filter set.
pub fn wasm_filter_state(key: &str) -> String {
    format!("%FILTER_STATE(wasm.{key}:PLAIN)%")
}

/// What the filter did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Forwarded to the endpoint's upstream.
    Allowed,
    /// Answered locally with a refusal.
    Denied(Reason),
    /// The proxy plugin's own (empty) key set, served.
    OwnJwks,
    /// A CORS preflight, answered.
    CorsPreflight,
    /// Outside the prefix: not the filter's, let through untouched.
    PassThrough,
}

impl Outcome {
    /// The word in the access log's `decision` field.
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied(reason) => reason.code(),
            Outcome::OwnJwks => "own_jwks",
            Outcome::CorsPreflight => "cors_preflight",
            Outcome::PassThrough => "passthrough",
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod invisible_tests {
    use super::loggable;

    #[test]
    fn tag_characters_selectors_and_blank_fillers_are_shown_escaped() {
        for c in [
            '\u{e0041}',
            '\u{e007f}',
            '\u{fe0f}',
            '\u{e0100}',
            '\u{034f}',
            '\u{115f}',
            '\u{3164}',
            '\u{ffa0}',
            '\u{17b4}',
        ] {
            let raw = format!("ops{c}x");
            let shown = loggable(&raw);
            assert!(!shown.contains(c), "{c:?} shown as itself: {shown:?}");
            assert!(shown.contains("\\u{"), "{shown:?}");
        }
    }
}
