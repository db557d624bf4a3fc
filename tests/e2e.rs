//! The compiled filter in a real Envoy: every rule of SPEC §2, §4, §5, §6
//! and every deviation of §11, asserted on what a loopback upstream saw.

use backstage_proxy_testkit as support;

use std::sync::OnceLock;

use support::*;

const TOKEN: &str = "static-token-0123456789";
const LEGACY_SECRET: &[u8] = b"legacy-shared-secret-for-tests-0";
const API_KEY: &str = "vm-env-api-key-value";
const UPSTREAM_TOKEN: &str = "vm-env-upstream-token";

struct Fixture {
    envoy: Envoy,
    a: Upstream,
    b: Upstream,
}

fn cluster(port: u16) -> String {
    format!("http_127.0.0.1_{port}")
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let a = Upstream::start(&[
            ("set-cookie", "a=1; Path=/"),
            ("set-cookie", "b=2; Path=/"),
            ("x-upstream-internal", "secret-internal"),
            ("cache-control", "no-store"),
            ("location", "/elsewhere"),
            ("server", "upstream-server"),
        ]);
        let b = Upstream::start(&[]);
        // A port with nothing listening: the upstream-down case.
        let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (ap, bp) = (a.port, b.port);
        let config = format!(
            r#"{{
          "proxy": {{
            "endpoints": {{
              "/simple": "http://127.0.0.1:{ap}/base",
              "noslash": "http://127.0.0.1:{ap}/noslash",
              "/forward": {{ "target": "http://127.0.0.1:{ap}", "credentials": "forward" }},
              "/open": {{ "target": "http://127.0.0.1:{ap}/open", "credentials": "dangerously-allow-unauthenticated" }},
              "/open/priv": {{ "target": "http://127.0.0.1:{bp}/priv", "headers": {{ "Authorization": "Token ${{UPSTREAM_TOKEN}}" }} }},
              "/open-fwd": {{ "target": "http://127.0.0.1:{ap}", "credentials": "dangerously-allow-unauthenticated", "allowedHeaders": ["Authorization"] }},
              "/methods": {{ "target": "http://127.0.0.1:{ap}", "allowedMethods": ["GET", "DELETE"] }},
              "/headers": {{ "target": "http://127.0.0.1:{ap}", "headers": {{ "X-Api-Key": "${{API_KEY}}" }}, "allowedHeaders": ["X-Custom", "Set-Cookie"] }},
              "/rewrite": {{ "target": "http://127.0.0.1:{ap}/t", "pathRewrite": {{ "^/api/proxy/rewrite/a/": "/AAA/", "^/api/proxy/rewrite/(\\w+)/": "/BBB/$1/" }} }},
              "/nested": "http://127.0.0.1:{ap}/outer",
              "/nested/inner": "http://127.0.0.1:{bp}/inner",
              "/keephost": {{ "target": "http://127.0.0.1:{ap}", "changeOrigin": false }},
              "/xfwd": {{ "target": "http://127.0.0.1:{ap}", "xfwd": true }},
              "/ws": {{ "target": "http://127.0.0.1:{ap}/sock", "ws": true }},
              "/down": "http://127.0.0.1:{down}",
              "/query": "http://127.0.0.1:{ap}/q?k=v"
            }}
          }},
          "backend": {{
            "baseUrl": "http://127.0.0.1:7007",
            "auth": {{
              "keys": [{{ "secret": "{legacy}" }}],
              "externalAccess": [
                {{ "type": "static", "options": {{ "token": "{TOKEN}", "subject": "ci" }} }},
                {{ "type": "static", "options": {{ "token": "catalog-only-token", "subject": "bot" }}, "accessRestrictions": [{{ "plugin": "catalog" }}] }}
              ]
            }}
          }}
        }}"#,
            legacy = b64url(LEGACY_SECRET),
        );
        let envoy = Envoy::start(
            EnvoyOptions::new(config)
                .cluster(cluster(ap), ap)
                .cluster(cluster(bp), bp)
                .cluster(cluster(down), down)
                .env("API_KEY", API_KEY)
                .env("UPSTREAM_TOKEN", UPSTREAM_TOKEN),
        );
        Fixture { envoy, a, b }
    })
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn auth() -> (&'static str, String) {
    ("authorization", bearer(TOKEN))
}

