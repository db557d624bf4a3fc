//! The order the filter runs things in (CORS, then the pipeline, then the
//! budgets) and what the response keeps: decided here, natively, where the
//! filter only applies the verdict.

use super::*;
use crate::decision::{header_view, response, Header};
use crate::shared_data::InMemory;

const TOKEN: &str = "static-token-abc";
const APP: &str = "https://backstage.example.com";
const NOW: u64 = 1_800_000_000_000;

fn plan(gateway: &str) -> Plan {
    let cfg = format!(
        r#"{{"proxy":{{"endpoints":{{"/pd":{{"target":"http://pd.test","allowedHeaders":["X-Custom"]}},"/gh":"http://gh.test"}}}},
          "backend":{{"baseUrl":"http://backstage:7007","cors":{{"origin":"{APP}","credentials":true}},
            "auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{TOKEN}","subject":"ci"}}}}]}}}},
          "gateway":{gateway}}}"#
    );
    crate::config::parse(cfg.as_bytes(), &|_| None).unwrap()
}

fn budgets() -> Plan {
    plan(r#"{"rateLimits":{"/pd":{"perPrincipal":{"requests":2,"seconds":60}}}}"#)
}

/// Test headers, as the host hands them over (borrowed; leaked, tests only).
fn headers(list: &[(&str, &str)]) -> &'static [Header<'static>] {
    let owned: &'static [(String, Vec<u8>)] = Vec::leak(
        list.iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
    );
    Vec::leak(header_view(owned))
}

fn run<'a>(
    plan: &'a Plan,
    shared: &mut InMemory,
    method: &'a str,
    path: &'a str,
    h: &'a [Header<'a>],
) -> Verdict<'a> {
    let req = Request {
        method,
        path: Some(path),
        authority: "gw",
        downstream_tls: false,
        headers: h,
        client_address: None,
        now_ms: NOW,
    };
    handle(plan, &mut AuthState::new(plan), shared, &req)
}

fn created(plan: &Plan) -> InMemory {
    let mut m = InMemory::default();
    assert!(crate::ratelimit::ensure_secret(&mut m, &[3; 32]));
    for k in budget::counter_keys(plan) {
        assert!(m.set(&k, crate::ratelimit::NEW_COUNTER, None));
    }
    m
}

fn header<'r>(reply: &'r Reply, name: &str) -> Option<&'r str> {
    reply
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_preflight_is_answered_before_credentials_are_asked_for() {
    let p = plan("{}");
    let h = headers(&[
        ("origin", APP),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "authorization"),
    ]);
    let Verdict::Answer(a) = run(&p, &mut created(&p), "OPTIONS", "/api/proxy/pd", h) else {
        panic!("a preflight is answered");
    };
    assert_eq!(a.reply.status, 204);
    assert_eq!(header(&a.reply, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(&a.reply, "access-control-allow-headers"),
        Some("authorization")
    );
    assert_eq!(a.record.outcome, Outcome::CorsPreflight);
    assert!(!a.record.logged() || a.record.principal.is_none());
}

