use super::*;
use crate::test_support::src;

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

/// `secure: false` on an https endpoint: one warning naming the endpoint
/// and saying what it turns off (the filter's own note only says the option
/// is Envoy's); none for `secure: true`, an http target, or the legacy
/// form's other endpoints.
#[test]
fn secure_false_warns_that_the_upstreams_certificate_is_not_checked() {
    for (yaml, path) in [
        ("proxy:\n  endpoints:\n    /jenkins: {target: 'https://jenkins.internal:8443/api', secure: false}\n    /ok: {target: 'https://api.example.com', secure: true}\n    /plain: {target: 'http://plain.example.com', secure: false}\n", "proxy.endpoints./jenkins"),
        ("proxy:\n  /jenkins: {target: 'https://jenkins.internal:8443/api', secure: false}\n  /ok: https://api.example.com\n", "proxy./jenkins"),
    ] {
        let l = load(&[src("a.yaml", yaml)], &|_| None);
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        let about: Vec<String> = l
            .warnings
            .iter()
            .filter(|w| w.message.contains("certificate"))
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            about,
            [format!("a.yaml: {path}.secure: false turns off certificate verification for https://jenkins.internal:8443: neither the issuer nor the name of the upstream's certificate is checked, so whoever answers at that address receives this endpoint's requests with the headers the gateway injects; remove it once the upstream's certificate is one the gateway trusts (a private CA: render --ca-file)")],
            "{yaml}"
        );
    }
}