fn get(path: &str, headers: &[(&str, &str)]) -> Response {
    fixture().envoy.get(path, headers)
}

fn get_auth(path: &str) -> Response {
    let (n, v) = auth();
    get(path, &[(n, &v)])
}

fn upstream_a(mark: &str) -> Seen {
    fixture()
        .a
        .find(mark)
        .unwrap_or_else(|| panic!("upstream A never saw {mark}"))
}

// ---------------------------------------------------------------- §3 / §6

#[test]
fn missing_credentials_is_backstages_401_and_nothing_is_forwarded() {
    let m = unique();
    let r = get(&format!("/api/proxy/simple/x?y=1&{m}"), &[]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        r.text(),
        format!(
            r#"{{"error":{{"name":"AuthenticationError","message":"Missing credentials"}},"request":{{"method":"GET","url":"/api/proxy/simple/x?y=1&{m}"}},"response":{{"statusCode":401}}}}"#
        )
    );
    fixture().a.assert_never(&m);
}

#[test]
fn unparseable_authorization_cookie_and_query_tokens_are_missing_credentials() {
    for (name, value) in [
        ("authorization", "Basic dXNlcjpwYXNz".to_string()),
        ("authorization", format!("Bearer {TOKEN} extra")),
        ("authorization", format!("Token {TOKEN}")),
        ("cookie", format!("backstage-auth={TOKEN}")),
    ] {
        let m = unique();
        let r = get(
            &format!("/api/proxy/simple?{m}&access_token={TOKEN}"),
            &[(name, &value)],
        );
        assert_eq!(r.status, 401, "{name}: {value}");
        assert_eq!(r.json()["error"]["message"], "Missing credentials");
        fixture().a.assert_never(&m);
    }
}

#[test]
fn an_unknown_token_is_illegal() {
    let m = unique();
    let r = get(
        &format!("/api/proxy/simple?{m}"),
        &[("authorization", "Bearer not-a-known-token")],
    );
    assert_eq!(
        (r.status, r.json()["error"]["message"].as_str()),
        (401, Some("Illegal token"))
    );
    fixture().a.assert_never(&m);
}

#[test]
fn bearer_scheme_is_case_insensitive() {
    let m = unique();
    let r = get(
        &format!("/api/proxy/simple?{m}"),
        &[("authorization", &format!("bEaReR   {TOKEN}"))],
    );
    assert_eq!(r.status, 200);
    upstream_a(&m);
}

#[test]
fn two_authorization_headers_are_refused_deviation() {
    let m = unique();
    let raw = format!("GET /api/proxy/simple?{m} HTTP/1.1\r\nhost: g\r\nauthorization: Bearer {TOKEN}\r\nauthorization: Bearer {TOKEN}\r\nconnection: close\r\n\r\n");
    let r = fixture().envoy.send(&raw);
    assert_eq!(r.status, 401);
    fixture().a.assert_never(&m);
}

#[test]
fn oversized_token_is_refused_without_parsing() {
    let m = unique();
    let big = "a".repeat(16 * 1024 + 1);
    let r = get(
        &format!("/api/proxy/simple?{m}"),
        &[("authorization", &bearer(&big))],
    );
    assert_eq!(r.status, 401);
    fixture().a.assert_never(&m);
}

