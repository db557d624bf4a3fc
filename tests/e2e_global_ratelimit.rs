//! `gateway.rateLimitService` in real Envoy with two workers: the filter
//! hands the endpoint and the principal to Envoy's rate limit filter as
//! descriptors, and a recording stand-in for the rate limit service (the
//! real one, envoyproxy/ratelimit on Redis, cannot be installed here)
//! answers from the configuration `ratelimit-config` writes. Asserted: the
//! exact descriptors Envoy sends, none for endpoints without budgets or for
//! requests without valid credentials, a caller's forged descriptor headers
//! ignored and never forwarded, the refusal in Backstage's shape with
//! `retry-after`, counted and in Envoy's access log, and both failure
//! modes when the service is down.

use backstage_proxy_testkit as support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backstage_proxy_core::config;
use backstage_proxy_wasm_cli::ratelimit::service_config;
use serde_json::{json, Value};
use support::*;

const A: &str = "static-token-aaaaaaaa";
const B: &str = "static-token-bbbbbbbb";
const C: &str = "static-token-cccccccc";

fn gateway_config(upstream: u16, service: u16, deny: bool) -> String {
    let tokens = [(A, "a"), (B, "b%2"), (C, "c")]
        .iter()
        .map(|(t, s)| format!(r#"{{"type":"static","options":{{"token":"{t}","subject":"{s}"}}}}"#))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":"http://127.0.0.1:{upstream}/svc","/capped":"http://127.0.0.1:{upstream}/capped",
                                   "/free":"http://127.0.0.1:{upstream}/free"}}}},
            "backend":{{"auth":{{"externalAccess":[{tokens}]}}}},
            "gateway":{{"rateLimitService":{{"url":"http://127.0.0.1:{service}","failureModeDeny":{deny},"timeoutMs":2000}},
              "rateLimits":{{
                "/svc":{{"perPrincipal":{{"requests":3,"seconds":3600}}}},
                "/capped":{{"total":{{"requests":2,"seconds":3600}}}}}}}}}}"#
    )
}

/// Waits until the current hour has at least a minute left, so that no
/// window ends during the test.
fn away_from_the_hours_end() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let left = 3600 - now % 3600;
    if left < 60 {
        std::thread::sleep(Duration::from_secs(left + 1));
    }
}

fn start(
    stub_config: &Value,
    upstream: u16,
    deny: bool,
    log: &std::path::Path,
) -> (RateLimitStub, Envoy) {
    let stub = RateLimitStub::start(stub_config);
    let config = gateway_config(upstream, stub.port, deny);
    let mut opts = EnvoyOptions::new(config)
        .cluster(cluster_for_port(upstream), upstream)
        .cluster(cluster_for_port(stub.port), stub.port);
    opts.concurrency = 2;
    opts.access_log = Some(log.to_path_buf());
    (stub, Envoy::start(opts))
}

fn descriptors(endpoint: &str, principal: Option<&str>) -> Value {
    let e = json!(["backstage_proxy_endpoint", endpoint]);
    match principal {
        Some(p) => json!([[e], [e, ["backstage_proxy_principal", p]]]),
        None => json!([[e]]),
    }
}

