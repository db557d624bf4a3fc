//! End-to-end cases that need their own Envoy: configurations Envoy must
//! refuse, alternative configuration forms, HCM
//! path normalisation on, and the shipped envoy.yaml itself.

use backstage_proxy_testkit as support;

use std::path::Path;

use support::*;

const TOKEN: &str = "static-token-0123456789";

fn static_auth() -> String {
    format!(
        r#""backend":{{"auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{TOKEN}","subject":"ci"}}}}]}}}}"#
    )
}

#[test]
fn a_bad_configuration_makes_envoy_refuse_it_naming_the_json_path() {
    for (config, expected) in [
        (
            r#"{"proxy":{"endpoints":{"/pd":{"target":"http://t","credentials":"maybe"}}}}"#.to_string(),
            "proxy.endpoints./pd.credentials: unknown policy 'maybe'; expected one of require, forward, dangerously-allow-unauthenticated",
        ),
        (r#"{"proxy":{"endpoints":{"/pd":{"target":"http://t","allowedMethod":["GET"]}}}}"#.to_string(), "proxy.endpoints./pd.allowedMethod: unknown key"),
        (r#"{"proxy":{"endpoints":{"/pd":"backstage.io"}}}"#.to_string(), "proxy.endpoints./pd: Proxy target is not a valid URL"),
        (
            r#"{"proxy":{"endpoints":{"/pd":{"target":"http://t","headers":{"Authorization":"Token ${NOT_SET_ANYWHERE}"}}}}}"#.to_string(),
            "proxy.endpoints./pd.headers.Authorization: environment variable 'NOT_SET_ANYWHERE' is not set",
        ),
        (
            r#"{"backend":{"auth":{"externalAccess":[{"type":"static","options":{"token":"short","subject":"s"}}]}}}"#.to_string(),
            "backend.auth.externalAccess[0].options.token: must be at least 8 characters long",
        ),
        ("not json at all".to_string(), "configuration is not valid JSON"),
    ] {
        let opts = EnvoyOptions::new(config.clone());
        match Envoy::try_start(&opts) {
            Ok(_) => panic!("Envoy accepted {config}"),
            Err((log, _status)) => {
                assert!(log.contains(expected), "log lacks {expected:?}:\n{log}");
                // The error names the variable, never the header's value.
                assert!(!log.contains("Token ${NOT_SET_ANYWHERE}"), "{log}");
            }
        }
    }
}

#[test]
fn a_secret_in_a_refused_configuration_is_not_logged() {
    let secret = "TOPSECRET-static-value";
    let config = format!(
        r#"{{"backend":{{"auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{secret}","subject":"s"}}}},{{"type":"static","options":{{"token":"{secret}","subject":"t"}}}}]}}}}}}"#
    );
    let Err((log, _)) = Envoy::try_start(&EnvoyOptions::new(config)) else {
        panic!("accepted")
    };
    assert!(
        log.contains("the same static token is configured more than once"),
        "{log}"
    );
    // Envoy itself echoes its bootstrap on some errors; the filter's lines must not.
    for line in log.lines().filter(|l| l.contains("backstage-proxy-wasm")) {
        assert!(!line.contains(secret), "{line}");
    }
}

#[test]
fn skip_invalid_proxies_and_the_legacy_root_form() {
    let up = Upstream::start(&[]);
    let p = up.port;
    let config = format!(
        r#"{{"proxy":{{"skipInvalidProxies":true,"/legacy":"http://127.0.0.1:{p}/legacy","/broken":{{"credentials":"require"}}}},{}}}"#,
        static_auth()
    );
    let envoy = Envoy::start(EnvoyOptions::new(config).cluster(cluster_for_port(p), p));
    let m = unique();
    let r = envoy.get(
        &format!("/api/proxy/legacy/a?{m}"),
        &[("authorization", &format!("Bearer {TOKEN}"))],
    );
    assert_eq!(r.status, 200);
    assert_eq!(up.find(&m).unwrap().target, format!("/legacy/a?{m}"));
    assert_eq!(
        envoy
            .get(
                "/api/proxy/broken",
                &[("authorization", &format!("Bearer {TOKEN}"))]
            )
            .status,
        404
    );
    let log = envoy.log();
    assert!(log.contains("skipped configuring /broken due to"), "{log}");
    assert!(log.contains("deprecated"), "{log}");
}

#[test]
fn disabled_default_auth_policy_opens_every_endpoint_and_unknown_paths_are_404() {
    let up = Upstream::start(&[]);
    let p = up.port;
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/req":"http://127.0.0.1:{p}","/fwd":{{"target":"http://127.0.0.1:{p}","credentials":"forward"}}}}}},
            "backend":{{"auth":{{"dangerouslyDisableDefaultAuthPolicy":true}}}}}}"#
    );
    let envoy = Envoy::start(EnvoyOptions::new(config).cluster(cluster_for_port(p), p));
    let m = unique();
    assert_eq!(
        envoy
            .get(
                &format!("/api/proxy/req?{m}"),
                &[("authorization", "Bearer garbage")]
            )
            .status,
        200
    );
    assert_eq!(
        up.find(&m).unwrap().header("authorization"),
        None,
        "require still strips it"
    );
    let m = unique();
    assert_eq!(
        envoy
            .get(
                &format!("/api/proxy/fwd?{m}"),
                &[("authorization", "Bearer garbage")]
            )
            .status,
        200
    );
    assert_eq!(
        up.find(&m).unwrap().header("authorization"),
        Some("Bearer garbage")
    );
    assert_eq!(envoy.get("/api/proxy/unknown", &[]).status, 404);
}

