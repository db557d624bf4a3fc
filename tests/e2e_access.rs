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
        .cluster(format!("http_127.0.0.1_{upp}"), upp)
        .cluster(format!("http_127.0.0.1_{kp}"), kp);
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
