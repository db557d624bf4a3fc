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
mod tests {
    use super::*;

    fn one(v: &str) -> Extracted<'_> {
        extract(&[v.as_bytes()])
    }

    #[test]
    fn bearer_scheme_in_any_case_with_one_or_more_spaces() {
        assert_eq!(one("Bearer abc"), Extracted::Token("abc"));
        assert_eq!(one("bearer abc"), Extracted::Token("abc"));
        assert_eq!(one("BEARER    abc"), Extracted::Token("abc"));
        assert_eq!(one("BeArEr a.b.c"), Extracted::Token("a.b.c"));
    }

    #[test]
    fn anything_else_is_no_credentials() {
        for v in [
            "",
            "Bearer",
            "Bearer ",
            "Bearerabc",
            "Bearer\tabc",
            "Bearer a b",
            "Bearer abc ",
            "Basic abc",
            "Token abc",
            " Bearer abc",
            "Bearer abc\u{a0}",
        ] {
            assert_eq!(one(v), Extracted::None, "{v:?}");
        }
        // NBSP as a raw Latin-1 byte is whitespace to Node's regex
        assert_eq!(extract(&[b"Bearer ab\xa0c"]), Extracted::None);
        assert_eq!(extract(&[]), Extracted::None);
    }

    #[test]
    fn two_headers_are_refused_even_when_both_are_valid() {
        assert_eq!(extract(&[b"Bearer a", b"Bearer a"]), Extracted::Multiple);
        assert_eq!(extract(&[b"Bearer a", b""]), Extracted::Multiple);
    }

    #[test]
    fn size_cap_is_16_kib() {
        let ok = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES));
        assert_eq!(one(&ok), Extracted::Token(&ok[7..]));
        let big = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(one(&big), Extracted::TooLarge);
    }

    #[test]
    fn non_ascii_tokens_are_unrecognisable() {
        assert_eq!(extract(&["Bearer é".as_bytes()]), Extracted::Token(""));
    }
}
