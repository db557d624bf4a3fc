//! What Prometheus scrapes from a real gateway (`docs/operations.md#metrics`):
//! after requests that take each outcome, `/stats/prometheus` has the
//! filter's counters with their dimensions as labels (endpoint names with
//! dots, dashes, underscores, nested paths and names that look like
//! outcomes), whole cluster names, and every metric, label and label value
//! that a query of the dashboard or an alert reads
//! (`docs/operations.md#dashboard-and-alerts`). A renamed metric or label
//! fails here.

use backstage_proxy_testkit as support;

use support::monitoring::*;
use support::*;

const TOKEN: &str = "metrics-static-token-0123456789";

/// Endpoint keys and the `proxy_endpoint` label each must get.
const ENDPOINTS: [(&str, &str); 7] = [
    ("/api.v1/x-y_z", "api_v1_x-y_z"),
    ("/a/b.c", "a_b_c"),
    ("/worker_1", "worker_1"),
    ("/x_rq_200", "x_rq_200"),
    ("/denied", "denied"),
    ("/allowed", "allowed"),
    ("/limited", "limited"),
];

fn gateway(up: u16, down: u16, keys: u16) -> Envoy {
    let mut endpoints: Vec<String> = ENDPOINTS
        .iter()
        .enumerate()
        // targets apart: none lies under the rate-limited endpoint's
        .map(|(i, (k, _))| format!(r#""{k}":"http://127.0.0.1:{up}/t{i}""#))
        .collect();
    endpoints.push(format!(r#""/down":"http://127.0.0.1:{down}""#));
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{{}}}}},
            "backend":{{"cors":{{"origin":"https://app.example"}},"auth":{{"externalAccess":[
              {{"type":"static","options":{{"token":"{TOKEN}","subject":"ci"}}}},
              {{"type":"jwks","options":{{"url":"http://127.0.0.1:{keys}/jwks","issuer":"https://idp.example","audience":"edge"}}}}]}}}},
            "gateway":{{"jwksFetchTimeoutMs":500,"rateLimits":{{"/limited":{{"total":{{"requests":1,"seconds":60}}}}}}}}}}"#,
        endpoints.join(",")
    );
    Envoy::start(
        EnvoyOptions::new(config)
            .cluster(cluster_for_port(up), up)
            .cluster(cluster_for_port(down), down)
            .cluster(cluster_for_port(keys), keys),
    )
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    p
}

/// Requests that take each outcome the queries read.
fn exercise(envoy: &Envoy) {
    let auth = format!("Bearer {TOKEN}");
    let ok = [("authorization", auth.as_str())];
    for (key, _) in ENDPOINTS {
        assert_eq!(
            envoy.get(&format!("/api/proxy{key}/x"), &ok).status,
            200,
            "{key}"
        );
        assert_eq!(
            envoy.get(&format!("/api/proxy{key}/x"), &[]).status,
            401,
            "{key}"
        );
    }
    let junk = [("authorization", "Bearer not-a-known-token")];
    assert_eq!(envoy.get("/api/proxy/denied/x", &junk).status, 401);
    assert_eq!(envoy.get("/api/proxy/limited/x", &ok).status, 429);
    // the upstream is down: Envoy's 503, a 5xx of that cluster
    assert_eq!(envoy.get("/api/proxy/down/x", &ok).status, 503);
    assert_eq!(envoy.get("/elsewhere", &[]).status, 404);
    assert_eq!(
        envoy
            .get("/api/proxy/.backstage/auth/v1/jwks.json", &[])
            .status,
        200
    );
    let preflight = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "GET"),
    ];
    assert_eq!(
        envoy
            .request("OPTIONS", "/api/proxy/allowed/x", &preflight)
            .status,
        204
    );
    // a token for the key set nobody serves: a failed fetch
    let jwt = hs256(
        r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#,
        &format!(
            r#"{{"iss":"https://idp.example","aud":"edge","sub":"x","exp":{}}}"#,
            now() + 600
        ),
        b"unused",
    );
    let bearer = format!("Bearer {jwt}");
    let status = envoy
        .get("/api/proxy/allowed/x", &[("authorization", &bearer)])
        .status;
    assert!(status == 503 || status == 401, "{status}");
}

