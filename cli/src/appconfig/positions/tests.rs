use super::*;

fn at(line: u32, column: u32) -> Position {
    Position { line, column }
}

/// Block and flow mappings, lists, quoted keys, comments and blank lines:
/// every path where its key (or item) starts, counted from 1.
#[test]
fn every_path_is_where_its_key_was_written() {
    let text = "# comment\n\nproxy:\n  endpoints:\n    '/pd':\n      target: https://x\n      allowedMethods: [GET, POST]\n    /b: {target: http://b, credentials: require}\nbackend:\n  auth:\n    externalAccess:\n      - type: static\n        options: {token: t}\n";
    let p = positions(text);
    for (path, want) in [
        ("", at(3, 1)),
        ("proxy", at(3, 1)),
        ("proxy.endpoints", at(4, 3)),
        ("proxy.endpoints./pd", at(5, 5)),
        ("proxy.endpoints./pd.target", at(6, 7)),
        ("proxy.endpoints./pd.allowedMethods", at(7, 7)),
        ("proxy.endpoints./pd.allowedMethods[1]", at(7, 29)),
        ("proxy.endpoints./b.credentials", at(8, 28)),
        ("backend.auth.externalAccess[0]", at(12, 9)),
        ("backend.auth.externalAccess[0].type", at(12, 9)),
        ("backend.auth.externalAccess[0].options.token", at(13, 19)),
    ] {
        assert_eq!(p.get(path), Some(&want), "{path}: {p:?}");
    }
}

/// A mapping as a key (YAML allows it, JSON has no path for it) and an
/// alias: the walk keeps its place, the keys after them are where they are.
#[test]
fn complex_keys_and_aliases_keep_the_walk_in_place() {
    let text = "a: &x {b: 1}\n? {k: v}\n: ignored\nc: *x\nd:\n  - e: 1\n";
    let p = positions(text);
    assert_eq!(p.get("a.b"), Some(&at(1, 8)));
    assert_eq!(p.get("c"), Some(&at(4, 1)));
    assert_eq!(p.get("d[0].e"), Some(&at(6, 5)));
    assert!(!p.contains_key("k"), "{p:?}");
}

/// What precedes a syntax error is still placed; nothing panics.
#[test]
fn a_file_the_parser_refuses_gives_what_came_before() {
    let p = positions("proxy:\n  endpoints:\n    /a: 'unclosed\n");
    assert_eq!(p.get("proxy.endpoints"), Some(&at(2, 3)));
    assert!(positions("").is_empty());
    assert!(!positions("\t- :").contains_key("a"));
}