#[test]
fn the_fleets_budgets_are_decided_by_the_rate_limit_service() {
    let up = Upstream::start(&[]);
    // The service's configuration, as an operator would deploy it.
    let plan = config::parse(gateway_config(up.port, 1, false).as_bytes(), &|_| None).unwrap();
    let stub_config = service_config(&plan).unwrap().unwrap();
    let logs = TempDir::new("global-rl");
    let log = logs.0.join("access.log");
    let (mut stub, envoy) = start(&stub_config, up.port, false, &log);
    away_from_the_hours_end();

    let send = |token: Option<&str>, path: &str, extra: &[(&str, &str)]| {
        let m = unique();
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(b) = &bearer {
            headers.push(("authorization", b));
        }
        let r = envoy.request("GET", &format!("/api/proxy{path}?{m}"), &headers);
        (r, m)
    };

    // A principal's budget: three, whichever worker takes the request.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (r, m) = send(Some(A), "/svc/items", &[]);
        statuses.push(r.status);
        if r.status == 429 {
            // Backstage's shape, the path as the client sent it.
            let body = r.json();
            assert_eq!(body["error"]["name"], "TooManyRequestsError", "{body}");
            assert_eq!(body["request"]["method"], "GET");
            assert_eq!(body["request"]["url"], format!("/api/proxy/svc/items?{m}"));
            assert_eq!(body["response"]["statusCode"], 429);
            assert!(r
                .header("content-type")
                .unwrap()
                .starts_with("application/json"));
            let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=3600).contains(&retry), "{retry}");
            // Envoy's own headers stay behind the allow-list.
            assert!(r.header("x-envoy-ratelimited").is_none());
            up.assert_never(&m);
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let calls = stub.calls();
    assert_eq!(calls.len(), 5);
    for c in &calls {
        assert_eq!(c["domain"], "backstage_proxy");
        assert_eq!(c["descriptors"], descriptors("/svc", Some("external|a")));
    }

    // Another principal has its own budget; its subject's '%' is encoded,
    // and a forged principal or endpoint header changes nothing.
    let forged = [
        ("x-backstage-proxy-ratelimit-principal", "a"),
        ("x-backstage-proxy-ratelimit-endpoint", "/capped"),
    ];
    let (r, m) = send(Some(B), "/svc/items", &forged);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.find(&m).unwrap();
    for name in seen.names() {
        assert!(
            !name.starts_with("x-backstage-proxy"),
            "{name} reached the upstream"
        );
    }
    assert_eq!(
        stub.calls().last().unwrap()["descriptors"],
        descriptors("/svc", Some("external|b%252"))
    );

    // An endpoint without budgets: the service is never asked, even when
    // the caller names another endpoint's descriptors.
    let before = stub.calls().len();
    for _ in 0..3 {
        assert_eq!(send(Some(C), "/free/x", &forged).0.status, 200);
    }
    // Requests without valid credentials are refused before the service
    // and cost nobody's budget.
    for _ in 0..10 {
        assert_eq!(send(None, "/svc/items", &forged).0.status, 401);
        assert_eq!(
            send(Some("static-token-forged00"), "/svc/items", &[])
                .0
                .status,
            401
        );
    }
    assert_eq!(stub.calls().len(), before);

    // A total: two for everyone together.
    let ok: Vec<u16> = [A, B, C]
        .iter()
        .map(|t| send(Some(t), "/capped/x", &[]).0.status)
        .collect();
    assert_eq!(ok, [200, 200, 429]);
    assert_eq!(
        stub.calls().last().unwrap()["descriptors"],
        descriptors("/capped", Some("external|c"))
    );

    // Counted, and in Envoy's own access log with the principal.
    assert_eq!(
        envoy.counter("wasmcustom.backstage_proxy.denied.rate_limited"),
        3
    );
    assert_eq!(
        envoy.counter("wasmcustom.backstage_proxy.endpoint.svc.denied.rate_limited"),
        2
    );
    assert_eq!(
        envoy.counter("wasmcustom.backstage_proxy.endpoint.capped.denied.rate_limited"),
        1
    );
    // Envoy's own, under the upstream's cluster.
    // Under its stats name: render writes a cluster name's dots as `_`
    // (alt_stat_name), so that Prometheus labels carry the whole name.
    let cluster = format!(
        "cluster.{}.ratelimit",
        cluster_for_port(up.port).replace('.', "_")
    );
    assert_eq!(envoy.counter(&format!("{cluster}.over_limit")), 3);
    assert_eq!(envoy.counter(&format!("{cluster}.ok")), 3 + 1 + 2);
    let text = wait_for_lines(&log, 5 + 1 + 3 + 20 + 3);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let limited = lines
        .iter()
        .filter(|l| l["decision"] == "rate_limited" && l["status"] == 429)
        .map(|l| {
            (
                l["principal"].as_str().unwrap(),
                l["endpoint"].as_str().unwrap(),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(limited.len(), 3, "{text}");
    assert!(
        limited.contains(&("a", "/svc")) && limited.contains(&("c", "/capped")),
        "{text}"
    );

    // The service down: Envoy's default, the request goes through.
    stub.stop();
    let (r, _) = send(Some(C), "/svc/items", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn with_failure_mode_deny_an_unreachable_service_refuses() {
    let up = Upstream::start(&[]);
    let plan = config::parse(gateway_config(up.port, 1, true).as_bytes(), &|_| None).unwrap();
    let logs = TempDir::new("global-rl-deny");
    let log = logs.0.join("access.log");
    let (mut stub, envoy) = start(
        &service_config(&plan).unwrap().unwrap(),
        up.port,
        true,
        &log,
    );
    stub.stop();
    let m = unique();
    let r = envoy.request(
        "GET",
        &format!("/api/proxy/svc/items?{m}"),
        &[("authorization", &format!("Bearer {A}"))],
    );
    assert_eq!(r.status, 503, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"]["name"], "ServiceUnavailableError", "{body}");
    assert_eq!(body["request"]["url"], format!("/api/proxy/svc/items?{m}"));
    assert!(r.header("retry-after").is_none());
    up.assert_never(&m);
    // An endpoint without budgets does not depend on the service.
    assert_eq!(
        envoy
            .request(
                "GET",
                "/api/proxy/free/x",
                &[("authorization", &format!("Bearer {A}"))]
            )
            .status,
        200
    );
    assert_eq!(
        envoy.counter("wasmcustom.backstage_proxy.denied.rate_limit_service_error"),
        1
    );
    let text = wait_for_lines(&log, 2);
    assert!(
        text.contains(r#""decision":"rate_limit_service_error""#),
        "{text}"
    );
}
