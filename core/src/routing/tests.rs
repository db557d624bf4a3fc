use super::*;
use crate::config::parse;
use crate::path::{collapse_slashes, split_path};

fn plan(endpoints: &str) -> Plan {
    let cfg = format!(r#"{{"proxy":{{"endpoints":{endpoints}}}}}"#);
    parse(cfg.as_bytes(), &|_| None).unwrap()
}

/// Full upstream path for a request path, as decision::decide computes it.
fn upstream(plan: &Plan, raw: &str) -> Option<String> {
    let split = split_path(raw);
    let canonical = collapse_slashes(split.path);
    let Location::Under(rest) = locate(plan, &canonical) else {
        return None;
    };
    let (_, ep) = match_endpoint(plan, &rest)?;
    upstream_path(ep, raw, &rest, split.query)
}

#[test]
fn prefix_is_case_insensitive_on_a_segment_boundary() {
    let p = plan(r#"{}"#);
    assert_eq!(locate(&p, "/api/proxy/x"), Location::Under("/x".into()));
    assert_eq!(locate(&p, "/API/Proxy/x"), Location::Under("/x".into()));
    assert_eq!(locate(&p, "/api/proxy"), Location::Under("".into()));
    assert_eq!(locate(&p, "/api/proxyx/y"), Location::Outside);
    assert_eq!(locate(&p, "/api/catalog"), Location::Outside);
    assert_eq!(locate(&p, "/api"), Location::Outside);
}

#[test]
fn longest_key_wins_whatever_the_order() {
    for cfg in [
        r#"{"/nested":"http://outer","/nested/inner":"http://inner"}"#,
        r#"{"/nested/inner":"http://inner","/nested":"http://outer"}"#,
    ] {
        let p = plan(cfg);
        let host = |rest: &str| match_endpoint(&p, rest).map(|(_, e)| e.target.host.clone());
        assert_eq!(host("/nested/inner/a").as_deref(), Some("inner"));
        assert_eq!(host("/nested/inner").as_deref(), Some("inner"));
        assert_eq!(host("/NESTED/INNER/").as_deref(), Some("inner"));
        assert_eq!(host("/nested/innerx").as_deref(), Some("outer"));
        assert_eq!(host("/nested").as_deref(), Some("outer"));
        assert_eq!(host("/nestedx"), None);
        assert_eq!(host("/other"), None);
        assert_eq!(host(""), None);
    }
}

#[test]
fn keys_are_literal_text_and_a_root_key_matches_everything() {
    let p = plan(r#"{"/p:id":"http://param","/a+b":"http://plus"}"#);
    assert!(match_endpoint(&p, "/pfoo").is_none());
    assert_eq!(
        match_endpoint(&p, "/p:id/x").unwrap().1.target.host,
        "param"
    );
    assert_eq!(match_endpoint(&p, "/a+b").unwrap().1.target.host, "plus");
    let p = plan(r#"{"/":"http://root","/x":"http://x"}"#);
    assert_eq!(
        match_endpoint(&p, "/anything/at/all")
            .unwrap()
            .1
            .target
            .host,
        "root"
    );
    assert_eq!(match_endpoint(&p, "").unwrap().1.target.host, "root");
    assert_eq!(match_endpoint(&p, "/x/1").unwrap().1.target.host, "x");
}

#[test]
fn default_rewrite_and_join_match_backstages_table() {
    let p = plan(
        r#"{"/simple":"http://h:9911","/withpath":"http://h:9911/base/v1","/withslash":"http://h:9911/base/v1/",
            "/withquery":"http://h:9911/base?k=v","/trail/":"http://h:9911/tr"}"#,
    );
    for (req, want) in [
        ("/api/proxy/simple/x?y=1", "/x?y=1"),
        ("/api/proxy/simple", "/"),
        ("/api/proxy/simple?x=1", "/?x=1"),
        ("/api/proxy/simple/", "/"),
        ("/api/proxy/withpath/a/b?c=d&e=f", "/base/v1/a/b?c=d&e=f"),
        ("/api/proxy/withpath", "/base/v1/"),
        ("/api/proxy/withpath/", "/base/v1/"),
        ("/api/proxy/withslash/a", "/base/v1/a"),
        ("/api/proxy/simple//a//b", "/a/b"),
        (
            "/api/proxy/simple/a%2Fb%20c/%41?x=%2F",
            "/a%2Fb%20c/%41?x=%2F",
        ),
        ("/api/proxy/trail", "/tr/"),
        // Deviation: the default rewrite is case-insensitive like routing.
        ("/api/proxy/SIMPLE/x", "/x"),
        ("/API/PROXY/Simple/x", "/x"),
        // docs/contract.md#path-host-and-routing: a target's own query comes first, then the request's.
        ("/api/proxy/withquery/a?z=1", "/base/a?k=v&z=1"),
        ("/api/proxy/withquery/a", "/base/a?k=v"),
        // the query is byte-for-byte, never normalised
        (
            "/api/proxy/simple?x=/../../admin&y=%2f..",
            "/?x=/../../admin&y=%2f..",
        ),
        ("//api/proxy//simple///x", "/x"),
    ] {
        assert_eq!(upstream(&p, req).as_deref(), Some(want), "{req}");
    }
}

#[test]
fn path_rewrite_first_matching_rule_then_join() {
    let p = plan(
        r#"{"/rewrite":{"target":"http://h/t","pathRewrite":{"^/api/proxy/rewrite/a/":"/AAA/","^/api/proxy/rewrite/":"/BBB/"}},
            "/rewrite2":{"target":"http://h/t","pathRewrite":{"x":"Y"}},
            "/none":{"target":"http://h/t","pathRewrite":{}},
            "/groups":{"target":"http://h","pathRewrite":{"^/api/proxy/groups/(\\w+)/(?<rest>.*)$":"/$1/v2/$<rest>"}}}"#,
    );
    for (req, want) in [
        ("/api/proxy/rewrite/a/b?q=1", "/t/AAA/b?q=1"),
        ("/api/proxy/rewrite/c/d?q=1", "/t/BBB/c/d?q=1"),
        // no rule matches: the full original path, behind the target path
        ("/api/proxy/rewrite", "/t/api/proxy/rewrite"),
        ("/api/proxy/rewrite2/x/x", "/t/api/proYy/rewrite2/x/x"),
        ("/api/proxy/none/a?b=1", "/t/api/proxy/none/a?b=1"),
        ("/api/proxy/groups/users/a/b?c", "/users/v2/a/b?c"),
    ] {
        assert_eq!(upstream(&p, req).as_deref(), Some(want), "{req}");
    }
}

#[test]
fn rewritten_paths_must_start_with_a_single_slash() {
    let p = plan(
        r#"{"/rel":{"target":"http://h/base","pathRewrite":{"^/api/proxy/rel/":"x/"}},
            "/dbl":{"target":"http://h/base","pathRewrite":{"^/api/proxy/dbl/":"//evil.example/"}},
            "/empty":{"target":"http://h/base","pathRewrite":{"^/api/proxy/empty":""}}}"#,
    );
    assert_eq!(upstream(&p, "/api/proxy/rel/a"), None);
    assert_eq!(upstream(&p, "/api/proxy/dbl/a"), None);
    // An empty result is the target's own path (stays under it).
    assert_eq!(upstream(&p, "/api/proxy/empty").as_deref(), Some("/base/"));
    assert_eq!(
        upstream(&p, "/api/proxy/empty?q=1").as_deref(),
        Some("/base/?q=1")
    );
    assert_eq!(
        upstream(&p, "/api/proxy/empty/a").as_deref(),
        Some("/base/a")
    );
}

#[test]
fn javascript_replacement_patterns() {
    let p = plan(
        r#"{"/j":{"target":"http://h","pathRewrite":{"^/api/proxy/j/(a)(b)?(c)":"/[$$][$&][$`][$'][$1][$2][$3][$4][$01][$10][$<x>]"}}}"#,
    );
    let rules = p.endpoints[0].path_rewrite.as_ref().unwrap();
    let out = apply_rewrite(rules, "/api/proxy/j/ac/tail").unwrap();
    // $2 did not participate: empty. $4 and $10 (only 3 groups): literal. $01 is group 1.
    // No named groups: $<x> is literal.
    assert_eq!(
        out,
        "/[$][/api/proxy/j/ac][][/tail][a][][c][$4][a][a0][$<x>]/tail"
    );
    let p = plan(
        r#"{"/n":{"target":"http://h","pathRewrite":{"^/api/proxy/n/(?<first>[^/]+)":"/$<first>-$<missing>"}}}"#,
    );
    let out = apply_rewrite(
        p.endpoints[0].path_rewrite.as_ref().unwrap(),
        "/api/proxy/n/abc/d",
    )
    .unwrap();
    assert_eq!(out, "/abc-/d");
}
