//! `docs/contract.md#observability`: counters and the log.

use backstage_proxy_testkit::*;

use crate::fixture::*;

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
            .cluster(cluster_for_port(up.port), up.port)
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
