use super::*;

fn src(name: &str, yaml: &str) -> ConfigFile {
    load_yaml(name, yaml).unwrap()
}

#[test]
fn later_files_win_objects_merge_arrays_replace() {
    let a = src("a.yaml", "proxy:\n  endpoints:\n    /x: {target: 'http://a', allowedMethods: [GET, POST]}\n    /y: http://y\nbackend: {baseUrl: 'http://a'}\n");
    let b = src(
        "b.yaml",
        "proxy:\n  endpoints:\n    /x: {allowedMethods: [GET]}\nbackend: {baseUrl: 'http://b'}\n",
    );
    let m = merge(&[a, b]);
    assert_eq!(m.value["proxy"]["endpoints"]["/x"]["target"], "http://a");
    assert_eq!(
        m.value["proxy"]["endpoints"]["/x"]["allowedMethods"],
        serde_json::json!(["GET"])
    );
    assert_eq!(m.value["proxy"]["endpoints"]["/y"], "http://y");
    assert_eq!(m.value["backend"]["baseUrl"], "http://b");
    assert_eq!(m.file_of("proxy.endpoints./x.allowedMethods"), "b.yaml");
    assert_eq!(m.file_of("proxy.endpoints./x.allowedMethods[0]"), "b.yaml");
    assert_eq!(m.file_of("proxy.endpoints./x.target"), "a.yaml");
    assert_eq!(m.file_of("proxy.endpoints./y"), "a.yaml");
    // key order of the first file is kept (pathRewrite rules depend on it)
    let keys: Vec<&String> = m.value["proxy"]["endpoints"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["/x", "/y"]);
}

#[test]
fn a_scalar_replacing_an_object_forgets_its_origins() {
    let a = src(
        "a.yaml",
        "proxy:\n  endpoints:\n    /x: {target: 'http://a'}\n",
    );
    let b = src("b.yaml", "proxy:\n  endpoints:\n    /x: http://b\n");
    let m = merge(&[a, b]);
    assert_eq!(m.value["proxy"]["endpoints"]["/x"], "http://b");
    assert_eq!(m.file_of("proxy.endpoints./x.target"), "b.yaml");
}

#[test]
fn env_directives_resolve_except_in_header_values() {
    let env = |n: &str| match n {
        "TARGET" => Some("http://from-env".to_string()),
        "TOKEN" => Some("tok-0123456789".to_string()),
        _ => None,
    };
    let s = src(
        "a.yaml",
        "proxy:\n  endpoints:\n    /x:\n      target: ${TARGET}\n      headers:\n        Authorization: 'Bearer ${SECRET}'\n        X-Key: {$env: KEY}\nbackend:\n  auth:\n    externalAccess:\n      - {type: static, options: {token: {$env: TOKEN}, subject: ci}}\n",
    );
    let l = load(&[s], &env);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    assert_eq!(
        l.filter_config["proxy"]["endpoints"]["/x"]["target"],
        "http://from-env"
    );
    assert_eq!(
        l.filter_config["proxy"]["endpoints"]["/x"]["headers"]["Authorization"],
        "Bearer ${SECRET}"
    );
    assert_eq!(
        l.filter_config["proxy"]["endpoints"]["/x"]["headers"]["X-Key"],
        "${KEY}"
    );
    assert_eq!(
        l.filter_config["backend"]["auth"]["externalAccess"][0]["options"]["token"],
        "tok-0123456789"
    );
    assert_eq!(l.vm_vars, ["KEY", "SECRET"]);
    assert!(l
        .warnings
        .iter()
        .any(|w| w.contains("'SECRET' is not set here")));
}

