//! The command-line tool, the docker-compose file and the OCI image, run for
//! real: rendered envoy.yaml files validated (and one served) by Envoy,
//! `check` refusing bad configurations with file and JSON path, the compose
//! file parsed by docker-compose, and the image pushed to and pulled from a
//! docker-registry on loopback with skopeo.

use backstage_proxy_testkit as support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_backstage-proxy-wasm"))
}

fn run_cli(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(cli());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        use std::io::Write;
        // A command that fails on its arguments exits before reading its
        // input: a closed pipe here is its answer, not the test's failure.
        let _ = child.stdin.take().unwrap().write_all(text.as_bytes());
    }
    child.wait_with_output().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `render` of `input` into `output` for the built `.wasm`, on loopback with
/// ports Envoy chooses.
fn render_to(input: &str, output: &str, env: &[(&str, &str)]) -> Output {
    let wasm = wasm_path().display().to_string();
    run_cli(
        &[
            "render",
            "--wasm",
            &wasm,
            "--admin-port",
            "0",
            "--listen",
            "127.0.0.1:0",
            "--output",
            output,
            input,
        ],
        env,
        None,
    )
}

/// `envoy --mode validate` on a rendered file; the filter's on_configure runs.
fn envoy_validate(yaml_path: &str, env: &[(&str, &str)]) {
    support::envoy_validate(Path::new(yaml_path), &std::env::current_dir().unwrap(), env);
}

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

