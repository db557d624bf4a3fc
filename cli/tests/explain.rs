//! `explain` (`docs/cli.md#explain`) answers as the gateway does: the same
//! requests asked of `explain` and sent through the rendered gateway in
//! real Envoy get the same status and reach the same upstream path.

mod common;

use std::path::Path;

use backstage_proxy_testkit::{b64url, unique, Envoy, TempDir, Upstream};
use common::*;
use serde_json::Value;

const CI: &str = "explain-ci-token-0001";
const OPS: &str = "explain-ops-token-0001";

fn app_config(port: u16) -> String {
    format!(
        r#"
backend:
  auth:
    externalAccess:
      - type: static
        options: {{ token: "{CI}", subject: ci }}
      - type: static
        options: {{ token: "{OPS}", subject: ops }}
proxy:
  endpoints:
    /svc:
      target: http://127.0.0.1:{port}/base
      allowedMethods: [GET, POST]
    /svc/admin:
      target: http://127.0.0.1:{port}/base/admin
    /open:
      target: http://127.0.0.1:{port}/open
      credentials: dangerously-allow-unauthenticated
    /rw:
      target: http://127.0.0.1:{port}
      pathRewrite: {{ "^/api/proxy/rw/": "/v2/" }}
gateway:
  access:
    /svc:
      allow: [subject:ops]
      rules:
        - methods: [GET]
          path: /public
          allow: [subject:ci, subject:ops]
    /svc/admin:
      allow: [subject:ops]
"#
    )
}

