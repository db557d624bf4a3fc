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

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Every byte in `0x21..=0x7e` (visible ASCII), eight bytes at a time: a
/// token is hundreds of bytes and this runs on every request.
fn all_visible_ascii(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // a byte below 0x21: its borrow sets the high bit of (x - 0x21…)
        // where x's own high bit is clear (exact for "any such byte")
        let below = x.wrapping_sub(0x21 * LOW) & !x & HIGH;
        // a byte above 0x7e: adding 1 reaches 0x80, or the high bit is set
        let above = (x.wrapping_add(LOW) | x) & HIGH;
        if below | above != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| (0x21..0x7f).contains(&b))
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
    if !token.is_empty() && token.len() <= MAX_TOKEN_BYTES && all_visible_ascii(token) {
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
    fn the_word_at_a_time_check_agrees_with_the_byte_check_for_every_byte() {
        let byte_check = |t: &[u8]| t.iter().all(|&b| (0x21..0x7f).contains(&b));
        for b in 0..=255u8 {
            for len in [1, 7, 8, 9, 16, 23] {
                for pos in 0..len {
                    let mut t = vec![b'a'; len];
                    t[pos] = b;
                    assert_eq!(
                        all_visible_ascii(&t),
                        byte_check(&t),
                        "{b:#x} at {pos} of {len}"
                    );
                    // next to the extremes of the range, where a carry or
                    // borrow between bytes would show
                    for n in [0x21u8, 0x7e, 0x20, 0x7f, 0x00, 0xff] {
                        let mut u = t.clone();
                        u[(pos + 1) % len] = n;
                        assert_eq!(
                            all_visible_ascii(&u),
                            byte_check(&u),
                            "{b:#x},{n:#x} at {pos} of {len}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn non_ascii_tokens_are_unrecognisable() {
        assert_eq!(extract(&["Bearer é".as_bytes()]), Extracted::Token(""));
    }
}