#[test]
fn the_filter_holds_with_envoy_path_normalisation_on() {
    let up = Upstream::start(&[]);
    let p = up.port;
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/pub":{{"target":"http://127.0.0.1:{p}/pub","credentials":"dangerously-allow-unauthenticated"}},"/svc":"http://127.0.0.1:{p}/base"}}}},{}}}"#,
        static_auth()
    );
    let mut opts = EnvoyOptions::new(config).cluster(cluster_for_port(p), p);
    opts.normalize = true;
    let envoy = Envoy::start(opts);
    // Envoy resolves the dot segments first; the filter then decides on the
    // canonical path: /pub/../svc is /svc and needs credentials.
    for path in [
        "/api/proxy/pub/../svc/x",
        "/api/proxy/pub/%2e%2e/svc/x",
        "//api/proxy//pub/..//svc/x",
    ] {
        let m = unique();
        let r = envoy.get(&format!("{path}?{m}"), &[]);
        assert_eq!(r.status, 401, "{path}");
        up.assert_never(&m);
        let r = envoy.get(
            &format!("{path}?{m}"),
            &[("authorization", &format!("Bearer {TOKEN}"))],
        );
        assert_eq!(r.status, 200, "{path}");
        let seen = up.find(&m).unwrap();
        assert!(
            seen.target.starts_with("/base/"),
            "{path} reached {}",
            seen.target
        );
    }
    // encoded slashes are kept as they are and still refused as traversal
    let m = unique();
    assert_eq!(
        envoy
            .get(
                &format!("/api/proxy/svc/a%2f..%2f..%2fx?{m}"),
                &[("authorization", &format!("Bearer {TOKEN}"))]
            )
            .status,
        400
    );
    up.assert_never(&m);
}