fn explain(input: &str, method: &str, path: &str, token: Option<&str>) -> Value {
    let mut args = vec![
        "explain", input, "-X", method, "--path", path, "--format", "json",
    ];
    let mut env = Vec::new();
    if let Some(t) = token {
        args.extend(["--token-env", "EXPLAIN_TOKEN"]);
        env.push(("EXPLAIN_TOKEN", t));
    }
    let o = run_cli(&args, &env, None);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn explain_and_the_gateway_decide_alike() {
    let up = Upstream::start(&[]);
    let dir = TempDir::new("explain");
    let input = write(&dir.0, "app-config.yaml", &app_config(up.port));
    let out = dir.0.join("envoy.yaml").display().to_string();
    let o = render_to(&input, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let envoy = Envoy::run_file(Path::new(&out), 1, TempDir::new("explain-envoy"), &[], &[])
        .unwrap_or_else(|(log, _)| panic!("{log}"));
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("GET", "/api/proxy/svc/public/a", Some(CI)),
        ("GET", "/api/proxy/svc/private", Some(CI)),
        ("GET", "/api/proxy/svc/private", Some(OPS)),
        ("POST", "/api/proxy/svc/public/a", Some(CI)),
        ("DELETE", "/api/proxy/svc/x", Some(OPS)),
        ("GET", "/api/proxy/svc/admin/users", Some(CI)),
        ("GET", "/api/proxy/svc/admin/users", Some(OPS)),
        // Through the parent endpoint into the nested one's target.
        ("GET", "/api/proxy/svc/ADMIN/users", Some(CI)),
        ("GET", "/api/proxy/svc/public/a", None),
        (
            "GET",
            "/api/proxy/svc/public/a",
            Some("not-a-configured-token"),
        ),
        ("GET", "/api/proxy/open/x", None),
        ("GET", "/api/proxy/rw/items?q=1", Some(CI)),
        ("GET", "/api/proxy/nowhere", Some(CI)),
        ("GET", "/api/proxy/svc/%2e%2e/x", Some(OPS)),
    ];
    for &(method, path, token) in cases {
        let m = unique();
        let sep = if path.contains('?') { '&' } else { '?' };
        let path = format!("{path}{sep}{m}");
        let said = explain(&input, method, &path, token);
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-length", "0")];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        let r = envoy.request(method, &path, &headers);
        let d = &said["decision"];
        match d["outcome"].as_str() {
            Some("forwarded") => {
                assert_eq!(r.status, 200, "{method} {path}: explain said {d}");
                let seen = up.find(&m).unwrap();
                let upstream = d["upstream"].as_str().unwrap();
                assert!(
                    upstream.ends_with(&seen.target),
                    "{method} {path}: explain said {upstream}, upstream got {}",
                    seen.target
                );
            }
            Some("refused") => {
                assert_eq!(
                    Some(u64::from(r.status)),
                    d["status"].as_u64(),
                    "{method} {path}: {d}"
                );
                up.assert_never(&m);
            }
            other => panic!("{method} {path}: {other:?}"),
        }
    }
}

#[test]
fn explain_names_the_rule_and_the_budgets_for_a_principal() {
    let dir = TempDir::new("explain-principal");
    let input = write(
        &dir.0,
        "app-config.yaml",
        r#"
backend: { baseUrl: "http://127.0.0.1:7007" }
proxy:
  endpoints:
    /pd: https://api.pagerduty.com
gateway:
  access:
    /pd:
      allow: [group:default/ops]
      rules:
        - { methods: [GET], path: /incidents, allow: [user] }
  rateLimits:
    /pd: { perPrincipal: { requests: 100, seconds: 60 } }
"#,
    );
    let ask = |method: &str, path: &str, extra: &[&str]| -> Value {
        let mut args = vec![
            "explain", &input, "-X", method, "--path", path, "--format", "json",
        ];
        args.extend_from_slice(extra);
        let o = run_cli(&args, &[], None);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(&stdout(&o)).unwrap()
    };
    let v = ask(
        "GET",
        "/api/proxy/pd/incidents/7",
        &["--principal", "user:default/eve"],
    );
    assert_eq!(
        v["access"]["decidedBy"]["rule"],
        "gateway.access./pd.rules[0]"
    );
    assert_eq!(v["decision"]["outcome"], "forwarded");
    assert_eq!(
        v["decision"]["upstream"],
        "https://api.pagerduty.com/incidents/7"
    );
    assert_eq!(v["budgets"]["spent"][0]["perPrincipal"]["requests"], 100);
    let v = ask(
        "POST",
        "/api/proxy/pd/incidents",
        &["--principal", "user:default/eve"],
    );
    assert_eq!(v["access"]["decidedBy"]["rule"], "gateway.access./pd.allow");
    assert_eq!(v["decision"]["status"], 403);
    assert!(
        v.get("budgets").is_none(),
        "a refused request spends no budget"
    );
    let v = ask(
        "POST",
        "/api/proxy/pd/incidents",
        &[
            "--principal",
            "user:default/eve",
            "--group",
            "group:default/ops",
        ],
    );
    assert_eq!(v["decision"]["outcome"], "forwarded");
    // A user token must be verified against Backstage's key set: explain
    // says so rather than guessing.
    let now = backstage_proxy_testkit::now();
    let user_token = format!(
        "{}.{}.c2ln",
        b64url(br#"{"alg":"ES256","typ":"vnd.backstage.user","kid":"k"}"#),
        b64url(
            format!(
                r#"{{"sub":"user:default/eve","iat":{now},"exp":{}}}"#,
                now + 3600
            )
            .as_bytes()
        )
    );
    let o = run_cli(
        &[
            "explain",
            &input,
            "--path",
            "/api/proxy/pd/x",
            "--token-env",
            "T",
            "--format",
            "json",
        ],
        &[("T", &user_token)],
        None,
    );
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["decision"]["outcome"], "undecided", "{v}");
    // Mistyped callers are usage errors.
    for bad in ["eve", "users:default/eve", "user:"] {
        let o = run_cli(
            &[
                "explain",
                &input,
                "--path",
                "/api/proxy/pd",
                "--principal",
                bad,
            ],
            &[],
            None,
        );
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
    }
}

/// With a Backstage permission (`docs/permissions.md`): a user's answer is
/// Backstage's, which explain does not ask, and says so; a service
/// principal's is decided from its access restrictions, as the gateway
/// decides it.
#[test]
fn explain_says_who_answers_a_permission() {
    let dir = TempDir::new("explain-permission");
    let input = write(
        &dir.0,
        "app-config.yaml",
        &format!(
            r#"
backend:
  baseUrl: "http://127.0.0.1:7007"
  auth:
    externalAccess:
      - type: static
        options: {{ token: "{CI}", subject: ci }}
        accessRestrictions:
          - plugin: proxy
            permission: proxy.endpoint.pd
proxy:
  endpoints:
    /pd: https://api.pagerduty.com
gateway:
  access:
    /pd:
      permission: proxy.endpoint.pd
      rules:
        - methods: [POST]
          path: /incidents
          permission: {{ name: proxy.endpoint.pd.write, action: update }}
"#
        ),
    );
    let ask = |method: &str, path: &str, principal: Option<&str>, token: Option<&str>| {
        let mut args = vec![
            "explain", &input, "-X", method, "--path", path, "--format", "json",
        ];
        let mut env = Vec::new();
        if let Some(p) = principal {
            args.extend(["--principal", p]);
        }
        if let Some(t) = token {
            args.extend(["--token-env", "T"]);
            env.push(("T", t));
        }
        let o = run_cli(&args, &env, None);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<Value>(&stdout(&o)).unwrap()
    };
    let v = ask(
        "POST",
        "/api/proxy/pd/incidents",
        Some("user:default/eve"),
        None,
    );
    assert_eq!(v["decision"]["outcome"], "undecided", "{v}");
    let why = v["decision"]["why"].as_str().unwrap();
    assert!(why.contains("proxy.endpoint.pd.write:update"), "{why}");
    assert_eq!(
        v["access"]["decidedBy"]["permission"],
        "proxy.endpoint.pd.write:update"
    );
    // The static token's restrictions list the endpoint's permission only.
    let v = ask("GET", "/api/proxy/pd/services", None, Some(CI));
    assert_eq!(v["decision"]["outcome"], "forwarded", "{v}");
    assert_eq!(v["decision"]["permissions"], "proxy.endpoint.pd=ALLOW");
    let v = ask("POST", "/api/proxy/pd/incidents", None, Some(CI));
    assert_eq!(v["decision"]["status"], 403, "{v}");
    assert_eq!(v["decision"]["reason"], "permission_denied");
}