#[test]
fn missing_files_and_needed_variables_are_errors_with_their_file() {
    let a = src(
        "a.yaml",
        "proxy:\n  endpoints:\n    /x: {$file: secret.txt}\n    /y: ${NOPE}\n    /z: {$bogus: 1}\n    /w: {$include: other.txt}\n    /v: {$env: A, target: 'http://x'}\n",
    );
    let l = load_with(&[a], &|_| None, &|_| {
        Err(std::io::ErrorKind::NotFound.into())
    });
    let msgs: Vec<String> = l.errors.iter().map(ToString::to_string).collect();
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("a.yaml: proxy.endpoints./x: $file secret.txt:")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m == "a.yaml: proxy.endpoints./y: environment variable 'NOPE' is not set"),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m == "a.yaml: proxy.endpoints./z: unsupported directive $bogus"),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.starts_with(
            "a.yaml: proxy.endpoints./w: $include other.txt: no configuration parser"
        )),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m == "a.yaml: proxy.endpoints./v: $env should not have adjacent keys"),
        "{msgs:?}"
    );
}

/// Files the tests hand to `$file` and `$include`, by path.
fn files(
    list: &'static [(&'static str, &'static str)],
) -> impl Fn(&Path) -> std::io::Result<String> {
    move |p: &Path| {
        list.iter()
            .find(|(name, _)| Path::new(name) == p)
            .map(|(_, text)| text.to_string())
            .ok_or_else(|| std::io::ErrorKind::NotFound.into())
    }
}

/// The app-config `npx @backstage/create-app` writes: `proxy:` whose
/// children are all commented out is a YAML null, as are `auth:` and an
/// endpoint's `headers:` left empty; an integration token the gateway never
/// reads is unset. Backstage starts with it, so must `check`.
#[test]
fn a_new_backstage_app_reads_without_errors() {
    let app = src(
        "app-config.yaml",
        r#"app:
  title: Scaffolded Backstage App
  baseUrl: http://localhost:3000
organization:
  name: My Company
backend:
  baseUrl: http://localhost:7007
  listen:
    port: 7007
  csp:
    connect-src: ["'self'", 'http:', 'https:']
  cors:
    origin: http://localhost:3000
    methods: [GET, HEAD, PATCH, POST, PUT, DELETE]
    credentials: true
  database:
    client: better-sqlite3
    connection: ':memory:'
  auth:
    # keys:
    #   - secret: ${BACKEND_SECRET}
integrations:
  github:
    - host: github.com
      token: ${GITHUB_TOKEN}
proxy:
  ### Example for how to add a proxy endpoint for the frontend.
  # endpoints:
  #   '/test':
  #     target: 'https://example.com'
  #     changeOrigin: true
techdocs:
  builder: 'local'
auth:
  providers:
    guest: {}
catalog:
  locations:
    - type: file
      target: ../../examples/entities.yaml
"#,
    );
    let l = load(&[app], &|_| None);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    assert_eq!(l.plan.as_ref().unwrap().endpoints.len(), 0);
    // A later file whose `headers:` is empty (null) adds nothing and
    // overrides nothing.
    let a = src(
        "a.yaml",
        "proxy:\n  endpoints:\n    /x:\n      target: http://x\n      headers: {X-A: a}\n",
    );
    let b = src(
        "b.yaml",
        "proxy:\n  endpoints:\n    /x:\n      headers:\n        # X-B: b\n",
    );
    let l = load(&[a, b], &|_| None);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    assert_eq!(
        l.filter_config["proxy"]["endpoints"]["/x"]["headers"]["X-A"],
        "a"
    );
}