#[test]
fn static_token_reaches_the_target_under_its_base_path_without_authorization() {
    let m = unique();
    let r = get_auth(&format!("/api/proxy/simple/a/b?{m}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = upstream_a(&m);
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.target, format!("/base/a/b?{m}"));
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(
        seen.header("host"),
        Some(format!("127.0.0.1:{}", fixture().a.port).as_str())
    );
}

#[test]
fn forward_passes_the_callers_authorization_verbatim() {
    let m = unique();
    let r = get(
        &format!("/api/proxy/forward/x?{m}"),
        &[("authorization", &format!("Bearer   {TOKEN}"))],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        upstream_a(&m).header("authorization"),
        Some(format!("Bearer   {TOKEN}").as_str())
    );
    // and still refuses a bad token
    let m = unique();
    assert_eq!(
        get(
            &format!("/api/proxy/forward/x?{m}"),
            &[("authorization", "Bearer garbage-token")]
        )
        .status,
        401
    );
    fixture().a.assert_never(&m);
}

#[test]
fn dangerously_allow_unauthenticated_needs_no_token_and_strips_it_unless_allowed() {
    let m = unique();
    let r = get(
        &format!("/api/proxy/open/x?{m}"),
        &[("authorization", "Bearer garbage")],
    );
    assert_eq!(r.status, 200);
    let seen = upstream_a(&m);
    assert_eq!(seen.target, format!("/open/x?{m}"));
    assert_eq!(seen.header("authorization"), None);
    // with Authorization allow-listed, whatever was sent is forwarded, valid or not
    let m = unique();
    assert_eq!(
        get(
            &format!("/api/proxy/open-fwd?{m}"),
            &[("authorization", "Bearer not-valid")]
        )
        .status,
        200
    );
    assert_eq!(
        upstream_a(&m).header("authorization"),
        Some("Bearer not-valid")
    );
}

#[test]
fn an_open_parent_never_opens_a_protected_child_deviation() {
    let f = fixture();
    let m = unique();
    let r = get(&format!("/api/proxy/open/priv/x?{m}"), &[]);
    assert_eq!(r.status, 401);
    let r = get(&format!("/api/proxy/OPEN/Priv?{m}"), &[]);
    assert_eq!(r.status, 401);
    f.a.assert_never(&m);
    f.b.assert_never(&m);
    assert_eq!(
        f.b.all()
            .iter()
            .filter(|s| s.header("authorization") == Some(&format!("Token {UPSTREAM_TOKEN}")))
            .filter(|s| s.target.contains(&m))
            .count(),
        0
    );
    let m = unique();
    assert_eq!(get_auth(&format!("/api/proxy/open/priv/x?{m}")).status, 200);
    let seen = f.b.find(&m).unwrap();
    assert_eq!(seen.target, format!("/priv/x?{m}"));
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Token {UPSTREAM_TOKEN}").as_str())
    );
}

#[test]
fn legacy_tokens_valid_expired_and_without_exp() {
    let f = fixture();
    let now = now();
    let good = hs256(
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"sub":"backstage-server","exp":{}}}"#, now + 3600),
        LEGACY_SECRET,
    );
    let m = unique();
    assert_eq!(
        get(
            &format!("/api/proxy/simple?{m}"),
            &[("authorization", &bearer(&good))]
        )
        .status,
        200
    );
    assert!(f.a.find(&m).unwrap().header("authorization").is_none());
    // Deviation: Backstage answers 500 for an expired legacy token; here 401.
    let expired = hs256(
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"sub":"backstage-server","exp":{}}}"#, now - 10),
        LEGACY_SECRET,
    );
    // Deviation: Backstage accepts a legacy token without exp.
    let no_exp = hs256(
        r#"{"alg":"HS256"}"#,
        r#"{"sub":"backstage-server"}"#,
        LEGACY_SECRET,
    );
    for t in [expired, no_exp] {
        let m = unique();
        let r = get(
            &format!("/api/proxy/simple?{m}"),
            &[("authorization", &bearer(&t))],
        );
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["error"]["name"], "AuthenticationError");
        f.a.assert_never(&m);
    }
    let wrong_key = hs256(
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"sub":"backstage-server","exp":{}}}"#, now + 60),
        b"some-other-secret",
    );
    let r = get(
        "/api/proxy/simple",
        &[("authorization", &bearer(&wrong_key))],
    );
    assert_eq!(
        (r.status, r.json()["error"]["message"].as_str()),
        (401, Some("Illegal token"))
    );
}

#[test]
fn access_restricted_token_is_403_not_allowed() {
    let m = unique();
    let r = get(
        &format!("/api/proxy/simple/x?{m}"),
        &[("authorization", "Bearer catalog-only-token")],
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["name"], "NotAllowedError");
    assert_eq!(
        r.json()["error"]["message"],
        "This token's access is restricted to plugin(s) 'catalog'"
    );
    assert_eq!(r.header("www-authenticate"), None);
    fixture().a.assert_never(&m);
}

