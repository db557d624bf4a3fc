use crate::appconfig::load_yaml;

/// The error as `check` prints it: the headline, then the excerpt.
fn shown(text: &str) -> String {
    let e = load_yaml("app-config.yaml", text).unwrap_err();
    format!("{e}\n{}", e.excerpt.clone().unwrap_or_default())
}

/// Tabs, wherever they are: at the tab itself, never a line early (the
/// parser reports a tab after a plain value at the end of that value).
#[test]
fn a_tab_is_reported_where_it_is() {
    for (text, line, shown_line) in [
        // indentation of a key
        (
            "proxy:\n  endpoints:\n\t/x: http://x\n",
            3,
            "3 | →/x: ****:***",
        ),
        // after a plain value, the line the parser reports is the one before
        (
            "proxy:\n  endpoints:\n    /x:\n      target: http://x\n\t  credentials: require\n",
            5,
            "5 | →  credentials: *******",
        ),
        (
            "proxy:\n  endpoints:\n    /x: http://x\n\t/y: http://y\n",
            4,
            "4 | →/y: ****:***",
        ),
    ] {
        let out = shown(text);
        assert!(
            out.starts_with(&format!(
                "app-config.yaml:{line}:1: a tab where YAML expects spaces"
            )),
            "{out}"
        );
        assert!(out.ends_with(&format!("{shown_line}\n  | ^")), "{out}");
    }
}

/// Bad indentation, an unclosed quote, an unclosed bracket: the parser's
/// place, the line with its values masked (a token on it never reaches a
/// CI log), the caret under the column.
#[test]
fn other_mistakes_point_at_their_line_and_column() {
    for (text, want) in [
        (
            "proxy:\n  endpoints:\n    /x: http://x\n   /y: http://y\n",
            "app-config.yaml:4:4: not valid YAML: while parsing a block mapping, did not find expected key\n4 |    /y: ****:***\n  |    ^",
        ),
        (
            "backend:\n  auth:\n    externalAccess:\n      - type: static\n        options: {token: 'secret-token-123, subject: ci}\n",
            "app-config.yaml:5:26: not valid YAML: unclosed quote\n5 |         options: {*****: '****************, *******: **}\n  |                          ^",
        ),
        (
            "proxy: [unclosed",
            "app-config.yaml:1:8: not valid YAML: unclosed bracket '['\n1 | proxy: [********\n  |        ^",
        ),
    ] {
        assert_eq!(shown(text), want);
    }
}

/// A key twice in one mapping is refused, as Backstage's loader refuses
/// it, at the second one; at the top level and deeper.
#[test]
fn a_duplicate_key_is_an_error_at_its_second_occurrence() {
    assert_eq!(
        shown("proxy:\n  endpoints:\n    /x: http://x\n    /x: http://y\n"),
        "app-config.yaml:4:5: duplicate key '/x': a key may appear once in a mapping (Backstage's loader refuses it too)\n4 |     /x: ****:***\n  |     ^"
    );
    let e = load_yaml("b.yaml", "proxy: {}\nbackend: {}\nproxy: {}\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "b.yaml:3:1: duplicate key 'proxy': a key may appear once in a mapping (Backstage's loader refuses it too)"
    );
}

/// Whatever the mistake, the value on its line is not printed.
#[test]
fn no_value_of_the_line_is_printed() {
    for text in [
        "a:\n  token: \"s3cr3t-value\n",
        "a:\n  token: s3cr3t-value\n\tb: 1\n",
        "a:\n  - [s3cr3t-value\n",
        "a: {token: s3cr3t-value\n",
        "a: s3cr3t-value: x\n",
    ] {
        let out = shown(text);
        assert!(!out.contains("s3cr3t"), "{text:?}: {out}");
        assert!(out.contains('^'), "{text:?}: {out}");
    }
}
