use super::*;
use crate::config::parse;

fn endpoint(json: &str) -> Endpoint {
    let cfg = format!(r#"{{"proxy":{{"endpoints":{{"/e":{json}}}}}}}"#);
    parse(cfg.as_bytes(), &|_| Some("v".into()))
        .unwrap()
        .endpoints
        .remove(0)
}

#[test]
fn default_request_allow_list_is_backstages_eleven() {
    let ep = endpoint(r#""http://t""#);
    let sent = [
        ":method",
        ":path",
        ":authority",
        "cache-control",
        "content-language",
        "content-length",
        "content-type",
        "expires",
        "last-modified",
        "pragma",
        "host",
        "accept",
        "accept-language",
        "user-agent",
        "cookie",
        "authorization",
        "x-forwarded-for",
        "origin",
        "referer",
        "accept-encoding",
        "x-api-key",
    ];
    let removed = request_removals(&ep, sent.iter().copied());
    assert_eq!(
        removed,
        [
            "cookie",
            "authorization",
            "x-forwarded-for",
            "origin",
            "referer",
            "accept-encoding",
            "x-api-key"
        ]
    );
}

#[test]
fn configured_and_injected_names_extend_the_request_list_only() {
    let ep = endpoint(
        r#"{"target":"http://t","headers":{"X-Api-Key":"k"},"allowedHeaders":["X-Custom","Set-Cookie"]}"#,
    );
    let removed = request_removals(&ep, ["x-api-key", "X-CUSTOM", "x-other"].into_iter());
    assert_eq!(removed, ["x-other"]);
    // response: injected header names are not allowed back, allowedHeaders are
    let removed = response_removals(
        &ep,
        [
            "x-api-key",
            "set-cookie",
            "x-custom",
            "content-type",
            ":status",
        ]
        .into_iter(),
    );
    assert_eq!(removed, ["x-api-key"]);
}

#[test]
fn forward_allows_authorization_require_does_not() {
    let fwd = endpoint(r#"{"target":"http://t","credentials":"forward"}"#);
    assert!(request_removals(&fwd, ["authorization"].into_iter()).is_empty());
    assert!(response_removals(&fwd, ["authorization"].into_iter()).len() == 1);
    let req = endpoint(r#"{"target":"http://t","credentials":"require"}"#);
    assert_eq!(
        request_removals(&req, ["authorization"].into_iter()),
        ["authorization"]
    );
    let open = endpoint(
        r#"{"target":"http://t","credentials":"dangerously-allow-unauthenticated","allowedHeaders":["Authorization"]}"#,
    );
    assert!(request_removals(&open, ["authorization"].into_iter()).is_empty());
}

#[test]
fn repeated_names_are_removed_once_with_all_values() {
    let ep = endpoint(r#""http://t""#);
    assert_eq!(
        request_removals(&ep, ["cookie", "Cookie", "cookie"].into_iter()),
        ["cookie"]
    );
}

#[test]
fn removals_are_each_name_once_however_many_headers_there_are() {
    // Below and above the point where duplicates are found by a set.
    for n in [3usize, 8, 9, 40, 200] {
        let mut names: Vec<String> = (0..n).map(|i| format!("x-h-{i}")).collect();
        names.extend((0..n).map(|i| format!("X-H-{i}")));
        names.push("content-type".into());
        names.push(":path".into());
        let out = super::removals(names.iter().map(String::as_str), |h| h == "content-type");
        assert_eq!(out.len(), n, "n={n}");
        for (i, o) in out.iter().enumerate() {
            assert_eq!(
                o.as_ref(),
                format!("x-h-{i}"),
                "first-seen order, lower-cased"
            );
        }
    }
}
