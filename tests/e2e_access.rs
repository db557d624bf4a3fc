//! `gateway.access` in real Envoy: who may call each endpoint, with tokens
//! from key sets fetched through Envoy. A group member and a non-member
//! (the group read from the user token's `ent`), a plugin and a user on a
//! `user`-only endpoint, a plugin acting for a member (`obo`: a limited
//! token carries no `ent`), a rule by method and path; every refusal is
//! Backstage's 403 shape, reaches nobody and is counted.

use backstage_proxy_testkit as support;

use support::mint::*;
use support::*;

const AUTH: &str = "/api/auth/.well-known/jwks.json";
const CATALOG: &str = "/api/catalog/.backstage/auth/v1/jwks.json";
const SCAFFOLDER: &str = "/api/scaffolder/.backstage/auth/v1/jwks.json";

#[test]
fn who_may_call_each_endpoint() {
    let keys = KeyServer::start();
    let up = Upstream::start(&[]);
    let (kp, upp) = (keys.port, up.port);
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/people":"http://127.0.0.1:{upp}/people","/sre":"http://127.0.0.1:{upp}/sre"}}}},
            "backend":{{"baseUrl":"http://127.0.0.1:{kp}"}},
            "gateway":{{"access":{{
              "/people":{{"allow":["user"]}},
              "/sre":{{"allow":["group:default/sre","plugin:catalog"],
                       "rules":[{{"methods":["DELETE"],"path":"/incidents","allow":["user:default/lead"]}}]}}}}}}}}"#
    );
    let logs = TempDir::new("access-log");
    let access_log = logs.0.join("access.log");
    let mut opts = EnvoyOptions::new(config)
        .cluster(cluster_for_port(upp), upp)
        .cluster(cluster_for_port(kp), kp);
    opts.access_log = Some(access_log.clone());
    let envoy = Envoy::start(opts);
    let auth = Es256::new(1, "auth-1");
    let cat = Es256::new(2, "catalog-1");
    keys.set(AUTH, KeyMode::Serve(key_set(&[&auth])));
    keys.set(CATALOG, KeyMode::Serve(key_set(&[&cat])));
    let scaf = Es256::new(3, "scaffolder-1");
    keys.set(SCAFFOLDER, KeyMode::Serve(key_set(&[&scaf])));
    let t = now();
    let member = user_token_owning(
        &auth,
        "user:default/bob",
        &["user:default/bob", "group:default/sre"],
        t,
        t + 3600,
    );
    let outsider = user_token_owning(
        &auth,
        "user:default/eve",
        &["user:default/eve", "group:default/dev"],
        t,
        t + 3600,
    );
    let lead = user_token_owning(
        &auth,
        "user:default/lead",
        &["user:default/lead"],
        t,
        t + 3600,
    );
    let plugin = plugin_token(&cat, "catalog", "proxy", t, t + 3600, None);
    let scaffolder = plugin_token(&scaf, "scaffolder", "proxy", t, t + 3600, None);
    let obo = plugin_token(
        &scaf,
        "scaffolder",
        "proxy",
        t,
        t + 600,
        Some(&limited_user_token(&auth, "user:default/bob", t, t + 600)),
    );

    let call = |method: &str, path: &str, token: &str| {
        let m = unique();
        let r = envoy.request(
            method,
            &format!("/api/proxy{path}?{m}"),
            &[("authorization", &format!("Bearer {token}"))],
        );
        (r, m)
    };
    let allowed = |method: &str, path: &str, token: &str, who: &str| {
        let (r, m) = call(method, path, token);
        assert_eq!(r.status, 200, "{who} {method} {path}: {}", r.text());
        assert!(up.find(&m).is_some());
    };
    let refused = |method: &str, path: &str, token: &str, who: &str| {
        let (r, m) = call(method, path, token);
        assert_eq!(r.status, 403, "{who} {method} {path}: {}", r.text());
        let body = r.json();
        assert_eq!(body["error"]["name"], "NotAllowedError", "{who}");
        assert_eq!(body["response"]["statusCode"], 403);
        up.assert_never(&m);
    };

    // A user-only endpoint: users in, plugins out.
    allowed("GET", "/people/x", &outsider, "a user");
    refused("GET", "/people/x", &plugin, "a plugin");
    // A group's endpoint: the member in, the non-member out, a named
    // plugin in, another plugin out, a plugin acting for the member out
    // (its limited user token carries no ent).
    allowed("GET", "/sre/x", &member, "a member");
    refused("GET", "/sre/x", &outsider, "a non-member");
    allowed("GET", "/sre/x", &plugin, "plugin:catalog");
    refused("GET", "/sre/x", &scaffolder, "another plugin");
    refused("GET", "/sre/x", &obo, "obo for a member");
    // The rule: DELETE under /incidents only for the lead, in any spelling.
    refused("DELETE", "/sre/incidents/1", &member, "a member deleting");
    refused("DELETE", "/sre/%69ncidents/1", &member, "a member, encoded");
    allowed("DELETE", "/sre/incidents/1", &lead, "the lead");
    allowed("DELETE", "/sre/other", &member, "a member elsewhere");
    // No credentials: Backstage's 401 first.
    let r = envoy.get("/api/proxy/people/x", &[]);
    assert_eq!(r.status, 401);

    assert_eq!(
        envoy.counter("wasmcustom.backstage_proxy.denied.not_allowed_by_policy"),
        6
    );

    // Who did: Envoy's own access log, one JSON line per request, with the
    // principal, the endpoint and the decision, and never a token.
    let text = wait_for_lines(&access_log, 12);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |principal: &str, decision: &str, status: u64| {
        lines.iter().any(|l| {
            l["principal"] == principal && l["decision"] == decision && l["status"] == status
        })
    };
    assert!(find("user:default/eve", "allowed", 200), "{text}");
    assert!(
        find("plugin:catalog", "not_allowed_by_policy", 403),
        "{text}"
    );
    assert!(
        find("user:default/eve", "not_allowed_by_policy", 403),
        "{text}"
    );
    assert!(find("user:default/lead", "allowed", 200), "{text}");
    assert!(find("-", "missing_credentials", 401), "{text}");
    assert!(lines
        .iter()
        .any(|l| l["endpoint"] == "/sre" && l["principal"] == "user:default/bob"));
    for secret in [&member, &outsider, &lead, &plugin, &scaffolder, &obo] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!text.contains(signature), "a token in the access log");
    }
    assert!(!text.contains('?'), "no query strings: {text}");
}

