use std::path::Path;

use crate::appconfig::{load, load_with};
use crate::test_support::src;

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
    // The token was resolved here; what the tool writes is its digest.
    assert_eq!(
        l.filter_config["backend"]["auth"]["externalAccess"][0]["options"]["tokenDigest"],
        format!("sha256:{}", crate::oci::sha256_hex(b"tok-0123456789"))
    );
    assert_eq!(l.vm_vars, ["KEY", "SECRET"]);
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message.contains("'SECRET' is not set here")));
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
    assert_eq!(
        ext["tokenDigest"],
        format!(
            "sha256:{}",
            crate::oci::sha256_hex(b"ci-static-token-0123456789")
        )
    );
    assert!(ext.get("token").is_none());
    assert_eq!(
        l.filter_config["proxy"]["endpoints"]["/pd"]["target"],
        "https://api.pagerduty.com"
    );
    assert!(l.resolved.get("other").is_none());
}

/// A CI configuration full of variables for plugins the gateway never
/// reads: unset, and no error. An unset variable in an optional gateway
/// value makes it absent (a warning says so); in a value the gateway needs,
/// it is an error naming the variable and the path, once; where no string
/// is allowed, it is the same error as when set.
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
            // A variable's value is a string, never the boolean needed
            // here: an error whether or not it is set.
            "app-config.ci.yaml: proxy.skipInvalidProxies: must be a boolean, but is of type string",
        ]
    );
    for w in [
        "proxy.endpoints./jenkins.allowedHeaders[1]: environment variable 'EXTRA_HEADER'",
        "proxy.skipInvalidProxies: environment variable 'SKIP_INVALID'",
    ] {
        assert!(
            l.warnings
                .iter()
                .any(|x| format!("{}: {}", x.path, x.message).starts_with(w)),
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
