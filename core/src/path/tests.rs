use super::*;

#[test]
fn dot_segments_are_refused_raw_encoded_and_with_backslashes() {
    for p in [
        "/api/proxy/svc/../admin",
        "/api/proxy/svc/./x",
        "/api/proxy/svc/..",
        "/api/proxy/svc/%2e%2e/admin",
        "/api/proxy/svc/%2E%2e/admin",
        "/api/proxy/svc/.%2e/admin",
        "/api/proxy/svc/%2e./admin",
        "/api/proxy/svc/%2e/admin",
        "/api/proxy/svc/a%2f..%2f..%2fadmin",
        "/api/proxy/svc/a%2F..%2Fadmin",
        "/api/proxy/svc/a%5c..%5cadmin",
        "/api/proxy/svc\\..\\admin",
        "/api/proxy/pub/..;x=1/svc/a",
        "/api/proxy/svc/.;x/a",
    ] {
        assert_eq!(check_path_safety(p), Err(UnsafePath::DotSegment), "{p}");
    }
}

#[test]
fn bad_encodings_and_control_characters_are_refused() {
    assert_eq!(check_path_safety("/a/%zz"), Err(UnsafePath::BadEncoding));
    assert_eq!(check_path_safety("/a/%2"), Err(UnsafePath::BadEncoding));
    assert_eq!(
        check_path_safety("/a/%c3%28"),
        Err(UnsafePath::BadEncoding),
        "invalid UTF-8"
    );
    assert_eq!(
        check_path_safety("/a/%00"),
        Err(UnsafePath::ControlCharacter)
    );
    assert_eq!(
        check_path_safety("/a/%0d%0a"),
        Err(UnsafePath::ControlCharacter)
    );
    assert_eq!(
        check_path_safety("/a/%7f"),
        Err(UnsafePath::ControlCharacter)
    );
    assert_eq!(check_path_safety("/a/\u{0}"), Err(UnsafePath::RawByte));
    assert_eq!(check_path_safety("/a b"), Err(UnsafePath::RawByte));
    assert_eq!(check_path_safety("/a/é"), Err(UnsafePath::RawByte));
}

#[test]
fn ordinary_paths_pass_unchanged() {
    for p in [
        "/api/proxy/svc",
        "/api/proxy/svc/",
        "/api/proxy/svc/a%2Fb%20c/%41",
        "/api/proxy/svc/%252e%252e/admin",
        "/api/proxy/svc/.../x",
        "/api/proxy/svc/.hidden/..x",
        "/api/proxy/svc/a;b=c",
        "/api/proxy/svc/%C3%A9",
    ] {
        assert_eq!(check_path_safety(p), Ok(()), "{p}");
    }
}

#[test]
fn split_keeps_the_query_verbatim_and_drops_a_fragment() {
    assert_eq!(
        split_path("/a?x=/../../admin"),
        SplitPath {
            path: "/a",
            query: Some("x=/../../admin")
        }
    );
    assert_eq!(
        split_path("/a/b#frag"),
        SplitPath {
            path: "/a/b",
            query: None
        }
    );
    assert_eq!(
        split_path("/a?q#f"),
        SplitPath {
            path: "/a",
            query: Some("q")
        }
    );
    assert_eq!(
        split_path("/a?"),
        SplitPath {
            path: "/a",
            query: Some("")
        }
    );
}

#[test]
fn collapse() {
    assert_eq!(collapse_slashes("//a///b/"), "/a/b/");
    assert_eq!(collapse_slashes(""), "");
}

#[test]
fn collapse_agrees_with_a_char_by_char_reading_on_every_short_string() {
    fn naive(p: &str) -> String {
        let mut out = String::new();
        for c in p.chars() {
            if !(c == '/' && out.ends_with('/')) {
                out.push(c);
            }
        }
        out
    }
    let alphabet = ['/', 'a', 'é', '%'];
    let mut strings = vec![String::new()];
    for _ in 0..6 {
        let longer: Vec<String> = strings
            .iter()
            .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
            .collect();
        for s in &longer {
            assert_eq!(collapse_slashes(s), naive(s), "{s:?}");
        }
        strings = longer;
    }
}