/// This fixture's backend (127.0.0.1:7007) has no Envoy cluster: the
/// key sets cannot be fetched, so user and plugin tokens are refused while
/// static tokens keep working (tests/e2e_tokens.rs covers fetched sets).
#[test]
fn user_and_plugin_tokens_without_a_reachable_key_set_are_refused() {
    let t = now();
    for (typ, payload) in [
        (
            "vnd.backstage.user",
            format!(
                r#"{{"sub":"user:default/jane","iat":{t},"exp":{}}}"#,
                t + 60
            ),
        ),
        (
            "vnd.backstage.plugin",
            format!(
                r#"{{"sub":"catalog","aud":"proxy","iat":{t},"exp":{}}}"#,
                t + 60
            ),
        ),
    ] {
        let tok = hs256(
            &format!(r#"{{"alg":"ES256","typ":"{typ}","kid":"k"}}"#),
            &payload,
            b"x",
        );
        let m = unique();
        let r = get(
            &format!("/api/proxy/simple?{m}"),
            &[("authorization", &bearer(&tok))],
        );
        assert_eq!(r.status, 401, "{typ}: {}", r.text());
        fixture().a.assert_never(&m);
    }
    let m = unique();
    assert_eq!(get_auth(&format!("/api/proxy/simple?{m}")).status, 200);
}

// ---------------------------------------------------------------- §2 routing

#[test]
fn unknown_routes_need_credentials_then_404_with_an_empty_body() {
    let r = get("/api/proxy/unknown/x", &[]);
    assert_eq!(r.status, 401);
    let r = get_auth("/api/proxy/unknown/x");
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-type"), None);
    assert_eq!(get_auth("/api/proxy").status, 404);
    assert_eq!(
        get_auth("/api/proxy/simplex").status,
        404,
        "segment boundary"
    );
}

#[test]
fn own_key_set_is_served_without_credentials() {
    let r = get("/api/proxy/.backstage/auth/v1/jwks.json", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), r#"{"keys":[]}"#);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
}

#[test]
fn longest_key_wins_and_matching_is_case_insensitive_deviation() {
    let f = fixture();
    let m = unique();
    assert_eq!(
        get_auth(&format!("/api/proxy/nested/inner/x?{m}")).status,
        200
    );
    assert_eq!(f.b.find(&m).unwrap().target, format!("/inner/x?{m}"));
    let m = unique();
    assert_eq!(get_auth(&format!("/API/Proxy/NESTED/x?{m}")).status, 200);
    // Deviation: the default rewrite is case-insensitive too.
    assert_eq!(upstream_a(&m).target, format!("/outer/x?{m}"));
}

#[test]
fn a_key_without_a_leading_slash_is_normalised_deviation() {
    let m = unique();
    assert_eq!(get_auth(&format!("/api/proxy/noslash/z?{m}")).status, 200);
    assert_eq!(upstream_a(&m).target, format!("/noslash/z?{m}"));
}

#[test]
fn default_rewrite_join_slash_collapsing_and_verbatim_query() {
    for (req, want) in [
        ("/api/proxy/simple", "/base/"),
        ("/api/proxy/simple/", "/base/"),
        ("/api/proxy/simple//a///b", "/base/a/b"),
        ("/api/proxy/simple/a%2Fb%20c/%41", "/base/a%2Fb%20c/%41"),
        ("/api/proxy/simple/%252e%252e/x", "/base/%252e%252e/x"),
    ] {
        let m = unique();
        let r = get_auth(&format!("{req}?x=%2F/../..&{m}"));
        assert_eq!(r.status, 200, "{req}");
        assert_eq!(
            upstream_a(&m).target,
            format!("{want}?x=%2F/../..&{m}"),
            "{req}"
        );
    }
    // the target's own query first, then the request's
    let m = unique();
    assert_eq!(get_auth(&format!("/api/proxy/query/a?{m}")).status, 200);
    assert_eq!(upstream_a(&m).target, format!("/q/a?k=v&{m}"));
}

#[test]
fn path_rewrite_first_matching_rule_with_groups() {
    let m = unique();
    assert_eq!(get_auth(&format!("/api/proxy/rewrite/a/b?{m}")).status, 200);
    assert_eq!(upstream_a(&m).target, format!("/t/AAA/b?{m}"));
    let m = unique();
    assert_eq!(
        get_auth(&format!("/api/proxy/rewrite/zz/d?{m}")).status,
        200
    );
    assert_eq!(upstream_a(&m).target, format!("/t/BBB/zz/d?{m}"));
    // no rule matches: the original path, behind the target's
    let m = unique();
    assert_eq!(get_auth(&format!("/api/proxy/rewrite?{m}")).status, 200);
    assert_eq!(upstream_a(&m).target, format!("/t/api/proxy/rewrite?{m}"));
}

#[test]
fn change_origin_true_and_false() {
    let m = unique();
    get_auth(&format!("/api/proxy/simple?{m}"));
    assert_eq!(
        upstream_a(&m).header("host"),
        Some(format!("127.0.0.1:{}", fixture().a.port).as_str())
    );
    let m = unique();
    assert_eq!(get_auth(&format!("/api/proxy/keephost/x?{m}")).status, 200);
    assert_eq!(upstream_a(&m).header("host"), Some("gateway.test"));
}

#[test]
fn dot_segments_and_bad_encodings_are_400_and_never_forwarded_deviation() {
    let f = fixture();
    for path in [
        "/api/proxy/simple/../forward",
        "/api/proxy/simple/%2e%2e/x",
        "/api/proxy/simple/%2E%2e/x",
        "/api/proxy/simple/.%2e/x",
        "/api/proxy/simple/a%2f..%2f..%2fx",
        "/api/proxy/simple/a%5c..%5cx",
        "/api/proxy/simple/./x",
        "/api/proxy/open/..;x=1/simple",
        "/api/proxy/simple/%zz",
        "/api/proxy/simple/%00",
    ] {
        let m = unique();
        let r = get_auth(&format!("{path}?{m}"));
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.json()["error"]["name"], "InputError", "{path}");
        f.a.assert_never(&m);
    }
    // a raw backslash path
    let m = unique();
    let r = f.envoy.send(&format!("GET /api/proxy/simple\\..\\forward?{m} HTTP/1.1\r\nhost: g\r\nauthorization: Bearer {TOKEN}\r\nconnection: close\r\n\r\n"));
    assert_eq!(r.status, 400);
    f.a.assert_never(&m);
}

