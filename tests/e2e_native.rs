//! The native dynamic module (`make native`, `docs/native.md`) in real
//! Envoy, rendered as the Wasm filter's gateway with the filter swapped
//! for `envoy.filters.http.dynamic_modules` (testkit's
//! `EnvoyOptions::native`): the same configuration text, the same
//! answers. Needs `build/libbackstage_proxy.so` (`make native`) and, for
//! the panic test, `make native-panic`.

use backstage_proxy_testkit as support;

use std::thread;
use std::time::{Duration, Instant};

use support::*;

const TOKEN: &str = "native-static-token-0123456789";
const API_KEY: &str = "native-api-key-from-env-42";

fn config(up: u16) -> String {
    format!(
        r#"{{"proxy":{{"endpoints":{{
              "/svc":{{"target":"http://127.0.0.1:{up}/base","allowedMethods":["GET","POST"],
                       "allowedHeaders":["X-Custom"],"headers":{{"X-Api-Key":"${{API_KEY}}"}}}},
              "/capped":"http://127.0.0.1:{up}/capped"}}}},
            "backend":{{"auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{TOKEN}","subject":"ci"}}}}]}}}},
            "gateway":{{"rateLimits":{{"/capped":{{"total":{{"requests":2,"seconds":600}}}}}}}}}}"#
    )
}

fn gateway(up: &Upstream, so: std::path::PathBuf, log: Option<std::path::PathBuf>) -> Envoy {
    let mut opts = EnvoyOptions::new(config(up.port))
        .cluster(cluster_for_port(up.port), up.port)
        .env("API_KEY", API_KEY)
        .native(so);
    opts.access_log = log;
    Envoy::start(opts)
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

#[test]
fn the_native_module_decides_as_the_filter_does() {
    let up = Upstream::start(&[("x-custom", "kept"), ("x-internal", "dropped")]);
    let dir = TempDir::new("native-log");
    let log = dir.0.join("access.log");
    let envoy = gateway(&up, native_path(), Some(log.clone()));
    let auth = bearer();

    // missing credentials: Backstage's 401, never forwarded
    let m = unique();
    let r = envoy.get(&format!("/api/proxy/svc/x?{m}"), &[]);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let body = r.json();
    assert_eq!(body["error"]["name"], "AuthenticationError");
    assert_eq!(body["request"]["url"], format!("/api/proxy/svc/x?{m}"));
    up.assert_never(&m);

    // the static token: forwarded to the rewritten path, without the
    // credentials, with the injected header from the environment and only
    // the allowed request headers; the response keeps only allowed ones
    let m = unique();
    let r = envoy.get(
        &format!("/api/proxy/svc/x?{m}"),
        &[
            ("authorization", &auth),
            ("x-custom", "in"),
            ("x-not-allowed", "in"),
        ],
    );
    assert_eq!(r.status, 200, "{}", envoy.log());
    let seen = up.find(&m).expect("forwarded");
    assert_eq!(seen.target, format!("/base/x?{m}"));
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.header("x-api-key"), Some(API_KEY));
    assert_eq!(seen.header("x-custom"), Some("in"));
    assert_eq!(seen.header("x-not-allowed"), None);
    assert_eq!(r.header("x-custom"), Some("kept"));
    assert_eq!(r.header("x-internal"), None);

    // a client cannot inject the value the gateway sets
    let m = unique();
    let r = envoy.get(
        &format!("/api/proxy/svc/x?{m}"),
        &[("authorization", &auth), ("x-api-key", "forged")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(up.find(&m).unwrap().all("x-api-key"), vec![API_KEY]);

    // a method the endpoint does not allow: 405 with Allow
    let m = unique();
    let r = envoy.request(
        "DELETE",
        &format!("/api/proxy/svc/x?{m}"),
        &[("authorization", &auth)],
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    up.assert_never(&m);

    // no endpoint: 404
    let m = unique();
    let r = envoy.get(
        &format!("/api/proxy/nowhere?{m}"),
        &[("authorization", &auth)],
    );
    assert_eq!(r.status, 404);
    up.assert_never(&m);

    // unsafe paths: 400, never forwarded
    for path in [
        "/api/proxy/svc/../x",
        "/api/proxy/svc/%2e%2e/x",
        "/api/proxy/svc/%zz",
    ] {
        let m = unique();
        let r = envoy.get(&format!("{path}?{m}"), &[("authorization", &auth)]);
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.json()["error"]["name"], "InputError");
        up.assert_never(&m);
    }

    // the local budget: 2 requests, then 429 reaching nobody (shared by
    // every worker: one process-wide store)
    for _ in 0..2 {
        let m = unique();
        let r = envoy.get(
            &format!("/api/proxy/capped/x?{m}"),
            &[("authorization", &auth)],
        );
        assert_eq!(r.status, 200);
    }
    let m = unique();
    let r = envoy.get(
        &format!("/api/proxy/capped/x?{m}"),
        &[("authorization", &auth)],
    );
    assert_eq!(r.status, 429);
    up.assert_never(&m);

    // the audit trail: the access log reads the module's filter state
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.matches('\n').count() >= 10 || Instant::now() > deadline {
            break text;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let entries: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        entries.iter().any(|e| e["principal"] == "ci"
            && e["endpoint"] == "/svc"
            && e["decision"] == "allowed"),
        "{lines}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["decision"] == "missing_credentials" && e["principal"] == "-"),
        "{lines}"
    );
    assert!(
        entries.iter().any(|e| e["decision"] == "rate_limited"),
        "{lines}"
    );
    assert!(!lines.contains(TOKEN) && !lines.contains(API_KEY));
    assert!(!envoy.log().contains(TOKEN) && !envoy.log().contains(API_KEY));
}

#[test]
fn a_token_needing_a_key_set_is_refused_until_key_sets_are_fetched() {
    // Key-set fetching is not in the native module yet: a user token
    // (which needs Backstage's key set) is refused, never admitted.
    let up = Upstream::start(&[]);
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":"http://127.0.0.1:{}/svc"}}}},
            "backend":{{"baseUrl":"http://127.0.0.1:9"}}}}"#,
        up.port
    );
    let envoy = Envoy::start(
        EnvoyOptions::new(config)
            .cluster(cluster_for_port(up.port), up.port)
            .native(native_path()),
    );
    let key = support::mint::Es256::new(7, "native-kid");
    let token = support::mint::user_token(&key, "user:default/alice", now(), now() + 600);
    let m = unique();
    let r = envoy.get(
        &format!("/api/proxy/svc/x?{m}"),
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(r.status, 401);
    up.assert_never(&m);
}