#[test]
fn upstream_paths_stay_under_the_base_and_never_look_like_an_authority() {
    for ok in ["/", "/a", "/base", "/base/a?x=//y", "/base/a%2Fb", "/a/\\b"] {
        let base = if ok.starts_with("/base") { "/base" } else { "" };
        assert_eq!(check_upstream_path(ok, base), Ok(()), "{ok}");
    }
    for (path, why) in [
        ("//evil", UnsafePath::AuthorityLike),
        ("/\\evil", UnsafePath::AuthorityLike),
        ("\\/evil", UnsafePath::AuthorityLike),
        ("/%5Cevil", UnsafePath::AuthorityLike),
        ("/%2f%2fevil", UnsafePath::AuthorityLike),
        ("/a/../b", UnsafePath::DotSegment),
        ("/a/%2e%2e/b", UnsafePath::DotSegment),
    ] {
        assert_eq!(check_upstream_path(path, ""), Err(why), "{path}");
    }
    assert_eq!(
        check_upstream_path("/other/a", "/base"),
        Err(UnsafePath::OutsideBase)
    );
    assert_eq!(
        check_upstream_path("/basement", "/base"),
        Err(UnsafePath::OutsideBase)
    );
    assert_eq!(check_upstream_path("/base?x", "/base/"), Ok(()));
}

#[test]
fn every_spelling_servers_accept_lands_where_they_read_it() {
    for spelling in [
        "/files/admin/secret",
        "/files/admin\\secret",
        "/files\\admin\\secret",
        "/files/admin%5Csecret",
        "/files/admin%5csecret",
        "/files%2Fadmin%2fsecret",
        "/FILES/Admin/secret",
        "/files/adm%69n/secret",
        "/files;x=1/admin/secret",
        "//files///admin/secret",
        "/files/adm%C4%B1n/secret",
        "/files/adm%c4%b0n/secret",
        "/files/adm\u{131}n/secret",
        "/files/admin/secret?x=/other",
    ] {
        assert!(lands_under(spelling, "/files/admin"), "{spelling}");
    }
    // Folding into ASCII: ſ is s, K (Kelvin) is k.
    assert!(lands_under("/%C5%BFecret/x", "/secret"));
    assert!(lands_under("/%E2%84%AAeys", "/keys"));
    for elsewhere in [
        "/files/administrator",
        "/files/adminsecret",
        "/files/admin%3Bx/secret",
        "/files/adm%25%36%39n",
        "/files",
        "/other/files/admin",
    ] {
        assert!(!lands_under(elsewhere, "/files/admin"), "{elsewhere}");
    }
}

#[test]
fn a_raw_byte_outside_ascii_reads_as_its_escape_never_as_a_letter() {
    // Paths are refused with raw bytes before they are read; should one
    // get here, it reads as the escape a server would decode to it, and
    // a letter outside ASCII never becomes another letter.
    for (raw, encoded) in [
        ("/caf\u{e9}", "/caf%C3%A9"),
        ("/\u{fc}ber", "/%c3%bcber"),
        ("/a/\u{2603}", "/A/%E2%98%83"),
    ] {
        let (raw_below, encoded_below) = (format!("{raw}/x"), format!("{encoded}/x"));
        assert!(
            lands_under(&raw_below, encoded),
            "{raw_below} under {encoded}"
        );
        assert!(
            lands_under(&encoded_below, raw),
            "{encoded_below} under {raw}"
        );
    }
    for (raw, elsewhere) in [
        ("/caf\u{e9}", "/cafe"),
        ("/caf\u{e9}", "/caf%C3"),
        ("/\u{e9}", "/%E9"),
    ] {
        assert!(!lands_under(raw, elsewhere), "{raw} under {elsewhere}");
    }
}
