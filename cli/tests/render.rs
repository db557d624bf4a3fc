//! `render` run for real: rendered envoy.yaml files validated by Envoy
//! (the filter's configuration included), and one served end to end.

mod common;

use std::path::Path;

use backstage_proxy_testkit::{native_path, unique, wasm_path, Envoy, TempDir, Upstream};
use common::*;

const STRING_TARGETS: &str = r#"
backend:
  baseUrl: http://localhost:7007
  auth:
    externalAccess:
      - type: static
        options: { token: static-token-0123456789, subject: ci }
proxy:
  endpoints:
    /simple: http://example.com/base
    /other: http://other.example:8080
"#;

const LEGACY_FORM: &str = r#"
backend: { baseUrl: "http://127.0.0.1:7007", auth: { keys: [ { secret: c2VjcmV0 } ] } }
proxy:
  /legacy: http://127.0.0.1:9000
  /ip6: "http://[::1]:9001/x"
"#;

#[test]
fn render_examples_and_validate_each_in_envoy() {
    let dir = TempDir::new("render");
    let env = [
        ("PAGERDUTY_TOKEN", "pd-secret"),
        ("JENKINS_KEY", "jk-secret"),
        ("FORWARD_TARGET", "https://forward.example.com"),
    ];
    for (name, text) in [
        ("strings.yaml", STRING_TARGETS),
        ("objects.yaml", OBJECT_HTTPS_JWKS_ENV),
        ("legacy.yaml", LEGACY_FORM),
    ] {
        let input = write(&dir.0, name, text);
        let output = dir
            .0
            .join(format!("{name}.envoy.yaml"))
            .display()
            .to_string();
        let o = render_to(&input, &output, &env);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        envoy_validate(&output, &env);
        let yaml = std::fs::read_to_string(&output).unwrap();
        // Secrets of header values stay out of the file; the VM reads them.
        assert!(
            !yaml.contains("pd-secret") && !yaml.contains("jk-secret"),
            "{name}"
        );
        assert!(yaml.contains("FAIL_CLOSED") && !yaml.contains("FAIL_OPEN"));
        assert!(yaml.contains("suppress_envoy_headers: true"));
    }
    let yaml = std::fs::read_to_string(dir.0.join("objects.yaml.envoy.yaml")).unwrap();
    let v: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_objects_clusters(&v);
    assert_objects_filter_and_routes(&v);
}

/// The object form's clusters: one per destination, named by scheme,
/// host and port; TLS verified unless `secure: false`.
fn assert_objects_clusters(v: &serde_json::Value) {
    let clusters = v["static_resources"]["clusters"].as_array().unwrap();
    let names: Vec<&str> = clusters
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for n in [
        "https_api.pagerduty.com_443",
        "https_jenkins.internal_8443",
        "https_forward.example.com_443",
        "https_backstage.example.com_443",
        "https_login.example.com_443",
    ] {
        assert!(names.contains(&n), "{names:?} lacks {n}");
    }
    let pd = clusters
        .iter()
        .find(|c| c["name"] == "https_api.pagerduty.com_443")
        .unwrap();
    assert_eq!(
        pd["transport_socket"]["typed_config"]["sni"],
        "api.pagerduty.com"
    );
    assert!(
        pd["transport_socket"]["typed_config"]["common_tls_context"]["validation_context"]
            .is_object()
    );
    let jenkins = clusters
        .iter()
        .find(|c| c["name"] == "https_jenkins.internal_8443")
        .unwrap();
    assert!(
        jenkins["transport_socket"]["typed_config"]["common_tls_context"]["validation_context"]
            .is_null(),
        "secure: false"
    );
}