const OBJECT_HTTPS_JWKS_ENV: &str = r#"
backend:
  baseUrl: https://backstage.example.com
  cors:
    origin: [https://backstage.example.com, "https://*.example.org"]
    methods: [GET, POST]
    credentials: true
  auth:
    externalAccess:
      - type: jwks
        options:
          url: https://login.example.com/.well-known/jwks.json
          issuer: https://login.example.com
          audience: [edge, other]
          algorithm: RS256, ES256
          subjectPrefix: corp
      - type: legacy
        options: { secret: c2VjcmV0LXNlY3JldC1zZWNyZXQ, subject: cron }
proxy:
  skipInvalidProxies: false
  endpoints:
    /pagerduty:
      target: https://api.pagerduty.com
      headers: { Authorization: "Token token=${PAGERDUTY_TOKEN}" }
      allowedMethods: [GET]
    /jenkins:
      target: https://jenkins.internal:8443/api
      secure: false
      timeout: 10000
      proxyTimeout: 30000
      followRedirects: true
      headers:
        X-Api-Key: { $env: JENKINS_KEY }
    /forward:
      target: ${FORWARD_TARGET}
      credentials: forward
      xfwd: true
      ws: true
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

#[test]
fn a_rendered_gateway_serves_end_to_end() {
    let up = Upstream::start(&[("set-cookie", "s=1")]);
    let dir = TempDir::new("served");
    let base = write(
        &dir.0,
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
            up.port
        ),
    );
    // the second file overrides one key of the endpoint, as Backstage merges
    let prod = write(
        &dir.0,
        "app-config.production.yaml",
        "proxy:\n  endpoints:\n    /svc:\n      allowedMethods: [GET]\n",
    );
    let out = dir.0.join("envoy.yaml").display().to_string();
    let wasm = wasm_path().display().to_string();
    let o = run_cli(
        &[
            "render",
            "-o",
            &out,
            "--wasm",
            &wasm,
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
}

#[test]
fn check_reports_every_error_with_file_and_path() {
    let dir = TempDir::new("check");
    let base = write(
        &dir.0,
        "app-config.yaml",
        "proxy:\n  endpoints:\n    /ok: http://t\n    /pd:\n      target: http://t\n",
    );
    let bad = write(
        &dir.0,
        "app-config.local.yaml",
        "proxy:\n  endpoints:\n    /pd:\n      credentials: maybe\n      allowedMethod: [GET]\n    /inc:\n      $include: other.yaml\nbackend:\n  auth:\n    externalAccess:\n      - type: static\n        options: { token: short, subject: s }\n",
    );
    let o = run_cli(&["check", &base, &bad], &[], None);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    for line in [
        format!("{bad}: proxy.endpoints./pd.credentials: unknown policy 'maybe'; expected one of require, forward, dangerously-allow-unauthenticated"),
        format!("{bad}: proxy.endpoints./pd.allowedMethod: unknown key"),
        format!("{bad}: proxy.endpoints./inc: $include other.yaml: No such file or directory"),
        format!("{bad}: backend.auth.externalAccess[0].options.token: must be at least 8 characters long"),
    ] {
        assert!(err.contains(&line), "missing {line:?} in:\n{err}");
    }
    // $include reads beside the file that holds it, from any directory the
    // tool runs in; APP_CONFIG_ overrides apply after every file
    write(
        &dir.0,
        "other.yaml",
        "target: http://included:8080\nallowedMethods: [GET]\n",
    );
    let good = write(
        &dir.0,
        "app-config.good.yaml",
        "proxy:\n  endpoints:\n    /inc: {$include: other.yaml}\n    /ok: http://t\n",
    );
    let o = run_cli(
        &["check", &good],
        &[(
            "APP_CONFIG_proxy_endpoints",
            r#"{"/env": "http://from-env"}"#,
        )],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "OK: 3 endpoint(s)");
    let o = run_cli(
        &["check", &good],
        &[("APP_CONFIG_proxy_1endpoints", "x")],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("APP_CONFIG_proxy_1endpoints: invalid environment config key"));
    // the filter reports the same message for the same input
    let filter_errors = backstage_proxy_core::config::parse(
        br#"{"proxy":{"endpoints":{"/pd":{"target":"http://t","credentials":"maybe"}}}}"#,
        &|_| None,
    )
    .unwrap_err();
    assert!(err.contains(&filter_errors[0].to_string()));
    // valid files, from stdin too
    let o = run_cli(
        &["check", "-"],
        &[],
        Some("proxy:\n  endpoints:\n    /x: http://t\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "OK: 1 endpoint(s)");
    // a missing variable outside header values is an error naming it
    let o = run_cli(
        &["check", "-"],
        &[],
        Some("proxy:\n  endpoints:\n    /x: ${TARGET_URL}\n"),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o)
            .contains("<stdin>: proxy.endpoints./x: environment variable 'TARGET_URL' is not set"),
        "{}",
        stderr(&o)
    );
    let o = run_cli(&["check", "-"], &[], Some("proxy: [unclosed"));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not valid YAML"));
    // usage errors
    assert_eq!(run_cli(&["frobnicate"], &[], None).status.code(), Some(2));
    assert_eq!(
        run_cli(&["render", "--bogus", "x"], &[], None)
            .status
            .code(),
        Some(2)
    );
    let help = run_cli(&["--help"], &[], None);
    assert!(help.status.success() && stdout(&help).contains("Usage:"));
}

#[test]
fn istio_resources() {
    let dir = TempDir::new("istio");
    let input = write(&dir.0, "app-config.yaml", OBJECT_HTTPS_JWKS_ENV);
    let o = run_cli(
        &[
            "istio",
            "--url",
            "oci://registry.example.com/backstage-proxy-wasm:1.0",
            "--sha256",
            "sha256:abc123",
            "--namespace",
            "gw",
            &input,
        ],
        &[("FORWARD_TARGET", "https://forward.example.com")],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&stdout(&o)).unwrap();
    let plugin = &docs[0];
    assert_eq!(plugin["kind"], "WasmPlugin");
    assert_eq!(
        plugin["spec"]["url"],
        "oci://registry.example.com/backstage-proxy-wasm:1.0"
    );
    assert_eq!(plugin["spec"]["sha256"], "abc123");
    assert_eq!(plugin["spec"]["phase"], "AUTHN");
    assert_eq!(plugin["spec"]["failStrategy"], "FAIL_CLOSE");
    let cfg = &plugin["spec"]["pluginConfig"];
    assert_eq!(
        cfg["proxy"]["endpoints"]["/pagerduty"]["cluster"],
        "outbound|443||api.pagerduty.com"
    );
    assert_eq!(
        cfg["gateway"]["backendCluster"],
        "outbound|443||backstage.example.com"
    );
    assert_eq!(
        cfg["backend"]["auth"]["externalAccess"][0]["options"]["cluster"],
        "outbound|443||login.example.com"
    );
    let env: Vec<&str> = plugin["spec"]["vmConfig"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["JENKINS_KEY", "PAGERDUTY_TOKEN"]);
    // the configuration still validates as the filter's
    backstage_proxy_core::config::parse_value(cfg, &|_| Some("x".into())).unwrap();
    let entries: Vec<&serde_json::Value> = docs
        .iter()
        .filter(|d| d["kind"] == "ServiceEntry")
        .collect();
    assert!(entries
        .iter()
        .any(|e| e["spec"]["hosts"][0] == "api.pagerduty.com"
            && e["spec"]["ports"][0]["number"] == 443));
    let rules: Vec<&serde_json::Value> = docs
        .iter()
        .filter(|d| d["kind"] == "DestinationRule")
        .collect();
    let jenkins = rules
        .iter()
        .find(|r| r["spec"]["host"] == "jenkins.internal")
        .unwrap();
    let tls = &jenkins["spec"]["trafficPolicy"]["portLevelSettings"][0];
    assert_eq!(tls["tls"]["mode"], "SIMPLE");
    assert_eq!(tls["tls"]["insecureSkipVerify"], true);
    assert!(jenkins["spec"]["trafficPolicy"].get("tls").is_none());
}

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed: run `make tools` (Debian packages docker-compose, docker-registry, skopeo)");
}

#[test]
fn the_compose_file_parses_and_mounts_what_the_tests_run() {
    let out = Command::new(tool("docker-compose"))
        .current_dir(repo_root())
        .args(["-f", "docker-compose.yml", "config"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let envoy = &v["services"]["envoy"];
    let makefile = std::fs::read_to_string(repo_root().join("Makefile")).unwrap();
    let version = makefile
        .lines()
        .find_map(|l| l.strip_prefix("ENVOY_VERSION ?= "))
        .unwrap()
        .trim();
    assert_eq!(
        envoy["image"],
        format!("envoyproxy/envoy:v{version}"),
        "compose pins the Envoy the tests run"
    );
    let volumes: Vec<&str> = envoy["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let root = repo_root().display().to_string();
    assert!(
        volumes.contains(&format!("{root}/envoy.yaml:/work/envoy.yaml:ro").as_str()),
        "{volumes:?}"
    );
    assert!(
        volumes.contains(&format!("{root}/build/plugin.wasm:/work/build/plugin.wasm:ro").as_str()),
        "{volumes:?}"
    );
    assert_eq!(
        envoy["working_dir"], "/work",
        "envoy.yaml's relative build/plugin.wasm resolves under /work"
    );
    assert_eq!(
        v["services"]["upstream"]["network_mode"], "service:envoy",
        "the upstream is on Envoy's loopback, as envoy.yaml expects"
    );
    // tests/e2e_configs.rs runs that same envoy.yaml under real Envoy
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Registry {
    child: std::process::Child,
    port: u16,
    _dir: TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry() -> Registry {
    let dir = TempDir::new("registry");
    let port = free_port();
    let cfg = write(
        &dir.0,
        "config.yml",
        &format!("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n", dir.0.join("data").display()),
    );
    let child = Command::new(tool("docker-registry"))
        .args(["serve", &cfg])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http(
        port,
        "GET /v2/ HTTP/1.1\r\nhost: r\r\nconnection: close\r\n\r\n",
    )
    .map(|r| r.status)
    .unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "docker-registry did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Registry {
        child,
        port,
        _dir: dir,
    }
}

#[test]
fn oci_image_is_reproducible_and_round_trips_through_a_registry() {
    let dir = TempDir::new("oci");
    let wasm = wasm_path();
    let wasm_s = wasm.display().to_string();
    let a = dir.0.join("a").display().to_string();
    let b = dir.0.join("b").display().to_string();
    let da = run_cli(
        &["oci", "--wasm", &wasm_s, "--output", &a, "--tag", "test"],
        &[],
        None,
    );
    let db = run_cli(
        &["oci", "--wasm", &wasm_s, "--output", &b, "--tag", "test"],
        &[],
        None,
    );
    assert!(da.status.success(), "{}", stderr(&da));
    let digest = stdout(&da).trim().to_string();
    assert_eq!(
        digest,
        stdout(&db).trim(),
        "two builds, one manifest digest"
    );
    assert!(digest.starts_with("sha256:") && digest.len() == 71);

    let reg = start_registry();
    let dest = format!("docker://127.0.0.1:{}/backstage-proxy-wasm:test", reg.port);
    let skopeo = tool("skopeo");
    // Pushed as the release workflow pushes: `make oci-push`.
    let push = Command::new("make")
        .current_dir(repo_root())
        .args([
            "-s",
            "oci-push",
            &format!("OCI_DIR={a}"),
            "OCI_TAG=test",
            &format!("OCI_REF=127.0.0.1:{}/backstage-proxy-wasm:test", reg.port),
            "OCI_PUSH_FLAGS=--dest-tls-verify=false",
        ])
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "push: {}",
        String::from_utf8_lossy(&push.stderr)
    );
    // the registry serves exactly our manifest
    let raw = Command::new(&skopeo)
        .args(["inspect", "--raw", "--tls-verify=false", &dest])
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(
        format!(
            "sha256:{}",
            backstage_proxy_wasm_cli::oci::sha256_hex(&raw.stdout)
        ),
        digest,
        "Istio's sha256 is this digest"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    // pull it back and compare the layer's plugin.wasm with the build
    let pulled = dir.0.join("pulled").display().to_string();
    let pull = Command::new(&skopeo)
        .args([
            "copy",
            "--src-tls-verify=false",
            &dest,
            &format!("oci:{pulled}:pulled"),
        ])
        .output()
        .unwrap();
    assert!(
        pull.status.success(),
        "pull: {}",
        String::from_utf8_lossy(&pull.stderr)
    );
    let layer_digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let layer = std::fs::read(Path::new(&pulled).join("blobs/sha256").join(layer_digest)).unwrap();
    let files = backstage_proxy_wasm_cli::oci::untar(
        &backstage_proxy_wasm_cli::oci::gunzip(&layer).unwrap(),
    )
    .unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "plugin.wasm");
    assert!(
        files[0].1 == std::fs::read(&wasm).unwrap(),
        "plugin.wasm is byte-identical to the build"
    );
}

#[test]
fn version_help_and_usage_errors() {
    let o = run_cli(&["--version"], &[], None);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).trim(),
        format!("backstage-proxy-wasm {}", env!("CARGO_PKG_VERSION"))
    );
    let o = run_cli(&["--help"], &[], None);
    assert!(o.status.success());
    for command in ["check", "render", "istio", "oci"] {
        assert!(stdout(&o).contains(command), "{command} in --help");
    }
    let o = run_cli(&["render", "--help"], &[], None);
    assert!(
        stdout(&o).contains("--listen <ADDR:PORT>"),
        "{}",
        stdout(&o)
    );
    // Usage errors exit 2 and say what is wrong; a command without its
    // files too.
    for args in [
        &["bogus"][..],
        &["check"],
        &["render", "--admin-port", "x", "a.yaml"],
        &["istio", "a.yaml"],
        &[
            "istio",
            "--url",
            "oci://r/x:1",
            "--selector",
            "novalue",
            "a.yaml",
        ],
    ] {
        let o = run_cli(args, &[], None);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("error"), "{args:?}");
    }
    let o = run_cli(&["render", "--listen", "nope", "-"], &[], Some("proxy: {}"));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--listen takes ADDR:PORT"));
}