#[test]
fn an_invalid_configuration_is_refused_with_its_errors_logged() {
    let opts =
        EnvoyOptions::new(r#"{"proxy":{"endpoints":{"/svc":"not a url"}}}"#).native(native_path());
    let Err((log, _)) = Envoy::try_start(&opts) else {
        panic!("Envoy accepted an invalid configuration");
    };
    assert!(
        log.contains("backstage-proxy-native: invalid configuration"),
        "{log}"
    );
    assert!(log.contains("proxy.endpoints"), "{log}");
}

#[test]
fn a_panic_in_the_module_fails_closed_and_envoy_keeps_serving() {
    let up = Upstream::start(&[]);
    let envoy = gateway(&up, native_panic_path(), None);
    let auth = bearer();
    let m = unique();
    let r = envoy.get(
        &format!("/api/proxy/svc/x?{m}"),
        &[
            ("authorization", &auth),
            ("x-backstage-proxy-test-panic", "1"),
        ],
    );
    assert_eq!(r.status, 500);
    up.assert_never(&m);
    let log = envoy.log();
    assert!(log.contains("panic caught in request_headers"), "{log}");
    // The forced panic's message quotes the request's credentials; Rust's
    // default panic hook would print it to Envoy's standard error (this
    // log). The module's hook prints where only. (tests/log_scan.rs also
    // scans this log, with the token recorded as a secret.)
    assert!(
        log.contains("panic at") && log.contains("message withheld"),
        "{log}"
    );
    assert!(
        !log.contains(TOKEN),
        "the panic message reached Envoy's log"
    );
    // Envoy and the module go on deciding
    for _ in 0..3 {
        let m = unique();
        let r = envoy.get(
            &format!("/api/proxy/svc/x?{m}"),
            &[("authorization", &auth)],
        );
        assert_eq!(r.status, 200);
        assert!(up.find(&m).is_some());
        let m = unique();
        assert_eq!(envoy.get(&format!("/api/proxy/svc/x?{m}"), &[]).status, 401);
        up.assert_never(&m);
    }
}

/// The callbacks the module imports, which Envoy binds when it loads the
/// `.so` (a missing one refuses the module): each is exported by the
/// Envoy the tests run (1.39.3), and each is one Envoy 1.38.0 already
/// declared (checked against its `abi.h`; Envoy Gateway 1.8's default
/// proxy is 1.38). A new import fails here until it is checked against
/// 1.38 and added to the list (docs/native.md#building-it).
#[test]
fn the_module_imports_only_callbacks_envoy_1_38_and_the_tested_envoy_have() {
    const IN_1_38: [&str; 19] = [
        "envoy_dynamic_module_callback_http_add_header",
        "envoy_dynamic_module_callback_http_clear_route_cache",
        "envoy_dynamic_module_callback_http_filter_config_define_counter",
        "envoy_dynamic_module_callback_http_filter_config_http_callout",
        "envoy_dynamic_module_callback_http_filter_config_scheduler_commit",
        "envoy_dynamic_module_callback_http_filter_config_scheduler_delete",
        "envoy_dynamic_module_callback_http_filter_config_scheduler_new",
        "envoy_dynamic_module_callback_http_filter_continue_decoding",
        "envoy_dynamic_module_callback_http_filter_get_attribute_string",
        "envoy_dynamic_module_callback_http_filter_increment_counter",
        "envoy_dynamic_module_callback_http_filter_scheduler_commit",
        "envoy_dynamic_module_callback_http_filter_scheduler_delete",
        "envoy_dynamic_module_callback_http_filter_scheduler_new",
        "envoy_dynamic_module_callback_http_get_headers",
        "envoy_dynamic_module_callback_http_get_headers_size",
        "envoy_dynamic_module_callback_http_send_response",
        "envoy_dynamic_module_callback_http_set_filter_state_bytes",
        "envoy_dynamic_module_callback_http_set_header",
        "envoy_dynamic_module_callback_log",
    ];
    let symbols = |args: &[&str], file: &std::path::Path| -> Vec<String> {
        let out = std::process::Command::new("nm")
            .args(args)
            .arg(file)
            .output()
            .expect("nm (binutils) runs");
        assert!(out.status.success(), "nm {}", file.display());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .filter(|s| s.starts_with("envoy_dynamic_module_callback_"))
            .map(str::to_string)
            .collect()
    };
    let imports = symbols(&["-D", "--undefined-only"], &native_path());
    assert!(imports.len() >= 10, "{imports:?}");
    let exported = symbols(&["-D", "--defined-only"], &envoy_bin());
    for s in &imports {
        assert!(
            IN_1_38.contains(&s.as_str()),
            "{s}: not checked against Envoy 1.38"
        );
        assert!(
            exported.contains(s),
            "{s}: not exported by {}",
            envoy_bin().display()
        );
    }
}