// ---------------------------------------------------------------- §2 methods

#[test]
fn allowed_methods_answer_405_with_allow_after_credentials_deviation() {
    let f = fixture();
    let m = unique();
    assert_eq!(
        f.envoy
            .request("POST", &format!("/api/proxy/methods?{m}"), &[])
            .status,
        401
    );
    let (n, v) = auth();
    let r = f.envoy.request(
        "POST",
        &format!("/api/proxy/methods?{m}"),
        &[(n, &v), ("content-length", "0")],
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, DELETE"));
    assert_eq!(r.json()["response"]["statusCode"], 405);
    let r = f
        .envoy
        .request("HEAD", &format!("/api/proxy/methods?{m}"), &[(n, &v)]);
    assert_eq!(r.status, 405, "HEAD is not implied by GET");
    f.a.assert_never(&m);
    let m = unique();
    assert_eq!(
        f.envoy
            .request("DELETE", &format!("/api/proxy/methods/x?{m}"), &[(n, &v)])
            .status,
        200
    );
    assert_eq!(upstream_a(&m).method, "DELETE");
}

#[test]
fn trace_is_refused_and_extension_methods_are_forwarded_deviation() {
    let f = fixture();
    let (n, v) = auth();
    let m = unique();
    let r = f
        .envoy
        .request("TRACE", &format!("/api/proxy/simple?{m}"), &[(n, &v)]);
    assert_eq!(r.status, 405);
    f.a.assert_never(&m);
    let m = unique();
    assert_eq!(
        f.envoy
            .request("PROPFIND", &format!("/api/proxy/simple?{m}"), &[(n, &v)])
            .status,
        200
    );
    assert_eq!(upstream_a(&m).method, "PROPFIND");
}

// ---------------------------------------------------------------- §4 headers

#[test]
fn request_allow_list_removes_every_other_header_and_all_its_values() {
    let m = unique();
    let raw = format!(
        "GET /api/proxy/simple?{m} HTTP/1.1\r\nhost: gateway.test\r\nauthorization: Bearer {TOKEN}\r\n\
         cookie: a=1\r\ncookie: b=2\r\nx-forwarded-for: 6.6.6.6\r\nx-forwarded-host: evil\r\norigin: https://evil\r\n\
         referer: https://evil/\r\naccept-encoding: gzip\r\nx-api-key: client-key\r\nproxy-authorization: Basic x\r\n\
         x-envoy-original-path: /public\r\nx-envoy-upstream-rq-timeout-ms: 1\r\nx-http-method-override: DELETE\r\nx-real-ip: 1.1.1.1\r\n\
         forwarded: for=1.1.1.1\r\nx_custom: underscore\r\n\
         accept: application/json\r\naccept-language: en\r\ncache-control: no-cache\r\ncontent-type: text/plain\r\n\
         content-language: en\r\nexpires: 0\r\nlast-modified: x\r\npragma: no-cache\r\nuser-agent: e2e\r\n\
         content-length: 3\r\nconnection: close\r\n\r\nabc"
    );
    let r = fixture().envoy.send(&raw);
    assert_eq!(r.status, 200);
    let seen = upstream_a(&m);
    let mut names: Vec<&str> = seen.names();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "accept",
            "accept-language",
            "cache-control",
            "content-language",
            "content-length",
            "content-type",
            "expires",
            "host",
            "last-modified",
            "pragma",
            "user-agent"
        ],
        "upstream saw {:?}",
        seen.headers
    );
    assert_eq!(seen.body, b"abc");
}

