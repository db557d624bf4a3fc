//! Where the token lives: only `Authorization: Bearer <token>`, read as
//! Backstage reads it (`/^Bearer[ ]+(\S+)$/i`).

/// Tokens longer than this are refused without being parsed.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extracted<'a> {
    /// No Authorization header, or one that is not a single Bearer token.
    None,
    /// Two or more Authorization headers.
    Multiple,
    /// A token over [`MAX_TOKEN_BYTES`].
    TooLarge,
    Token(&'a str),
}

/// JavaScript's `\s` restricted to the bytes a header value can hold once
/// read as Latin-1 (as Node reads them).
fn is_js_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0xa0)
}

/// `values` are every value of the `authorization` header, in order.
pub fn extract<'a>(values: &[&'a [u8]]) -> Extracted<'a> {
    let value = match values {
        [] => return Extracted::None,
        [one] => *one,
        _ => return Extracted::Multiple,
    };
    let Some(scheme) = value.get(..6) else {
        return Extracted::None;
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Extracted::None;
    }
    let rest = value.get(6..).unwrap_or_default();
    let spaces = rest.iter().take_while(|&&b| b == b' ').count();
    if spaces == 0 {
        return Extracted::None;
    }
    let token = rest.get(spaces..).unwrap_or_default();
    // Fast path, one pass: printable ASCII only (every token Backstage issues).
    if !token.is_empty() && token.len() <= MAX_TOKEN_BYTES && crate::ascii::all_visible(token) {
        return match std::str::from_utf8(token) {
            Ok(t) => Extracted::Token(t),
            Err(_) => Extracted::Token(""),
        };
    }
    if token.is_empty() || token.iter().any(|&b| is_js_space(b)) {
        return Extracted::None;
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Extracted::TooLarge;
    }
    // Non-ASCII bytes cannot be part of any token Backstage issues or
    // matches; treat the header as holding an unrecognisable token.
    match std::str::from_utf8(token) {
        Ok(t) if t.is_ascii() => Extracted::Token(t),
        _ => Extracted::Token(""),
    }
}

#[cfg(test)]
mod tests;
