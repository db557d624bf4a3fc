use crate::appconfig::load;
use crate::test_support::src;

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

/// An unset variable in a policy, a budget or CORS would widen access or
/// void a limit if it made its value absent (a rule's `path` would match
/// every path): there it is an error, never an empty value.
#[test]
fn an_unset_variable_in_a_policy_is_an_error() {
    let policy = src(
        "app-config.gateway.yaml",
        r#"backend:
  baseUrl: http://backstage:7007
  cors:
    origin: ${APP_ORIGIN}
  auth:
    externalAccess:
      - type: static
        options: {token: static-token-0123, subject: ci}
        accessRestrictions:
          - plugin: ${RESTRICTED_TO}
proxy:
  endpoints:
    /pd: https://api.pagerduty.com
gateway:
  prefix: ${PROXY_PREFIX}
  access:
    /pd:
      allow: [user]
      rules:
        - path: ${ADMIN_PATH}
          allow: ['group:default/sre']
  rateLimits:
    /pd:
      total: {requests: '${RATE}', seconds: 60}
"#,
    );
    let l = load(&[policy], &|_| None);
    let msgs: Vec<String> = l.errors.iter().map(ToString::to_string).collect();
    for (path, var) in [
        ("backend.cors.origin", "APP_ORIGIN"),
        (
            "backend.auth.externalAccess[0].accessRestrictions[0].plugin",
            "RESTRICTED_TO",
        ),
        ("gateway.prefix", "PROXY_PREFIX"),
        ("gateway.access./pd.rules[0].path", "ADMIN_PATH"),
        ("gateway.rateLimits./pd.total.requests", "RATE"),
    ] {
        let want =
            format!("app-config.gateway.yaml: {path}: environment variable '{var}' is not set");
        assert!(msgs.contains(&want), "{want} in {msgs:?}");
    }
    // Set, and a number given as a string, they load.
    let set = |n: &str| {
        Some(match n {
            "APP_ORIGIN" => "https://backstage.example.com".to_string(),
            "PROXY_PREFIX" => "/api/proxy".to_string(),
            "ADMIN_PATH" => "/admin".to_string(),
            "RATE" => "100".to_string(),
            _ => "catalog".to_string(),
        })
    };
    let policy = src(
        "app-config.gateway.yaml",
        "gateway:\n  prefix: ${PROXY_PREFIX}\n  access:\n    /pd: {rules: [{path: '${ADMIN_PATH}', allow: [user]}]}\n  rateLimits:\n    /pd: {total: {requests: '${RATE}', seconds: 60}}\nproxy: {endpoints: {/pd: 'https://api.pagerduty.com'}}\n",
    );
    let l = load(&[policy], &set);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
}