/// A production overlay as real deployments write it: a database CA from
/// `$file` and TLS settings from `$include` (sections the gateway never
/// reads, never resolved even though the files are not here), and the
/// gateway's own values from `$file` and `$include`, relative to the file
/// that holds them.
#[test]
fn file_and_include_resolve_relative_to_their_file_and_only_where_read() {
    let base = src(
        "deploy/app-config.yaml",
        "backend:\n  baseUrl: http://backstage:7007\n",
    );
    let prod = src(
        "deploy/app-config.production.yaml",
        r#"backend:
  database:
    client: pg
    connection:
      ssl:
        ca: {$file: ./certs/db-ca.pem}
  https: {$include: ./https.yaml}
  auth:
    externalAccess:
      - type: static
        options:
          token: {$file: secrets/ci-token}
          subject: ci
proxy: {$include: proxy.yaml#proxy}
"#,
    );
    let read = files(&[
        ("deploy/secrets/ci-token", "ci-static-token-0123456789"),
        (
            "deploy/proxy.yaml",
            "proxy:\n  endpoints:\n    /pd: {$include: endpoints/pd.json}\nother: ignored\n",
        ),
        (
            "deploy/endpoints/pd.json",
            r#"{"target": "https://api.pagerduty.com", "allowedMethods": ["GET"]}"#,
        ),
    ]);
    let l = load_with(&[base, prod], &|_| None, &read);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    let ext = &l.filter_config["backend"]["auth"]["externalAccess"][0]["options"];
    assert_eq!(ext["token"], "ci-static-token-0123456789");
    assert_eq!(
        l.filter_config["proxy"]["endpoints"]["/pd"]["target"],
        "https://api.pagerduty.com"
    );
    assert!(l.resolved.get("other").is_none());
}

/// A CI configuration full of variables for plugins the gateway never
/// reads: unset, and no error. An unset variable in an optional gateway
/// value makes it absent (a warning says so); in a value the gateway needs,
/// it is an error naming the variable and the path, once.
#[test]
fn unset_variables_are_absent_and_errors_only_where_needed() {
    let ci = src(
        "app-config.ci.yaml",
        r#"integrations:
  github:
    - host: github.com
      apps:
        - appId: ${GITHUB_APP_ID}
          privateKey: ${GITHUB_APP_PRIVATE_KEY}
          clientSecret: ${GITHUB_APP_CLIENT_SECRET}
auth:
  providers:
    keycloak:
      development:
        clientSecret: ${KEYCLOAK_CLIENT_SECRET}
backend:
  baseUrl: http://localhost:7007
  cache:
    store: redis
    connection: ${REDIS_URL}
proxy:
  endpoints:
    /jenkins:
      target: http://jenkins:8080
      allowedHeaders: [X-Request-Id, '${EXTRA_HEADER}']
      pathRewrite:
        '^/api/proxy/jenkins/': '${JENKINS_PREFIX}'
    /sonar: ${SONAR_URL}
    /grafana:
      target: ${GRAFANA_URL}
  skipInvalidProxies: ${SKIP_INVALID}
"#,
    );
    let l = load(&[ci], &|_| None);
    let msgs: Vec<String> = l.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        msgs,
        [
            "app-config.ci.yaml: proxy.endpoints./sonar: environment variable 'SONAR_URL' is not set",
            "app-config.ci.yaml: proxy.endpoints./grafana.target: environment variable 'GRAFANA_URL' is not set",
        ]
    );
    for w in [
        "proxy.endpoints./jenkins.allowedHeaders[1]: environment variable 'EXTRA_HEADER'",
        "proxy.skipInvalidProxies: environment variable 'SKIP_INVALID'",
    ] {
        assert!(
            l.warnings.iter().any(|x| x.starts_with(w)),
            "{w} in {:?}",
            l.warnings
        );
    }
    assert_eq!(
        l.filter_config["proxy"]["endpoints"]["/jenkins"]["allowedHeaders"],
        serde_json::json!(["X-Request-Id"])
    );
    let env = |n: &str| (n == "SONAR_URL" || n == "GRAFANA_URL").then(|| "http://s".to_string());
    let ci = src("app-config.ci.yaml", "proxy:\n  endpoints:\n    /sonar: ${SONAR_URL}\n    /grafana: {target: '${GRAFANA_URL}'}\n");
    assert!(load(&[ci], &env).errors.is_empty());
}