#[test]
fn prometheus_gets_labels_and_every_metric_the_dashboard_and_alerts_read() {
    let up = Upstream::start(&[]);
    let down = closed_port();
    let envoy = gateway(up.port, down, closed_port());
    exercise(&envoy);
    let (status, text) = envoy.admin("/stats/prometheus");
    assert_eq!(status, 200);
    let page = parse_exposition(&text);

    // The filter's dimensions are labels, exactly.
    let endpoint = &page["backstage_proxy_endpoint"];
    for (key, label) in ENDPOINTS {
        assert!(
            endpoint["proxy_endpoint"].contains(label),
            "{key}: {:?}",
            endpoint["proxy_endpoint"]
        );
        for outcome in ["allowed", "denied"] {
            let series = format!(
                r#"backstage_proxy_endpoint{{proxy_endpoint="{label}",outcome="{outcome}""#
            );
            assert!(text.contains(&series), "{series} missing:\n{text}");
        }
    }
    assert!(text.contains(
        r#"backstage_proxy_endpoint{proxy_endpoint="limited",outcome="denied",reason="rate_limited"} 1"#
    ));
    assert!(
        text.contains(r#"backstage_proxy_denied{reason="missing_credentials"} 7"#),
        "{text}"
    );
    assert!(
        text.contains(r#"backstage_proxy_passthrough{} 1"#)
            || text.contains("backstage_proxy_passthrough 1")
    );
    let fetch = &page["backstage_proxy_keyset_fetch"]["result"];
    assert_eq!(
        fetch.iter().map(String::as_str).collect::<Vec<_>>(),
        ["failure", "rationed", "success"]
    );
    match artifact() {
        Artifact::Wasm => assert!(page["backstage_proxy_vm_memory_bytes"]["vm"]
            .iter()
            .all(|v| v.starts_with('w'))),
        // No VM, no VM memory gauge (docs/native.md#metrics).
        Artifact::Native => assert!(!page.contains_key("backstage_proxy_vm_memory_bytes")),
    }
    // No name keeps a dimension: no per-endpoint, per-reason or per-cluster names.
    for name in page.keys() {
        for part in [
            "backstage_proxy_endpoint_",
            "backstage_proxy_denied_",
            "_0_0_1_",
        ] {
            assert!(!name.contains(part), "{name}: a dimension left in the name");
        }
    }
    let down_cluster = cluster_for_port(down).replace('.', "_");
    let series = format!(
        r#"envoy_cluster_upstream_rq_xx{{envoy_response_code_class="5",envoy_cluster_name="{down_cluster}"}} 1"#
    );
    assert!(text.contains(&series), "{series} missing");

    // Every query of the dashboard and every alert reads what is there.
    let mut problems = Vec::new();
    let queries = dashboard_queries().into_iter().chain(
        alert_exprs()
            .into_iter()
            .map(|(n, e)| (format!("alert {n}"), e)),
    );
    for (place, q) in queries {
        for p in missing(&q, &page) {
            problems.push(format!("{place}: {p}"));
        }
    }
    if artifact() == Artifact::Native {
        // The Wasm VM's own panels and alert (memory, active VMs, reloads)
        // have nothing to read under the native module, which has no VM
        // (docs/native.md#metrics); every other query must still read.
        problems.retain(|p| {
            !(p.contains("vm_memory_bytes")
                || p.contains("envoy_wasm_")
                || p.contains("grouping label vm "))
        });
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check itself: a renamed metric, label or value in a query is caught.
#[test]
fn a_query_reading_what_the_gateway_does_not_write_is_caught() {
    let page = parse_exposition(
        "backstage_proxy_denied{reason=\"rate_limited\"} 1\nbackstage_proxy_allowed{} 2\n",
    );
    let ok = r#"sum without (reason) (rate(backstage_proxy_denied{reason=~"rate_limited",instance=~".*"}[5m])) + on (job, instance) rate(backstage_proxy_allowed[5m])"#;
    assert_eq!(missing(ok, &page), Vec::<String>::new());
    for bad in [
        "rate(backstage_proxy_denied_rate_limited[5m])",
        r#"rate(backstage_proxy_denied{cause="rate_limited"}[5m])"#,
        r#"rate(backstage_proxy_denied{reason="ratelimited"}[5m])"#,
        r#"rate(backstage_proxy_denied{reason!~"rate_limited|key_set_gone"}[5m])"#,
        "sum by (endpoint) (rate(backstage_proxy_denied[5m]))",
        "sum(rate(backstage_proxy_denied[5m]",
    ] {
        assert!(!missing(bad, &page).is_empty(), "{bad} passed");
    }
}