/// The object form's filter (first: it answers CORS), its VM's variables,
/// the routes' timeouts and redirects, and what is resolved at render time.
fn assert_objects_filter_and_routes(v: &serde_json::Value) {
    let hcm =
        &v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(
        hcm["http_filters"][0]["name"], "envoy.filters.http.wasm",
        "the filter answers CORS itself"
    );
    let wasm = &hcm["http_filters"][0]["typed_config"]["config"];
    let keys: Vec<&str> = wasm["vm_config"]["environment_variables"]["host_env_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(keys, ["JENKINS_KEY", "PAGERDUTY_TOKEN"]);
    let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
        .as_array()
        .unwrap();
    let jenkins_route = routes
        .iter()
        .find(|r| r["route"]["cluster"] == "https_jenkins.internal_8443")
        .unwrap();
    assert_eq!(jenkins_route["route"]["timeout"], "30s");
    assert_eq!(jenkins_route["route"]["idle_timeout"], "10s");
    assert!(jenkins_route["route"]["internal_redirect_policy"].is_object());
    // ${FORWARD_TARGET} resolved at render time (not a header value)
    let filter_config: serde_json::Value =
        serde_json::from_str(wasm["configuration"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        filter_config["proxy"]["endpoints"]["/forward"]["target"],
        "https://forward.example.com"
    );
    assert_eq!(
        filter_config["proxy"]["endpoints"]["/jenkins"]["headers"]["X-Api-Key"],
        "${JENKINS_KEY}"
    );
    assert_eq!(
        filter_config["backend"]["cors"]["origin"][1],
        "https://*.example.org"
    );
}

#[test]
fn a_rendered_gateway_serves_end_to_end() {
    let wasm = wasm_path().display().to_string();
    serves_end_to_end(&["--wasm", &wasm]);
}

/// `render --native`: the module in place of the Wasm filter, in a
/// gateway real Envoy loads as written, serving as the Wasm one does, its
/// counters under the Wasm filter's names in Prometheus too.
#[test]
fn a_gateway_rendered_with_native_serves_end_to_end() {
    let so = native_path().display().to_string();
    let envoy = serves_end_to_end(&["--native", &so]);
    let (_, page) = envoy.admin("/stats/prometheus");
    assert!(page.contains("backstage_proxy_allowed{} 1"), "{page}");
    assert!(!page.contains("envoy_wasmcustom_"), "{page}");
}

/// Renders with `artifact` (`--wasm PATH` or `--native PATH`), runs Envoy
/// on the file as written, and checks what it serves.
fn serves_end_to_end(artifact: &[&str]) -> Envoy {
    let up = Upstream::start(&[("set-cookie", "s=1")]);
    let dir = TempDir::new("served");
    let out = render_served_config(&dir.0, up.port, artifact);
    let text = std::fs::read_to_string(&out).unwrap();
    let native = artifact[0] == "--native";
    assert_eq!(text.contains("envoy.filters.http.dynamic_modules"), native);
    assert_eq!(text.contains("envoy.filters.http.wasm"), !native);
    let run_dir = TempDir::new("served-envoy");
    let envoy = Envoy::run_file(
        Path::new(&out),
        1,
        run_dir,
        &[],
        &[("UPSTREAM_KEY", "from-host-env")],
    )
    .unwrap_or_else(|(log, _)| panic!("{log}"));
    let m = unique();
    assert_eq!(envoy.get(&format!("/api/proxy/svc/a?{m}"), &[]).status, 401);
    up.assert_never(&m);
    let r = envoy.get(
        &format!("/api/proxy/svc/a?{m}"),
        &[
            ("authorization", "Bearer ci-token-0123456789"),
            ("cookie", "c=1"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("set-cookie"), None);
    let seen = up.find(&m).unwrap();
    assert_eq!(seen.target, format!("/base/a?{m}"));
    assert_eq!(seen.header("x-api-key"), Some("from-host-env"));
    assert_eq!(seen.header("cookie"), None);
    assert_eq!(
        envoy
            .request(
                "POST",
                "/api/proxy/svc/a",
                &[
                    ("authorization", "Bearer ci-token-0123456789"),
                    ("content-length", "0")
                ]
            )
            .status,
        405
    );
    envoy
}

/// Two files, the second overriding one key of the endpoint as Backstage
/// merges, rendered for the upstream on `upstream_port` with `artifact`.
fn render_served_config(dir: &Path, upstream_port: u16, artifact: &[&str]) -> String {
    let base = write(
        dir,
        "app-config.yaml",
        &format!(
            r#"
backend:
  baseUrl: http://127.0.0.1:7007
  auth:
    externalAccess:
      - type: static
        options: {{ token: "${{CI_TOKEN}}", subject: ci }}
proxy:
  endpoints:
    /svc:
      target: http://127.0.0.1:{}/base
      headers: {{ X-Api-Key: "${{UPSTREAM_KEY}}" }}
"#,
            upstream_port
        ),
    );
    // the second file overrides one key of the endpoint, as Backstage merges
    let prod = write(
        dir,
        "app-config.production.yaml",
        "proxy:\n  endpoints:\n    /svc:\n      allowedMethods: [GET]\n",
    );
    let out = dir.join("envoy.yaml").display().to_string();
    let o = run_cli(
        &[
            "render",
            "-o",
            &out,
            artifact[0],
            artifact[1],
            "--listen",
            "127.0.0.1:0",
            "--admin-port",
            "0",
            &base,
            &prod,
        ],
        &[("CI_TOKEN", "ci-token-0123456789")],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    out
}