/// The shipped envoy.yaml, run as it is with only its ports (and the
/// example upstream's address) substituted.
#[test]
fn the_shipped_envoy_yaml_serves_its_example() {
    let up = Upstream::start(&[("set-cookie", "s=1"), ("x-upstream-internal", "x")]);
    let shipped = std::fs::read_to_string(repo_root().join("envoy.yaml")).unwrap();
    assert!(
        shipped.contains("port_value: 10000")
            && shipped.contains("port_value: 9901")
            && shipped.contains("port_value: 8081")
    );
    let cfg = shipped
        .replace("port_value: 10000", "port_value: 0")
        .replace("port_value: 9901", "port_value: 0")
        .replace("port_value: 8081", &format!("port_value: {}", up.port))
        .replace("address: 0.0.0.0", "address: 127.0.0.1")
        .replace(
            "filename: build/plugin.wasm",
            &format!("filename: {}", wasm_path().display()),
        );
    let dir = TempDir::new("shipped");
    let path = dir.0.join("envoy.yaml");
    std::fs::write(&path, cfg).unwrap();
    let envoy = Envoy::run_file(&path, 1, dir, &[], &[]).unwrap_or_else(|(log, _)| panic!("{log}"));
    let m = unique();
    assert_eq!(
        envoy.get(&format!("/api/proxy/echo/x?{m}"), &[]).status,
        401
    );
    up.assert_never(&m);
    let r = envoy.get(
        &format!("/api/proxy/echo/x?{m}"),
        &[
            ("authorization", "Bearer example-static-token-0123"),
            ("cookie", "c=1"),
            ("x-request-id", "rid-1"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("set-cookie"), None);
    assert_eq!(r.header("x-upstream-internal"), None);
    let seen = up.find(&m).unwrap();
    assert_eq!(seen.target, format!("/base/x?{m}"));
    assert_eq!(seen.header("x-api-key"), Some("example-upstream-api-key"));
    assert_eq!(seen.header("x-request-id"), Some("rid-1"));
    assert_eq!(seen.header("cookie"), None);
    assert_eq!(seen.header("x-forwarded-proto"), None);
    // allow-listed but not sent: Envoy must not invent one
    let m2 = unique();
    assert_eq!(
        envoy
            .get(
                &format!("/api/proxy/echo/x?{m2}"),
                &[("authorization", "Bearer example-static-token-0123")]
            )
            .status,
        200
    );
    assert_eq!(up.find(&m2).unwrap().header("x-request-id"), None);
    let m = unique();
    assert_eq!(
        envoy.get(&format!("/api/proxy/public/p?{m}"), &[]).status,
        200
    );
    assert_eq!(up.find(&m).unwrap().target, format!("/public/p?{m}"));
    assert_eq!(
        envoy
            .request("POST", "/api/proxy/public/p", &[("content-length", "0")])
            .status,
        405
    );
}

/// The exact envoy.yaml docker-compose mounts, run from the repository root
/// as compose runs it from /work: nothing substituted (fixed ports 10000,
/// 9901 and the example upstream's 8081, which this test serves).
#[test]
fn the_exact_shipped_envoy_yaml_runs_unchanged() {
    let listener = std::net::TcpListener::bind("127.0.0.1:8081")
        .expect("port 8081 (the example upstream's) must be free for this test");
    drop(listener);
    let up = Upstream::start_on(8081, &[]);
    let envoy = Envoy::run_file_in(
        Some(&repo_root()),
        Path::new("envoy.yaml"),
        1,
        TempDir::new("exact"),
        &[],
        &[],
    )
    .unwrap_or_else(|(log, _)| panic!("{log}"));
    assert_eq!((envoy.port, envoy.admin_port), (10000, 9901));
    let m = unique();
    let r = envoy.get(
        &format!("/api/proxy/echo/x?{m}"),
        &[("authorization", "Bearer example-static-token-0123")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(up.find(&m).unwrap().target, format!("/base/x?{m}"));
}

#[test]
fn shipped_envoy_yaml_is_fail_closed_and_keeps_the_path_settings() {
    let shipped = std::fs::read_to_string(repo_root().join("envoy.yaml")).unwrap();
    for needle in [
        "failure_policy: FAIL_CLOSED",
        "normalize_path: false",
        "merge_slashes: false",
        "path_with_escaped_slashes_action: KEEP_UNCHANGED",
        "headers_with_underscores_action: DROP_HEADER",
        "suppress_envoy_headers: true",
        "cluster_header: x-backstage-proxy-cluster",
        "use_remote_address: true",
    ] {
        assert!(shipped.contains(needle), "envoy.yaml lacks {needle}");
    }
    assert!(!shipped.contains("FAIL_OPEN") && !shipped.contains("fail_open"));
    // validate mode loads build/plugin.wasm relative to the repo root
    envoy_validate(Path::new("envoy.yaml"), &repo_root(), &[]);
}

/// `make run` serves the demo token on loopback only; the shipped file
/// (which compose publishes) keeps every interface.
#[test]
fn make_run_listens_on_loopback_only() {
    let out = std::process::Command::new("make")
        .current_dir(repo_root())
        .args(["-s", "build/envoy.run.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = std::fs::read_to_string(repo_root().join("build/envoy.run.yaml")).unwrap();
    assert!(run.contains("socket_address: { address: 127.0.0.1, port_value: 10000 }"));
    assert!(!run.contains("0.0.0.0"), "{run}");
    // validate mode loads build/plugin.wasm relative to the repo root
    envoy_validate(Path::new("build/envoy.run.yaml"), &repo_root(), &[]);
    let shipped = std::fs::read_to_string(repo_root().join("envoy.yaml")).unwrap();
    assert!(shipped.contains("address: 0.0.0.0, port_value: 10000"));
}

/// A request or response with many headers to remove takes the filter's
/// other path (the header map replaced whole, one host call, instead of a
/// call per removal): the same headers must arrive as on the few-edits
/// path, every value of an allowed header kept, injected values set once.
#[test]
fn many_headers_to_remove_give_the_same_request_and_response_as_few() {
    let mut extra: Vec<(String, String)> = (0..40)
        .map(|i| (format!("x-drop-{i}"), format!("v{i}")))
        .collect();
    let resp_headers: Vec<(String, String)> = (0..30)
        .map(|i| (format!("x-resp-drop-{i}"), "r".to_string()))
        .collect();
    let resp_refs: Vec<(&str, &str)> = resp_headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain([("x-kept", "k1"), ("cache-control", "no-store")])
        .collect();
    let up = Upstream::start(&resp_refs);
    let p = up.port;
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":{{"target":"http://127.0.0.1:{p}/base","allowedHeaders":["X-Kept","X-Multi"],"headers":{{"X-Injected":"inj","X-Drop-3":"overridden"}}}}}}}},{}}}"#,
        static_auth()
    );
    let envoy = Envoy::start(EnvoyOptions::new(config).cluster(cluster_for_port(p), p));
    for many in [false, true] {
        let m = unique();
        let mut headers: Vec<(String, String)> = vec![
            ("authorization".into(), format!("Bearer {TOKEN}")),
            ("x-kept".into(), "yes".into()),
            ("x-multi".into(), "a".into()),
            ("x-multi".into(), "b".into()),
            ("x-injected".into(), "client".into()),
            ("cookie".into(), "s=1".into()),
        ];
        if many {
            headers.append(&mut extra.clone());
        }
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let r = envoy.request("GET", &format!("/api/proxy/svc/x?{m}"), &refs);
        assert_eq!(r.status, 200, "many={many}");
        let seen = up.find(&m).unwrap();
        assert_eq!(seen.target, format!("/base/x?{m}"), "many={many}");
        assert_eq!(seen.header("host"), Some(format!("127.0.0.1:{p}").as_str()));
        assert_eq!(seen.header("x-kept"), Some("yes"));
        assert_eq!(seen.all("x-multi"), ["a", "b"], "many={many}");
        assert_eq!(seen.all("x-injected"), ["inj"], "many={many}");
        assert_eq!(seen.all("x-drop-3"), ["overridden"], "many={many}");
        assert_eq!(seen.header("authorization"), None);
        assert_eq!(seen.header("cookie"), None);
        assert!(
            !seen
                .names()
                .iter()
                .any(|n| n.starts_with("x-drop-") && *n != "x-drop-3"),
            "many={many}: {:?}",
            seen.names()
        );
        assert_eq!(seen.header("x-backstage-proxy-cluster"), None);
        // The response: 30 headers to remove, the allowed and safe kept.
        assert_eq!(r.header("x-kept"), Some("k1"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(!r.headers.iter().any(|(n, _)| n.starts_with("x-resp-drop-")));
        extra.truncate(40);
    }
}
