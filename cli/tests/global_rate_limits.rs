//! Global rate limits (`gateway.rateLimitService`) for a fleet: the
//! gateway `render` writes, validated by Envoy, and the rate limit
//! service's configuration `ratelimit-config` writes, with the same
//! descriptors.

mod common;

use backstage_proxy_testkit::TempDir;
use common::*;

/// `gateway.rateLimitService` for a fleet: the gateway Envoy loads, and
/// the rate limit service's configuration with the same descriptors.
const FLEET: &str = r#"
backend:
  baseUrl: http://localhost:7007
proxy:
  endpoints:
    /pagerduty:
      target: https://api.pagerduty.com
      headers:
        Authorization: Token token=${PAGERDUTY_TOKEN}
    /github: https://api.github.com
gateway:
  rateLimitService:
    url: https://ratelimit.ratelimit.svc.cluster.local:8081
    failureModeDeny: true
  rateLimits:
    /pagerduty:
      perPrincipal: { requests: 100, seconds: 60 }
      total: { requests: 1000, seconds: 3600 }
"#;

#[test]
fn global_rate_limits_render_for_envoy_and_the_service() {
    let dir = TempDir::new("render-fleet");
    let input = write(&dir.0, "app-config.yaml", FLEET);
    let output = dir.0.join("envoy.yaml").display().to_string();
    let env = [("PAGERDUTY_TOKEN", "pd-secret")];
    let o = render_to(&input, &output, &env);
    assert!(o.status.success(), "{}", stderr(&o));
    envoy_validate(&output, &env);
    let v: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    assert_envoy_rate_limits(&v);

    // The service's side.
    let o = run_cli(&["ratelimit-config", &input], &env, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let service: serde_json::Value = serde_saphyr::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        service,
        serde_json::json!({ "domain": "backstage_proxy", "descriptors": [{
            "key": "backstage_proxy_endpoint", "value": "/pagerduty",
            "rate_limit": { "unit": "hour", "requests_per_unit": 1000 },
            "descriptors": [{ "key": "backstage_proxy_principal",
                              "rate_limit": { "unit": "minute", "requests_per_unit": 100 } }] }] })
    );

    // Without the service there is nothing to configure; a window the
    // service cannot count is refused by `check` with its path.
    let local = write(&dir.0, "local.yaml", &FLEET.replace("  rateLimitService:\n    url: https://ratelimit.ratelimit.svc.cluster.local:8081\n    failureModeDeny: true\n", ""));
    let o = run_cli(&["ratelimit-config", &local], &env, None);
    assert!(
        !o.status.success() && stderr(&o).contains("gateway.rateLimitService is not set"),
        "{}",
        stderr(&o)
    );
    let odd = write(
        &dir.0,
        "odd.yaml",
        &FLEET.replace("seconds: 3600", "seconds: 120"),
    );
    let o = run_cli(&["check", &odd], &env, None);
    assert!(
        !o.status.success() && stderr(&o).contains("gateway.rateLimits./pagerduty.total.seconds"),
        "{}",
        stderr(&o)
    );
}

/// The gateway Envoy loads: the rate limit filter between the Wasm filter
/// and the router, its service's cluster (HTTP/2, TLS), descriptors on the
/// routes to an endpoint with budgets, Backstage's body for its replies.
fn assert_envoy_rate_limits(v: &serde_json::Value) {
    let hcm =
        &v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let filters: Vec<&str> = hcm["http_filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    // The rate limit filter reads what the Wasm filter set.
    assert_eq!(
        filters,
        [
            "envoy.filters.http.wasm",
            "envoy.filters.http.ratelimit",
            "envoy.filters.http.router"
        ]
    );
    let rl = &hcm["http_filters"][1]["typed_config"];
    assert_eq!(rl["domain"], "backstage_proxy");
    assert_eq!(rl["failure_mode_deny"], true);
    let cluster = rl["rate_limit_service"]["grpc_service"]["envoy_grpc"]["cluster_name"]
        .as_str()
        .unwrap();
    let c = v["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == cluster)
        .unwrap();
    assert!(c["typed_extension_protocol_options"]
        .to_string()
        .contains("http2_protocol_options"));
    assert_eq!(
        c["transport_socket"]["typed_config"]["sni"],
        "ratelimit.ratelimit.svc.cluster.local"
    );
    // Descriptors only where an endpoint has budgets; the headers never
    // reach any upstream.
    for r in hcm["route_config"]["virtual_hosts"][0]["routes"]
        .as_array()
        .unwrap()
    {
        if r["direct_response"].is_object() {
            continue;
        }
        let removed = r["request_headers_to_remove"].to_string();
        assert!(
            removed.contains("x-backstage-proxy-ratelimit-endpoint")
                && removed.contains("x-backstage-proxy-ratelimit-principal"),
            "{r}"
        );
        let limited = r["route"]["cluster"] == "https_api.pagerduty.com_443";
        assert_eq!(r["route"]["rate_limits"].is_array(), limited, "{r}");
    }
    assert_eq!(
        hcm["local_reply_config"]["mappers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
