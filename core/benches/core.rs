//! Criterion microbenchmarks of the core, natively: one full decision with
//! a cached token, header filtering with 30 headers, route match among 1000
//! endpoints, and a cold verification per algorithm.

use std::hint::black_box;

use backstage_proxy_core::auth::jwks::set::parse_key_set;
use backstage_proxy_core::auth::{authenticate, AuthState, Outcome};
use backstage_proxy_core::config::{parse, Plan};
use backstage_proxy_core::decision::{decide, header_view, Decision, Request};
use backstage_proxy_core::{headers, routing};
use backstage_proxy_mint::*;
use criterion::{criterion_group, criterion_main, Criterion};

const NOW: u64 = 1_800_000_000;
const AUTH_URL: &str = "http://backstage:7007/api/auth/.well-known/jwks.json";

fn plan(cache: usize) -> Plan {
    plan_with(cache, "")
}

/// `gateway_extra`: more keys of the `gateway` section, each followed by a
/// comma.
fn plan_with(cache: usize, gateway_extra: &str) -> Plan {
    let cfg = format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":{{"target":"http://upstream/base","allowedHeaders":["x-a","x-b"],"headers":{{"X-Api-Key":"k"}}}}}}}},
            "backend":{{"baseUrl":"http://backstage:7007","auth":{{"keys":[{{"secret":"c2VjcmV0LXNlY3JldC1zZWNyZXQ"}}]}}}},"gateway":{{{gateway_extra}"tokenCacheSize":{cache}}}}}"#
    );
    parse(cfg.as_bytes(), &|_| None).unwrap()
}

fn loaded_state(p: &Plan, keys: &[&dyn Key]) -> AuthState {
    let mut state = AuthState::new(p);
    let src = backstage_proxy_core::auth::jwks::store::Source::user(p).unwrap();
    let _ = state.keys.lookup(&src, 0);
    state.keys.start(AUTH_URL, 0);
    state.keys.succeeded(
        AUTH_URL,
        parse_key_set(key_set(keys).as_bytes()).unwrap(),
        NOW * 1000,
    );
    state
}

fn decision_cached(c: &mut Criterion) {
    decision_cached_with(c, "decision, cached ES256 user token", "");
    decision_cached_with(
        c,
        "decision, cached ES256 user token and cached permission",
        r#""access":{"/svc":{"permission":"proxy.endpoint.svc"}},"permissionCacheSeconds":60,"#,
    );
}

fn decision_cached_with(c: &mut Criterion, name: &str, gateway_extra: &str) {
    let p = plan_with(1024, gateway_extra);
    let es = Es256::new(1, "es");
    let mut state = loaded_state(&p, &[&es]);
    let token = user_token(&es, "user:default/jane", NOW, NOW + 3600);
    let mut hdrs: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/api/proxy/svc/a/b?c=d".to_vec()),
        (":authority".into(), b"gw.example".to_vec()),
        (
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        ),
        ("accept".into(), b"application/json".to_vec()),
        ("user-agent".into(), b"bench".to_vec()),
        ("cookie".into(), b"a=b".to_vec()),
        ("x-forwarded-proto".into(), b"http".to_vec()),
    ];
    hdrs.shrink_to_fit();
    let req = Request {
        method: "GET",
        path: Some("/api/proxy/svc/a/b?c=d"),
        authority: "gw.example",
        downstream_tls: false,
        headers: &header_view(&hdrs),
        client_address: None,
        now_ms: NOW * 1000,
    };
    if let Decision::NeedPermission { question, .. } = decide(&p, &mut state, &req) {
        state.permissions.insert(
            question.key,
            backstage_proxy_core::permission::Answer::Allow,
            NOW * 1000,
        );
    }
    assert!(matches!(decide(&p, &mut state, &req), Decision::Forward(_)));
    c.bench_function(name, |b| {
        b.iter(|| black_box(decide(&p, &mut state, black_box(&req))))
    });
}

fn header_filtering(c: &mut Criterion) {
    let p = plan(1024);
    let ep = &p.endpoints[0];
    let names: Vec<String> = (0..30)
        .map(|i| {
            if i % 3 == 0 {
                format!("x-custom-{i}")
            } else if i % 3 == 1 {
                "accept".to_string()
            } else {
                "x-a".to_string()
            }
        })
        .collect();
    c.bench_function("request header filtering, 30 headers", |b| {
        b.iter(|| {
            black_box(headers::request_removals(
                ep,
                names.iter().map(String::as_str),
            ))
        })
    });
    c.bench_function("response header filtering, 30 headers", |b| {
        b.iter(|| {
            black_box(headers::response_removals(
                ep,
                names.iter().map(String::as_str),
            ))
        })
    });
}

