//! The middleware's answers, from expressjs/cors 2.8 with Backstage's
//! options (the differential test in `core/tests/cors_reference.rs` runs the
//! real package on generated requests).

use super::{Answer, Policy};
use crate::config;

fn policy(cors: &str) -> Policy {
    let json = format!(r#"{{"backend":{{"cors":{cors}}}}}"#);
    config::parse(json.as_bytes(), &|_| None)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .cors
        .expect("cors")
}

fn h(a: &Answer) -> Vec<(&str, &str)> {
    match a {
        Answer::None => Vec::new(),
        Answer::Preflight { headers, .. } | Answer::Decorate(headers) => {
            headers.iter().map(|(n, v)| (*n, v.as_str())).collect()
        }
    }
}

const APP: &str = "https://backstage.example.com";

#[test]
fn a_preflight_from_the_app_reflects_the_requested_headers() {
    let p = policy(r#"{"origin":"https://backstage.example.com","credentials":true}"#);
    let a = p.answer("OPTIONS", Some(APP), Some("authorization,content-type"));
    assert!(matches!(a, Answer::Preflight { status: 204, .. }), "{a:?}");
    assert_eq!(
        h(&a),
        [
            ("access-control-allow-origin", APP),
            ("access-control-allow-credentials", "true"),
            (
                "access-control-allow-methods",
                "GET,HEAD,PUT,PATCH,POST,DELETE"
            ),
            ("access-control-allow-headers", "authorization,content-type"),
            ("vary", "Origin, Access-Control-Request-Headers"),
        ]
    );
}

#[test]
fn configured_lists_are_joined_and_sent_as_configured() {
    let p = policy(
        r#"{"origin":["http://localhost:3000","https://*.example.com"],"methods":["GET","POST"],"allowedHeaders":["Authorization","Content-Type"],"exposedHeaders":"Link","maxAge":600}"#,
    );
    let a = p.answer("OPTIONS", Some("https://app.example.com"), Some("x-other"));
    assert_eq!(
        h(&a),
        [
            ("access-control-allow-origin", "https://app.example.com"),
            ("access-control-allow-methods", "GET,POST"),
            ("access-control-allow-headers", "Authorization,Content-Type"),
            ("access-control-max-age", "600"),
            ("access-control-expose-headers", "Link"),
            ("vary", "Origin"),
        ]
    );
    // An actual request: origin, credentials and exposed headers only.
    let a = p.answer("GET", Some("http://localhost:3000"), None);
    assert_eq!(
        a,
        Answer::Decorate(vec![
            (
                "access-control-allow-origin",
                "http://localhost:3000".into()
            ),
            ("access-control-expose-headers", "Link".into()),
            ("vary", "Origin".into()),
        ])
    );
}

#[test]
fn an_origin_not_allowed_gets_nothing() {
    let p = policy(r#"{"origin":"https://backstage.example.com"}"#);
    assert_eq!(
        p.answer(
            "OPTIONS",
            Some("https://evil.example"),
            Some("authorization")
        ),
        Answer::None
    );
    assert_eq!(
        p.answer("GET", Some("https://evil.example"), None),
        Answer::None
    );
    assert_eq!(p.answer("GET", None, None), Answer::None);
    assert_eq!(p.answer("OPTIONS", None, None), Answer::None);
}

#[test]
fn without_origin_every_request_gets_a_star() {
    for cors in [r#"{}"#, r#"{"origin":false}"#, r#"{"origin":""}"#] {
        let p = policy(cors);
        let a = p.answer("OPTIONS", None, None);
        assert!(matches!(a, Answer::Preflight { status: 204, .. }));
        assert_eq!(
            h(&a),
            [
                ("access-control-allow-origin", "*"),
                (
                    "access-control-allow-methods",
                    "GET,HEAD,PUT,PATCH,POST,DELETE"
                ),
                ("vary", "Access-Control-Request-Headers"),
            ]
        );
        assert_eq!(
            p.answer("GET", Some("https://any.example"), None),
            Answer::Decorate(vec![("access-control-allow-origin", "*".into())])
        );
    }
}

#[test]
fn every_options_request_is_a_preflight_and_the_options_apply() {
    let p = policy(r#"{"origin":"*://*","optionsSuccessStatus":200,"allowedHeaders":[]}"#);
    // The middleware does not look for Access-Control-Request-Method.
    let a = p.answer("options", Some("https://x.example"), Some("authorization"));
    assert_eq!(
        a,
        Answer::Preflight {
            status: 200,
            headers: vec![
                ("access-control-allow-origin", "https://x.example".into()),
                (
                    "access-control-allow-methods",
                    "GET,HEAD,PUT,PATCH,POST,DELETE".into()
                ),
                ("vary", "Origin".into()),
            ]
        }
    );
    let p = policy(r#"{"origin":"*://*","preflightContinue":true,"maxAge":0}"#);
    assert!(matches!(
        p.answer("OPTIONS", Some("https://x.example"), None),
        Answer::Decorate(_)
    ));
}

#[test]
fn bad_cors_configuration_names_its_path() {
    for (cors, path) in [
        (r#"{"origin":true}"#, "backend.cors.origin"),
        (r#"{"origin":["a",1]}"#, "backend.cors.origin[1]"),
        (r#"{"origin":"https://!(x).com"}"#, "backend.cors.origin"),
        (
            r#"{"origin":["http://a","https://{1..2}.com"]}"#,
            "backend.cors.origin[1]",
        ),
        (r#"{"methods":5}"#, "backend.cors.methods"),
        (
            r#"{"allowedHeaders":["a\nb"]}"#,
            "backend.cors.allowedHeaders[0]",
        ),
        (r#"{"credentials":"yes"}"#, "backend.cors.credentials"),
        (r#"{"maxAge":"600"}"#, "backend.cors.maxAge"),
        (
            r#"{"optionsSuccessStatus":500}"#,
            "backend.cors.optionsSuccessStatus",
        ),
        (r#"{"origins":"http://a"}"#, "backend.cors.origins"),
        (r#""http://a""#, "backend.cors"),
    ] {
        let json = format!(r#"{{"backend":{{"cors":{cors}}}}}"#);
        let errs = config::parse(json.as_bytes(), &|_| None).expect_err(cors);
        assert!(errs.iter().any(|e| e.path == path), "{cors}: {errs:?}");
    }
}

#[test]
fn no_cors_section_means_no_cors() {
    let plan = config::parse(br#"{"backend":{"baseUrl":"http://b:7007"}}"#, &|_| None).unwrap();
    assert!(plan.cors.is_none());
}

#[test]
fn a_bare_star_origin_matches_nothing_as_in_backstage_and_check_says_so() {
    // minimatch's `*` never crosses a `/`, and every origin has `//`.
    let json = br#"{"backend":{"cors":{"origin":"*"}}}"#;
    let plan = config::parse(json, &|_| None).unwrap();
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("backend.cors.origin") && w.contains("no origin")),
        "{:?}",
        plan.warnings
    );
    let p = plan.cors.unwrap();
    assert_eq!(
        p.answer("OPTIONS", Some("https://x.example"), None),
        Answer::None
    );
}