/// `APP_CONFIG_<path>` overrides, applied after every file, values parsed
/// as JSON when they are JSON; a name Backstage would refuse is an error.
#[test]
fn app_config_environment_overrides() {
    let vars = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let over = env_overrides(&vars(&[
        ("APP_CONFIG_backend_baseUrl", "http://override:7007"),
        (
            "APP_CONFIG_proxy_endpoints",
            r#"{"/x": "http://x", "/y": {"target": "http://y", "allowedMethods": ["GET"]}}"#,
        ),
        ("APP_CONFIG_gateway_clockSkewSeconds", "5"),
        ("PATH", "/usr/bin"),
    ]))
    .unwrap()
    .unwrap();
    let file = src(
        "app-config.yaml",
        "backend: {baseUrl: 'http://file:7007'}\nproxy: {endpoints: {/z: 'http://z'}}\n",
    );
    let l = load(&[file, over], &|_| None);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    assert_eq!(
        l.filter_config["backend"]["baseUrl"],
        "http://override:7007"
    );
    assert_eq!(l.filter_config["gateway"]["clockSkewSeconds"], 5);
    let keys: Vec<&String> = l.filter_config["proxy"]["endpoints"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["/z", "/x", "/y"], "objects merge key by key");
    assert!(env_overrides(&vars(&[("PATH", "x")])).unwrap().is_none());
    assert!(
        env_overrides(&vars(&[("APP_CONFIG_a", "")]))
            .unwrap()
            .is_none(),
        "empty values are skipped"
    );
    let dashed = env_overrides(&vars(&[("APP_CONFIG_backend_base-url", "x")]))
        .unwrap()
        .unwrap();
    assert_eq!(
        dashed.value["backend"]["base-url"], "x",
        "a key part may hold '-'"
    );
    for bad in [
        "APP_CONFIG_",
        "APP_CONFIG_backend__x",
        "APP_CONFIG_1x",
        "APP_CONFIG_a-",
        "APP_CONFIG_a--b",
        "APP_CONFIG_a.b",
    ] {
        assert!(env_overrides(&vars(&[(bad, "v")])).is_err(), "{bad}");
    }
    assert!(
        env_overrides(&vars(&[("APP_CONFIG_a", "null")])).is_err(),
        "null is refused"
    );
    assert!(env_overrides(&vars(&[("APP_CONFIG_a", "1"), ("APP_CONFIG_a_b", "2")])).is_err());
}

/// Backstage silently ignores an endpoint key without a leading `/`; the
/// tool refuses it with the fix.
#[test]
fn an_endpoint_key_without_a_slash_is_refused_with_the_hint() {
    let a = src(
        "a.yaml",
        "proxy:\n  endpoints:\n    pagerduty: https://api.pagerduty.com\n",
    );
    let msgs: Vec<String> = load(&[a], &|_| None)
        .errors
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        msgs,
        ["a.yaml: proxy.endpoints.pagerduty: endpoint keys start with '/': write '/pagerduty' (Backstage ignores this endpoint)"]
    );
}

#[test]
fn only_the_parts_the_gateway_uses_are_taken() {
    let a = src("a.yaml", "app: {title: x}\ncatalog: {rules: []}\nbackend: {baseUrl: 'http://b', listen: {port: 7007}, database: {client: pg}, auth: {keys: [{secret: c2VjcmV0}]}}\nproxy: {endpoints: {}}\n");
    let l = load(&[a], &|_| None);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    let keys: Vec<&String> = l.filter_config.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["proxy", "backend"]);
    let backend: Vec<&String> = l.filter_config["backend"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(backend, ["baseUrl", "auth"]);
}

#[test]
fn yaml_errors_name_the_file_and_location_only() {
    let e = load_yaml("bad.yaml", "proxy: [unclosed TOPSECRET").unwrap_err();
    assert!(e.to_string().starts_with("bad.yaml: not valid YAML"));
    assert!(!e.to_string().contains("TOPSECRET"));
    assert!(load_yaml("list.yaml", "- a\n- b\n").is_err());
    assert!(load_yaml("empty.yaml", "")
        .unwrap()
        .value
        .as_object()
        .unwrap()
        .is_empty());
}