fn route_match(c: &mut Criterion) {
    let endpoints: Vec<String> = (0..1000)
        .map(|i| format!(r#""/team-{i}/service-{i}":"http://t{i}/base""#))
        .collect();
    let cfg = format!(r#"{{"proxy":{{"endpoints":{{{}}}}}}}"#, endpoints.join(","));
    let p = parse(cfg.as_bytes(), &|_| None).unwrap();
    assert_eq!(p.endpoints.len(), 1000);
    c.bench_function("route match among 1000 endpoints", |b| {
        b.iter(|| {
            black_box(routing::match_endpoint(
                &p,
                black_box("/team-777/service-777/some/deep/path"),
            ))
        })
    });
}

/// Configuration load (parse, validate, compile the plan) as the number of
/// endpoints grows: what `on_configure` costs before the VM serves.
fn config_load(c: &mut Criterion) {
    for n in [10usize, 100, 1000, 10_000] {
        let endpoints: Vec<String> = (0..n)
            .map(|i| format!(r#""/team-{i}/service":{{"target":"https://t{i}.example.com/base","allowedMethods":["GET","POST"],"headers":{{"X-Key":"k"}}}}"#))
            .collect();
        let cfg = format!(r#"{{"proxy":{{"endpoints":{{{}}}}}}}"#, endpoints.join(","));
        assert_eq!(parse(cfg.as_bytes(), &|_| None).unwrap().endpoints.len(), n);
        c.bench_function(&format!("config load, {n} endpoints"), |b| {
            b.iter(|| {
                black_box(parse(black_box(cfg.as_bytes()), &|_| None).map(|p| p.endpoints.len()))
            })
        });
    }
}

fn cold_verification(c: &mut Criterion) {
    let p = plan(0);
    let es = Es256::new(1, "es");
    let ed = Ed::new(2, "ed");
    let rs = Rsa::test_key("rs");
    let ps = Rsa::from_pem(backstage_proxy_mint::RSA2048_PEM, "ps", true);
    let mut state = loaded_state(&p, &[&es, &ed, &rs, &ps]);
    let legacy = hs256_raw(
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"sub":"backstage-server","exp":{}}}"#, NOW + 3600),
        b"secret-secret-secret",
    );
    let cases: Vec<(&str, String)> = vec![
        ("cold verification HS256 (legacy)", legacy),
        (
            "cold verification ES256",
            user_token(&es, "u", NOW, NOW + 3600),
        ),
        (
            "cold verification RS256",
            user_token(&rs, "u", NOW, NOW + 3600),
        ),
        (
            "cold verification PS256",
            user_token(&ps, "u", NOW, NOW + 3600),
        ),
        (
            "cold verification EdDSA",
            user_token(&ed, "u", NOW, NOW + 3600),
        ),
    ];
    for (name, token) in &cases {
        assert!(
            matches!(
                authenticate(&p, &mut state, token, NOW * 1000),
                Outcome::Authenticated(..)
            ),
            "{name}"
        );
        c.bench_function(name, |b| {
            b.iter(|| black_box(authenticate(&p, &mut state, black_box(token), NOW * 1000)))
        });
    }
}

/// Issue: a 56 KB path of `/a` segments cost 75 times a flat one before
/// any credential check. Every shape below should cost about what its size
/// costs: compare each adversarial row with the plain row of the same size.
fn adversarial_shapes(c: &mut Criterion) {
    let cfg = r#"{"proxy":{"endpoints":{"/svc":{"target":"http://upstream/base","allowedHeaders":["x-a"]},"/svc/deeper/still":"http://u2"}},
        "backend":{"auth":{"externalAccess":[{"type":"static","options":{"token":"static-token-0123456789","subject":"ci"}}]}}}"#;
    let p = parse(cfg.as_bytes(), &|_| None).unwrap();
    let mut state = AuthState::new(&p);
    let size = 56 * 1024;
    let flat = format!("/api/proxy/svc/{}", "a".repeat(size));
    let segmented = format!("/api/proxy/svc{}", "/a".repeat(size / 2));
    let dotted = format!("/api/proxy/svc{}", "/a%2Fb".repeat(size / 6));
    let long_token = format!("Bearer {}", "A".repeat(15 * 1024));
    let jwt_like = format!("Bearer e30.{}.x", "e".repeat(15 * 1024));
    let header = |n: &str, v: &str| (n.to_string(), v.as_bytes().to_vec());
    let few: Headers = vec![
        header("authorization", "Bearer static-token-0123456789"),
        header("accept", "application/json"),
    ];
    let mut many = few.clone();
    for i in 0..100 {
        many.push(header(&format!("x-h-{i}"), &"v".repeat(512)));
    }
    type Headers = Vec<(String, Vec<u8>)>;
    let cases: Vec<(&str, &str, Headers)> = vec![
        ("plain request", "/api/proxy/svc/a/b?c=d", few.clone()),
        ("56 KB flat path", &flat, few.clone()),
        ("56 KB path of /a segments", &segmented, few.clone()),
        ("56 KB path of encoded slashes", &dotted, few.clone()),
        ("100 headers of 512 B", "/api/proxy/svc/a", many),
        (
            "15 KB opaque token",
            "/api/proxy/svc/a",
            vec![header("authorization", &long_token)],
        ),
        (
            "15 KB JWT-shaped token",
            "/api/proxy/svc/a",
            vec![header("authorization", &jwt_like)],
        ),
    ];
    for (name, path, headers) in &cases {
        let req = Request {
            method: "GET",
            path: Some(path),
            authority: "gw.example",
            downstream_tls: false,
            headers: &header_view(headers),
            client_address: None,
            now_ms: NOW * 1000,
        };
        c.bench_function(&format!("adversarial: {name}"), |b| {
            b.iter(|| black_box(decide(&p, &mut state, black_box(&req))))
        });
    }
}

criterion_group!(
    benches,
    adversarial_shapes,
    decision_cached,
    header_filtering,
    route_match,
    config_load,
    cold_verification
);
criterion_main!(benches);