#[test]
fn allowed_and_injected_headers() {
    let m = unique();
    let raw = format!(
        "GET /api/proxy/headers?{m} HTTP/1.1\r\nhost: g\r\nauthorization: Bearer {TOKEN}\r\nx-custom: one\r\nX-CUSTOM: two\r\n\
         x-api-key: client-key\r\nx-other: o\r\nx-other: p\r\nconnection: close\r\n\r\n"
    );
    assert_eq!(fixture().envoy.send(&raw).status, 200);
    let seen = upstream_a(&m);
    let custom = seen.all("x-custom").join(",");
    assert!(
        custom == "one,two" || custom == "one, two",
        "both values of an allowed header: {custom:?}"
    );
    assert_eq!(
        seen.all("x-api-key"),
        [API_KEY],
        "the configured value replaces the client's"
    );
    assert!(seen.all("x-other").is_empty());
}

#[test]
fn response_allow_list_keeps_two_set_cookie_lines_only_when_allowed() {
    let m = unique();
    let r = get_auth(&format!("/api/proxy/headers?{m}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.all("set-cookie"), ["a=1; Path=/", "b=2; Path=/"]);
    assert_eq!(r.header("x-upstream-internal"), None);
    assert_eq!(r.header("x-api-key"), None);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = get_auth(&format!("/api/proxy/simple?{}", unique()));
    assert!(r.all("set-cookie").is_empty());
    assert_eq!(r.header("location"), None);
    assert_eq!(r.header("server"), None);
    assert_eq!(r.header("x-upstream-internal"), None);
    assert_eq!(r.header("content-type"), Some("application/json"));
    // Deviation: no helmet headers are added by the filter.
    assert_eq!(r.header("content-security-policy"), None);
    assert_eq!(r.header("x-frame-options"), None);
}

#[test]
fn xfwd_headers_are_computed_by_the_gateway() {
    let m = unique();
    let r = get(
        &format!("/api/proxy/xfwd?{m}"),
        &[
            ("authorization", &bearer(TOKEN)),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil"),
        ],
    );
    assert_eq!(r.status, 200);
    let seen = upstream_a(&m);
    assert_eq!(seen.all("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen.all("x-forwarded-host"), ["gateway.test"]);
    assert_eq!(seen.all("x-forwarded-proto"), ["http"]);
    assert_eq!(seen.all("x-forwarded-port"), ["80"]);
    assert!(seen.all("x-backstage-proxy-cluster-xfwd").is_empty());
    // without xfwd none of them reach the upstream
    let m = unique();
    get(
        &format!("/api/proxy/simple?{m}"),
        &[
            ("authorization", &bearer(TOKEN)),
            ("x-forwarded-proto", "https"),
        ],
    );
    let seen = upstream_a(&m);
    assert!(
        seen.names().iter().all(|n| !n.starts_with("x-forwarded")),
        "{:?}",
        seen.headers
    );
}

#[test]
fn the_cluster_header_never_leaves_and_cannot_be_forged() {
    let f = fixture();
    let m = unique();
    let forged = cluster(f.b.port);
    assert_eq!(
        get(
            &format!("/api/proxy/simple?{m}"),
            &[
                ("authorization", &bearer(TOKEN)),
                ("x-backstage-proxy-cluster", &forged)
            ]
        )
        .status,
        200
    );
    let seen = upstream_a(&m);
    assert!(
        seen.names()
            .iter()
            .all(|n| !n.starts_with("x-backstage-proxy")),
        "{:?}",
        seen.headers
    );
    f.b.assert_never(&m);
    // outside the prefix a forged header selects nothing
    let m = unique();
    let r = get(
        &format!("/elsewhere?{m}"),
        &[("x-backstage-proxy-cluster", &forged)],
    );
    assert_eq!(r.status, 404);
    f.b.assert_never(&m);
}

#[test]
fn websocket_upgrades_only_for_ws_endpoints_after_credentials_deviation() {
    let f = fixture();
    let upgrade = |path: &str, token: Option<&str>| {
        let auth = token
            .map(|t| format!("authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        f.envoy.send(&format!(
            "GET {path} HTTP/1.1\r\nhost: g\r\n{auth}connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
        ))
    };
    let m = unique();
    assert_eq!(
        upgrade(&format!("/api/proxy/ws/chat?{m}"), None).status,
        401
    );
    f.a.assert_never(&m);
    let m = unique();
    assert_eq!(
        upgrade(&format!("/api/proxy/ws/chat?{m}"), Some(TOKEN)).status,
        101
    );
    let seen = upstream_a(&m);
    assert_eq!(seen.target, format!("/sock/chat?{m}"));
    assert_eq!(seen.header("upgrade"), Some("websocket"));
    assert!(seen.header("sec-websocket-key").is_some());
    // an endpoint without ws refuses the upgrade
    let m = unique();
    let r = upgrade(&format!("/api/proxy/simple?{m}"), Some(TOKEN));
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["name"], "NotAllowedError");
    f.a.assert_never(&m);
}

#[test]
fn upstream_failure_is_envoys_local_reply_deviation() {
    let r = get_auth("/api/proxy/down/x");
    assert_eq!(r.status, 503);
    // Envoy's own local reply, not Backstage's plain-text 502/504 nor a
    // JSON error of the filter's.
    assert!(
        r.text()
            .starts_with("upstream connect error or disconnect/reset before headers"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert!(r.header("www-authenticate").is_none());
}

// ---------------------------------------------------------------- §8

#[test]
fn outcomes_are_counted_and_denials_logged_without_secrets() {
    // Its own Envoy: counters are asserted exactly, with no other test's
    // traffic in them.
    let up = Upstream::start(&[]);
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/simple":{{"target":"http://127.0.0.1:{}","headers":{{"X-Api-Key":"${{API_KEY}}"}}}}}}}},
            "backend":{{"auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{TOKEN}","subject":"ci"}}}}]}}}}}}"#,
        up.port
    );
    let envoy = Envoy::start(
        EnvoyOptions::new(config)
            .cluster(cluster(up.port), up.port)
            .env("API_KEY", API_KEY),
    );
    let (n, v) = auth();
    assert_eq!(envoy.get("/api/proxy/simple/counted", &[]).status, 401);
    assert_eq!(envoy.get("/api/proxy/simple/ok", &[(n, &v)]).status, 200);
    assert_eq!(envoy.get("/api/proxy/simple/ok2", &[(n, &v)]).status, 200);
    let bad = [("authorization", "Bearer some-unknown-secret-value")];
    assert_eq!(envoy.get("/api/proxy/simple", &bad).status, 401);
    assert_eq!(envoy.get("/elsewhere", &[]).status, 404);
    let counter = |name: &str| envoy.counter(&format!("wasmcustom.backstage_proxy.{name}"));
    assert_eq!(counter("denied.missing_credentials"), 1);
    assert_eq!(counter("denied.illegal_token"), 1);
    assert_eq!(counter("allowed"), 2);
    assert_eq!(counter("passthrough"), 1);
    assert_eq!(counter("denied.unsafe_path"), 0);
    let log = envoy.log();
    assert!(
        log.contains("denied status=401 reason=missing_credentials endpoint=/simple"),
        "{log}"
    );
    for secret in [TOKEN, "some-unknown-secret-value", API_KEY] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
}