/// The README's worked example, the file itself (targets and the backend
/// pointed at loopback), in Envoy: every row of the README's table, and
/// the access-log line each leaves.
#[test]
fn the_readme_worked_example_answers_as_documented() {
    use backstage_proxy_wasm_cli::appconfig::{load, load_yaml};
    let root = repo_root();
    let file =
        std::fs::read_to_string(root.join("examples/app-config/app-config.policies.yaml")).unwrap();
    let readme = std::fs::read_to_string(root.join("docs/access.md")).unwrap();
    let section = readme.split("## Worked example").nth(1).unwrap();
    let block = section
        .split("```yaml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    assert_eq!(block, file, "the README shows the example file as it is");

    let keys = KeyServer::start();
    let up = Upstream::start(&[]);
    let (kp, upp) = (keys.port, up.port);
    let yaml = file
        .replace(
            "https://api.pagerduty.com",
            &format!("http://127.0.0.1:{upp}/pagerduty"),
        )
        .replace(
            "https://api.github.com",
            &format!("http://127.0.0.1:{upp}/github"),
        )
        .replace(
            "http://backstage.backstage.svc.cluster.local:7007",
            &format!("http://127.0.0.1:{kp}"),
        );
    const CI: &str = "ci-proxy-token-0123456789";
    let env = |name: &str| (name == "CI_PROXY_TOKEN").then(|| CI.to_string());
    let loaded = load(
        &[load_yaml("app-config.policies.yaml", &yaml).unwrap()],
        &env,
    );
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.vm_vars, ["GITHUB_TOKEN", "PAGERDUTY_TOKEN"]);
    let logs = TempDir::new("worked-example");
    let access_log = logs.0.join("access.log");
    let mut opts = EnvoyOptions::new(loaded.filter_config.to_string())
        .cluster(cluster_for_port(upp), upp)
        .cluster(cluster_for_port(kp), kp)
        .env("PAGERDUTY_TOKEN", "pd-example")
        .env("GITHUB_TOKEN", "gh-example");
    opts.access_log = Some(access_log.clone());
    let envoy = Envoy::start(opts);
    let auth = Es256::new(1, "auth-1");
    let scaf = Es256::new(3, "scaffolder-1");
    keys.set(AUTH, KeyMode::Serve(key_set(&[&auth])));
    keys.set(SCAFFOLDER, KeyMode::Serve(key_set(&[&scaf])));
    let t = now();
    let user = |sub: &str, group: &str| user_token_owning(&auth, sub, &[sub, group], t, t + 3600);
    let bob = user("user:default/bob", "group:default/sre");
    let lead = user("user:default/oncall-lead", "group:default/oncall");
    let eve = user("user:default/eve", "group:default/dev");
    let scaffolder = plugin_token(&scaf, "scaffolder", "proxy", t, t + 3600, None);

    // No window of a minute ends during the test.
    while now() % 60 > 45 {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let call = |method: &str, path: &str, token: Option<&str>| {
        let m = unique();
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        let r = envoy.request(method, &format!("/api/proxy{path}?{m}"), &headers);
        if r.status == 200 {
            let seen = up.find(&m).unwrap();
            // The shared credential, injected; the caller's token, gone.
            let injected = seen.header("authorization").unwrap();
            assert!(
                injected == "Token token=pd-example" || injected == "Bearer gh-example",
                "{injected}"
            );
        } else {
            up.assert_never(&m);
        }
        (
            r.status,
            r.json()["error"]["name"].as_str().map(str::to_string),
        )
    };
    let name = |n: &str| Some(n.to_string());
    assert_eq!(
        call("GET", "/github/user", None),
        (401, name("AuthenticationError"))
    );
    assert_eq!(call("GET", "/pagerduty/services", Some(&bob)), (200, None));
    assert_eq!(
        call("POST", "/pagerduty/incidents", Some(&bob)),
        (403, name("NotAllowedError"))
    );
    assert_eq!(
        call("POST", "/pagerduty/incidents", Some(&lead)),
        (200, None)
    );
    assert_eq!(
        call("GET", "/pagerduty/services", Some(&lead)),
        (403, name("NotAllowedError"))
    );
    assert_eq!(
        call("GET", "/pagerduty/services", Some(&eve)),
        (403, name("NotAllowedError"))
    );
    assert_eq!(call("GET", "/github/user", Some(&eve)), (200, None));
    assert_eq!(
        call("GET", "/pagerduty/services", Some(&scaffolder)),
        (200, None)
    );
    assert_eq!(
        call("GET", "/github/user", Some(&scaffolder)),
        (403, name("NotAllowedError"))
    );
    assert_eq!(call("GET", "/github/user", Some(CI)), (200, None));
    assert_eq!(
        call("GET", "/pagerduty/services", Some(CI)),
        (403, name("NotAllowedError"))
    );
    // Bob's budget: 60 a minute, one spent above.
    for i in 2..=60 {
        assert_eq!(
            call("GET", "/pagerduty/services", Some(&bob)).0,
            200,
            "request {i}"
        );
    }
    let m = unique();
    let r = envoy.request(
        "GET",
        &format!("/api/proxy/pagerduty/services?{m}"),
        &[("authorization", &format!("Bearer {bob}"))],
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["name"], "TooManyRequestsError");
    assert!(r.header("retry-after").is_some());
    up.assert_never(&m);

    // Counters per endpoint and outcome: only those that happened, so
    // bounded by the configuration (endpoints × outcomes).
    let per_endpoint: std::collections::BTreeMap<String, u64> = envoy
        .stats()
        .into_iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("wasmcustom.backstage_proxy.endpoint.")
                .map(|n| (n.to_string(), v))
        })
        .collect();
    let want: std::collections::BTreeMap<String, u64> = [
        ("github.allowed", 2),
        ("github.denied.missing_credentials", 1),
        ("github.denied.not_allowed_by_policy", 1),
        ("pagerduty.allowed", 62),
        ("pagerduty.denied.not_allowed_by_policy", 4),
        ("pagerduty.denied.rate_limited", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let counted: std::collections::BTreeMap<String, u64> = per_endpoint
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(counted, want);
    // The Wasm filter defines a counter when it first counts; Envoy lets
    // the native module define its counters only with the configuration,
    // so all exist from the start (docs/native.md#metrics).
    let defined = match artifact() {
        Artifact::Wasm => want.len(),
        Artifact::Native => 2 * (1 + backstage_proxy_core::reply::Reason::ALL.len()),
    };
    assert_eq!(per_endpoint.len(), defined, "{per_endpoint:?}");

    let text = wait_for_lines(&access_log, 11 + 59 + 1);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |principal: &str, endpoint: &str, decision: &str| {
        lines.iter().any(|l| {
            l["principal"] == principal && l["endpoint"] == endpoint && l["decision"] == decision
        })
    };
    assert!(has("-", "/github", "missing_credentials"), "{text}");
    assert!(
        has("user:default/bob", "/pagerduty", "not_allowed_by_policy"),
        "{text}"
    );
    assert!(
        has("user:default/oncall-lead", "/pagerduty", "allowed"),
        "{text}"
    );
    assert!(has("plugin:scaffolder", "/pagerduty", "allowed"), "{text}");
    assert!(has("ci-pipeline", "/github", "allowed"), "{text}");
    assert!(
        has("user:default/bob", "/pagerduty", "rate_limited"),
        "{text}"
    );
    assert!(
        !text.contains(CI) && !text.contains("pd-example"),
        "a secret in the access log"
    );
}
