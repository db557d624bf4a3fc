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