#[test]
fn a_refusal_carries_cors_so_the_browser_can_read_it() {
    let p = plan("{}");
    let h = headers(&[("origin", APP)]);
    let Verdict::Answer(a) = run(&p, &mut created(&p), "GET", "/api/proxy/pd/x", h) else {
        panic!("no credentials: refused");
    };
    assert_eq!(a.reply.status, 401);
    assert_eq!(header(&a.reply, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(&a.reply, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        a.record.outcome,
        Outcome::Denied(Reason::MissingCredentials)
    );
    // Another origin: no CORS at all.
    let h = headers(&[("origin", "https://evil.example")]);
    let Verdict::Answer(a) = run(&p, &mut created(&p), "GET", "/api/proxy/pd/x", h) else {
        panic!("refused");
    };
    assert_eq!(header(&a.reply, "access-control-allow-origin"), None);
}

#[test]
fn budgets_are_spent_after_the_pipeline_admits_and_refuse_with_retry_after() {
    let p = budgets();
    let mut shared = created(&p);
    let bearer = format!("Bearer {TOKEN}");
    let h = headers(&[("authorization", &bearer), ("origin", APP)]);
    for _ in 0..2 {
        let Verdict::Continue(c) = run(&p, &mut shared, "GET", "/api/proxy/pd/x", h) else {
            panic!("within the budget");
        };
        assert_eq!(c.record.outcome, Outcome::Allowed);
        assert_eq!(c.after.endpoint, Some(0));
        assert_eq!(c.request_url, None, "nothing handed to a service");
    }
    let Verdict::Answer(a) = run(&p, &mut shared, "GET", "/api/proxy/pd/x", h) else {
        panic!("over the budget");
    };
    assert_eq!(a.reply.status, 429);
    assert_eq!(header(&a.reply, "retry-after"), Some("60"));
    assert_eq!(header(&a.reply, "access-control-allow-origin"), Some(APP));
    assert_eq!(a.record.outcome, Outcome::Denied(Reason::RateLimited));
    assert_eq!(a.record.principal, Some(Principal::External("ci".into())));
    assert_eq!(a.record.endpoint_key(&p), "/pd");
    // A request the pipeline refuses spends nothing: another endpoint's
    // budget-free requests and refused ones leave /pd's counter as it is.
    let before = shared.get("backstage_proxy/ratelimit//pd/total");
    let none = headers(&[]);
    let _ = run(&p, &mut shared, "GET", "/api/proxy/pd/x", none);
    assert_eq!(shared.get("backstage_proxy/ratelimit//pd/total"), before);
}

#[test]
fn with_the_service_the_request_goes_on_and_keeps_its_url() {
    let p = plan(
        r#"{"rateLimitService":{"url":"http://rl:8081"},"rateLimits":{"/pd":{"total":{"requests":1,"seconds":60}}}}"#,
    );
    let mut shared = InMemory::default();
    let bearer = format!("Bearer {TOKEN}");
    let h = headers(&[("authorization", &bearer)]);
    for _ in 0..3 {
        let Verdict::Continue(c) = run(&p, &mut shared, "GET", "/api/proxy/pd/x?y=1", h) else {
            panic!("the service decides, not the filter");
        };
        assert_eq!(c.request_url, Some("/api/proxy/pd/x?y=1"));
        assert!(c
            .set
            .iter()
            .any(|(n, v)| n == crate::ratelimit::ENDPOINT_HEADER && v == "/pd"));
    }
    assert!(shared.is_empty(), "no counter of the filter's own");
}

#[test]
fn outside_the_prefix_the_request_passes_and_is_not_logged() {
    let p = plan("{}");
    let h = headers(&[("x-backstage-proxy-cluster", "evil"), ("origin", APP)]);
    let Verdict::Continue(c) = run(&p, &mut created(&p), "GET", "/catalog", h) else {
        panic!("passes through");
    };
    assert!(c.remove.iter().any(|r| r == "x-backstage-proxy-cluster"));
    assert!(c.set.is_empty());
    assert!(!c.record.logged());
    assert_eq!(c.after.endpoint, None);
    assert!(
        c.after.cors.is_empty(),
        "other applications keep their own CORS"
    );
}

#[test]
fn other_applications_preflights_reach_them() {
    let p = plan("{}");
    let h = headers(&[("origin", APP), ("access-control-request-method", "POST")]);
    for path in ["/catalog/entities", "/api/proxyx", "/", "/api/catalog"] {
        let Verdict::Continue(c) = run(&p, &mut created(&p), "OPTIONS", path, h) else {
            panic!("{path}: not the filter's to answer");
        };
        assert!(c.after.cors.is_empty(), "{path}");
    }
    // Under the prefix, in any spelling the prefix matches: answered.
    for path in ["/api/proxy/pd", "/API/Proxy/pd", "//api/proxy/pd"] {
        assert!(
            matches!(
                run(&p, &mut created(&p), "OPTIONS", path, h),
                Verdict::Answer(_)
            ),
            "{path}"
        );
    }
}

#[test]
fn the_null_origin_is_never_matched_by_a_pattern() {
    for origin in [
        r#""*""#,
        r#""**""#,
        r#"["*", "https://*.example.com"]"#,
        r#""!https://x.example""#,
    ] {
        let cfg = format!(
            r#"{{"proxy":{{"endpoints":{{"/pd":"http://pd.test"}}}},"backend":{{"cors":{{"origin":{origin},"credentials":true}}}}}}"#
        );
        let p = crate::config::parse(cfg.as_bytes(), &|_| None).unwrap();
        let h = headers(&[("origin", "null")]);
        let Verdict::Answer(a) = run(&p, &mut InMemory::default(), "GET", "/api/proxy/pd", h)
        else {
            panic!("refused: no credentials");
        };
        assert_eq!(
            header(&a.reply, "access-control-allow-origin"),
            None,
            "{origin}"
        );
    }
    // An explicit entry allows it, with a warning.
    let cfg = r#"{"proxy":{"endpoints":{"/pd":"http://pd.test"}},"backend":{"cors":{"origin":["null"],"credentials":true}}}"#;
    let p = crate::config::parse(cfg.as_bytes(), &|_| None).unwrap();
    assert!(
        p.warnings.iter().any(|w| w.contains("'null'")),
        "{:?}",
        p.warnings
    );
    let h = headers(&[("origin", "null")]);
    let Verdict::Answer(a) = run(&p, &mut InMemory::default(), "GET", "/api/proxy/pd", h) else {
        panic!("refused");
    };
    assert_eq!(
        header(&a.reply, "access-control-allow-origin"),
        Some("null")
    );
}

#[test]
fn vary_is_merged_with_the_upstreams_never_replaced() {
    let cfg = r#"{"proxy":{"endpoints":{"/pd":{"target":"http://pd.test","allowedHeaders":["Vary"]}}},"backend":{"cors":{"origin":"https://backstage.example.com"}}}"#;
    let p = crate::config::parse(cfg.as_bytes(), &|_| None).unwrap();
    for (upstream, want) in [
        (vec!["Accept-Encoding"], Some("Accept-Encoding, Origin")),
        (vec!["accept-encoding", "origin"], None),
        (vec!["*"], None),
        (
            vec!["Accept, Accept-Language"],
            Some("Accept, Accept-Language, Origin"),
        ),
    ] {
        let mut list: Vec<(&str, &str)> = vec![(":status", "200")];
        list.extend(upstream.iter().map(|v| ("vary", *v)));
        let h = headers(&list);
        let e = response::edits(&p, cors_after(Some(0)), h, None);
        let set = e
            .set
            .iter()
            .find(|(n, _)| n == "vary")
            .map(|(_, v)| v.as_ref());
        assert_eq!(set, want, "{upstream:?}");
        assert!(
            !e.add.iter().any(|(n, _)| *n == "vary"),
            "never a second Vary"
        );
        assert!(!e.remove.iter().any(|r| r == "vary"));
    }
}

#[test]
fn an_unfetchable_key_set_is_a_401_with_cors() {
    let p = plan("{}");
    let h = headers(&[("origin", APP)]);
    let req = Request {
        method: "GET",
        path: Some("/api/proxy/pd"),
        authority: "gw",
        downstream_tls: false,
        headers: h,
        client_address: None,
        now_ms: NOW,
    };
    let a = key_set_unavailable(&p, &req);
    assert_eq!(a.reply.status, 401);
    assert_eq!(header(&a.reply, "www-authenticate"), Some("Bearer"));
    assert_eq!(header(&a.reply, "access-control-allow-origin"), Some(APP));
    assert_eq!(a.record.outcome, Outcome::Denied(Reason::KeySetUnavailable));
}

#[test]
fn the_access_log_names_who_where_and_what() {
    let p = plan("{}");
    let rec = Record {
        outcome: Outcome::Allowed,
        endpoint: Some(1),
        principal: Some(Principal::User("user:default/jane".into())),
        permission: None,
    };
    let state = rec.filter_state(&p);
    let state: Vec<(&str, &str)> = state.iter().map(|(k, v)| (*k, v.as_ref())).collect();
    assert_eq!(
        state,
        [
            (crate::audit::PRINCIPAL_KEY, "user:default/jane"),
            (crate::audit::ENDPOINT_KEY, "/gh"),
            (crate::audit::DECISION_KEY, "allowed"),
        ]
    );
    let nobody = Record {
        outcome: Outcome::Denied(Reason::NotFound),
        endpoint: None,
        principal: None,
        permission: None,
    };
    assert_eq!(nobody.filter_state(&p)[0].1, "-");
    assert_eq!(nobody.filter_state(&p)[1].1, "-");
}

fn cors_after(endpoint: Option<usize>) -> After {
    After {
        endpoint,
        cors: vec![
            ("access-control-allow-origin", APP.to_string()),
            ("vary", "Origin".to_string()),
        ],
    }
}

#[test]
fn the_response_keeps_its_allowed_headers_and_gains_cors_where_it_has_none() {
    let p = plan("{}");
    let h = headers(&[
        (":status", "200"),
        ("x-custom", "kept"),
        ("set-cookie", "a=1"),
        ("access-control-allow-origin", "https://upstream.example"),
    ]);
    let e = response::edits(&p, cors_after(Some(0)), h, None);
    assert!(e.remove.iter().any(|r| r == "set-cookie"));
    assert!(!e.remove.iter().any(|r| r == "x-custom"));
    // The upstream's allow-origin is not allowed through, so CORS's is added.
    assert!(e.remove.iter().any(|r| r == "access-control-allow-origin"));
    assert!(e
        .add
        .iter()
        .any(|(n, v)| *n == "access-control-allow-origin" && v == APP));
    assert_eq!(e.refused, None);
    // Outside the prefix nothing is removed, and a header the response
    // already has wins over CORS's.
    let e = response::edits(&p, cors_after(None), h, None);
    assert!(e.remove.is_empty());
    assert!(!e
        .add
        .iter()
        .any(|(n, _)| *n == "access-control-allow-origin"));
    assert!(e.add.iter().any(|(n, _)| *n == "vary"));
}

#[test]
fn a_refusal_by_the_rate_limit_service_is_recorded_with_retry_after() {
    let p = plan(
        r#"{"rateLimitService":{"url":"http://rl:8081"},"rateLimits":{"/pd":{"total":{"requests":1,"seconds":60}}}}"#,
    );
    let h = headers(&[(":status", "429"), ("x-ratelimit-reset", "17")]);
    assert!(response::may_be_rate_limit_service(&p, h));
    let e = response::edits(&p, cors_after(Some(0)), h, Some(b"request_rate_limited"));
    assert_eq!(e.refused, Some(Outcome::Denied(Reason::RateLimited)));
    assert!(e.set.iter().any(|(n, v)| n == "retry-after" && v == "17"));
    let e = response::edits(&p, cors_after(Some(0)), h, Some(b"rate_limiter_error"));
    assert_eq!(
        e.refused,
        Some(Outcome::Denied(Reason::RateLimitServiceError))
    );
    assert!(e.set.is_empty());
    // An upstream's own 429 is the upstream's.
    let e = response::edits(&p, cors_after(Some(0)), h, Some(b"via_upstream"));
    assert_eq!(e.refused, None);
    // A 200, or no service: the detail is never read.
    assert!(!response::may_be_rate_limit_service(
        &p,
        headers(&[(":status", "200")])
    ));
    assert!(!response::may_be_rate_limit_service(&plan("{}"), h));
}

#[test]
fn every_request_under_the_prefix_is_logged_whatever_its_outcome() {
    let p = budgets();
    let mut shared = created(&p);
    let bearer = format!("Bearer {TOKEN}");
    let with_token = headers(&[("authorization", &bearer), ("origin", APP)]);
    let without = headers(&[("origin", APP)]);
    let preflight = headers(&[("origin", APP), ("access-control-request-method", "GET")]);
    let record = |v: Verdict<'_>| match v {
        Verdict::Continue(c) => c.record,
        Verdict::Answer(a) => a.record,
        Verdict::Wait(s) => panic!("waits for {s:?}"),
        Verdict::Ask(a) => panic!("asks {a:?}"),
    };
    let mut seen = Vec::new();
    for (method, path, h) in [
        ("GET", "/api/proxy/pd/x", &with_token),
        ("GET", "/api/proxy/pd/x", &with_token),
        ("GET", "/api/proxy/pd/x", &with_token),
        ("GET", "/api/proxy/gh", &with_token),
        ("GET", "/api/proxy/pd/x", &without),
        ("GET", "/api/proxy/nowhere", &with_token),
        ("GET", "/api/proxy/.backstage/auth/v1/jwks.json", &without),
        ("OPTIONS", "/api/proxy/pd", &preflight),
        ("GET", "/api/proxy/pd/%00", &with_token),
    ] {
        let r = record(run(&p, &mut shared, method, path, h));
        assert!(r.logged(), "{method} {path}: {r:?}");
        seen.push(r.outcome);
    }
    assert_eq!(
        seen,
        [
            Outcome::Allowed,
            Outcome::Allowed,
            Outcome::Denied(Reason::RateLimited),
            Outcome::Allowed,
            Outcome::Denied(Reason::MissingCredentials),
            Outcome::Denied(Reason::NotFound),
            Outcome::OwnJwks,
            Outcome::CorsPreflight,
            Outcome::Denied(Reason::UnsafePath),
        ]
    );
    // Outside it, nothing is.
    for path in ["/catalog", "/api/proxyx/pd", "/"] {
        let r = record(run(&p, &mut shared, "GET", path, with_token));
        assert!(!r.logged(), "{path}");
    }
}

#[test]
fn whether_cors_headers_are_added_depends_on_that_header_alone() {
    // /pd lets X-Custom through; the upstream's allow-origin is removed,
    // so CORS's is added; whatever other headers the response has, and
    // whether they are removed, changes nothing of that.
    let p = plan("{}");
    for others in [
        vec![],
        vec![("set-cookie", "a=1")],
        vec![("x-custom", "1")],
        vec![("set-cookie", "a=1"), ("x-custom", "1"), ("server", "x")],
    ] {
        let mut list = vec![
            (":status", "200"),
            ("access-control-allow-origin", "https://upstream.example"),
        ];
        list.extend(others.iter().copied());
        let h = headers(&list);
        let e = response::edits(&p, cors_after(Some(0)), h, None);
        assert!(
            e.remove.iter().any(|r| r == "access-control-allow-origin"),
            "{others:?}"
        );
        assert!(
            e.add
                .iter()
                .any(|(n, v)| *n == "access-control-allow-origin" && v == APP),
            "{others:?}: {e:?}"
        );
    }
    // An upstream `Vary` the endpoint lets through is merged, never
    // doubled, whatever else is removed.
    let cfg = r#"{"proxy":{"endpoints":{"/pd":{"target":"http://pd.test","allowedHeaders":["Vary"]}}},"backend":{"cors":{"origin":"https://backstage.example.com"}}}"#;
    let p = crate::config::parse(cfg.as_bytes(), &|_| None).unwrap();
    for others in [
        vec![],
        vec![("set-cookie", "a=1")],
        vec![("set-cookie", "a=1"), ("x-other", "1")],
    ] {
        let mut list = vec![(":status", "200"), ("vary", "Accept-Encoding")];
        list.extend(others.iter().copied());
        let h = headers(&list);
        let e = response::edits(&p, cors_after(Some(0)), h, None);
        assert!(
            !e.add.iter().any(|(n, _)| *n == "vary"),
            "{others:?}: {e:?}"
        );
        assert!(
            e.set
                .iter()
                .any(|(n, v)| n == "vary" && v == "Accept-Encoding, Origin"),
            "{others:?}: {e:?}"
        );
    }
}

#[test]
fn retry_after_is_taken_only_from_a_whole_number_of_seconds() {
    let p = plan(
        r#"{"rateLimitService":{"url":"http://rl:8081"},"rateLimits":{"/pd":{"total":{"requests":1,"seconds":60}}}}"#,
    );
    for (reset, want) in [
        ("0", Some("0")),
        ("17", Some("17")),
        ("3600", Some("3600")),
        ("", None),
        ("17s", None),
        ("-1", None),
        ("1.5", None),
        (" 17", None),
        ("17, 18", None),
        ("\u{2163}", None),
    ] {
        let h = headers(&[(":status", "429"), ("x-ratelimit-reset", reset)]);
        let e = response::edits(&p, cors_after(Some(0)), h, Some(b"request_rate_limited"));
        assert_eq!(
            e.refused,
            Some(Outcome::Denied(Reason::RateLimited)),
            "{reset:?}"
        );
        let got = e
            .set
            .iter()
            .find(|(n, _)| n == "retry-after")
            .map(|(_, v)| v.as_ref());
        assert_eq!(got, want, "{reset:?}");
    }
    // No reset at all: refused, without retry-after.
    let h = headers(&[(":status", "429")]);
    let e = response::edits(&p, cors_after(Some(0)), h, Some(b"request_rate_limited"));
    assert_eq!(e.refused, Some(Outcome::Denied(Reason::RateLimited)));
    assert!(e.set.is_empty());
}
