use super::*;

#[test]
fn every_outcome_has_its_own_word() {
    let mut words: Vec<&str> = Reason::ALL
        .iter()
        .map(|r| Outcome::Denied(*r).code())
        .collect();
    words.extend([
        Outcome::Allowed.code(),
        Outcome::OwnJwks.code(),
        Outcome::CorsPreflight.code(),
        Outcome::PassThrough.code(),
    ]);
    let distinct: std::collections::BTreeSet<&str> = words.iter().copied().collect();
    assert_eq!(distinct.len(), words.len(), "{words:?}");
    assert_eq!(Outcome::Denied(Reason::RateLimited).code(), "rate_limited");
}

#[test]
fn the_access_log_reads_the_keys_the_filter_sets() {
    assert_eq!(
        wasm_filter_state(PRINCIPAL_KEY),
        "%FILTER_STATE(wasm.backstage_proxy.principal:PLAIN)%"
    );
}

#[test]
fn a_principal_cannot_disguise_itself_or_fill_the_line() {
    assert_eq!(loggable("user:default/jane"), "user:default/jane");
    // Right-to-left override: "user:default/evil" would read "...live".
    assert_eq!(
        loggable("external:idp:\u{202e}nimda"),
        "external:idp:\\u{202e}nimda"
    );
    for c in [
        '\u{0}', '\n', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{200b}', '\u{200e}', '\u{2066}',
        '\u{2069}', '\u{feff}', '\u{2028}',
    ] {
        let raw = format!("a{c}b");
        let shown = loggable(&raw);
        assert!(!shown.contains(c), "{c:?} shown as itself: {shown:?}");
        assert!(
            shown.starts_with("a\\u{") && shown.ends_with("}b"),
            "{shown:?}"
        );
    }
    // An escape cannot be forged: a literal backslash is doubled.
    assert_eq!(loggable("a\\u{202e}"), "a\\\\u{202e}");
    assert_ne!(loggable("a\\u{202e}"), loggable("a\u{202e}"));
    // Printable non-ASCII stays readable.
    assert_eq!(loggable("user:default/jürgen"), "user:default/jürgen");
    // 9 KB: cut, and says so.
    let long = "x".repeat(9_000);
    let shown = loggable(&long);
    assert!(
        shown.chars().count() < MAX_LOGGED_CHARS + 32,
        "{}",
        shown.len()
    );
    assert!(
        shown.ends_with(&format!("…(+{} bytes)", 9_000 - MAX_LOGGED_CHARS)),
        "{shown}"
    );
    assert_eq!(
        loggable(&"y".repeat(MAX_LOGGED_CHARS)).len(),
        MAX_LOGGED_CHARS
    );
}

#[test]
fn every_backslash_is_doubled_whatever_surrounds_it() {
    // Visible ASCII reads as itself, but for `\`, which is doubled, so
    // that no value can spell an escape the log itself writes: also a
    // value of backslashes alone.
    for value in [
        "\\",
        "\\\\",
        "\\\\\\",
        "a\\",
        "\\a",
        "external:idp:\\u{202e}",
        "user:default/jane",
        "",
    ] {
        assert_eq!(loggable(value), value.replace('\\', "\\\\"), "{value:?}");
    }
}
