//! Secrets stay secret (`docs/tokens.md#secrets-in-the-configuration`):
//! no output of the tool holds a value that calls an endpoint or signs a
//! token, whichever gateway it is written for; what the outputs hold
//! instead (a static token's digest, `${VAR}` for the gateway's
//! environment) works in real Envoy; and `auth` reaches the upstream as
//! Node sends it.

mod common;

use std::path::Path;

use backstage_proxy_testkit::{secret, unique, wasm_path, Envoy, TempDir, Upstream};
use common::*;

const APP_CONFIG: &str = r#"
backend:
  baseUrl: https://backstage.example.com
  auth:
    keys:
      - secret: ${LEGACY_SECRET}
    externalAccess:
      - type: static
        options: { token: literal-static-token-4b1d, subject: literal }
      - type: static
        options: { token: "${CI_TOKEN}", subject: ci }
      - type: static
        options: { token: { $env: BOT_TOKEN }, subject: bot }
      - type: legacy
        options: { secret: "${CRON_SECRET}", subject: cron }
proxy:
  endpoints:
    /pagerduty:
      target: https://api.pagerduty.com
      headers: { Authorization: "Token token=${PAGERDUTY_TOKEN}" }
    /sonarqube:
      target: https://sonarcloud.io/api
      allowedMethods: [GET]
      auth: "${SONARQUBE_TOKEN}:"
"#;

/// Every secret value the app-config above reads, as set where the tool
/// runs.
const ENV: [(&str, &str); 7] = [
    ("LEGACY_SECRET", "bGVnYWN5LXNlY3JldC0wMTIzNDU2Nzg5"),
    ("CI_TOKEN", "ci-token-from-env-7f3a"),
    ("BOT_TOKEN", "bot-token-from-env-c0de"),
    ("CRON_SECRET", "Y3Jvbi1zZWNyZXQtMDEyMzQ1Njc4OQ"),
    ("PAGERDUTY_TOKEN", "pd-token-from-env-9e1f"),
    ("SONARQUBE_TOKEN", "squ_token_from_env_51ab"),
    ("UNUSED", "never-read-by-the-config"),
];

fn sha256(s: &str) -> String {
    hmac_sha256::Hash::hash(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every output the tool writes for the app-config above: the envoy.yaml,
/// each Istio mode and Envoy Gateway.
fn outputs(input: &str) -> Vec<(String, String)> {
    let wasm = wasm_path().display().to_string();
    let mut runs: Vec<Vec<&str>> = vec![vec!["render", "--wasm", &wasm]];
    for mode in MODES {
        let mut args = mode.to_vec();
        args.extend([
            "--url",
            "oci://ghcr.io/example/backstage-proxy-wasm:1.0.0",
            "--sha256",
            DIGEST,
        ]);
        runs.push(args);
    }
    runs.into_iter()
        .map(|mut args| {
            args.push(input);
            let o = run_cli(&args, &ENV, None);
            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
            (args.join(" "), stdout(&o))
        })
        .collect()
}

#[test]
fn no_output_holds_a_token_or_secret_and_each_holds_what_replaces_it() {
    let dir = TempDir::new("secrets");
    let input = write(&dir.0, "app-config.yaml", APP_CONFIG);
    let sonar_basic = {
        let v = format!("{}:", ENV[5].1);
        // Buffer.from(v).toString('base64'), computed independently.
        let o = std::process::Command::new("node")
            .args([
                "-e",
                &format!("process.stdout.write(Buffer.from({v:?}).toString('base64'))"),
            ])
            .output()
            .expect("node is needed to compute Buffer.toString('base64')");
        String::from_utf8(o.stdout).unwrap()
    };
    let mut forbidden: Vec<String> = ENV.iter().map(|(_, v)| v.to_string()).collect();
    forbidden.push("literal-static-token-4b1d".into());
    forbidden.push(sonar_basic);
    for (what, text) in outputs(&input) {
        for value in &forbidden {
            assert!(
                !text.contains(value.as_str()),
                "{what} holds a secret value"
            );
        }
        for token in ["literal-static-token-4b1d", ENV[1].1, ENV[2].1] {
            assert!(
                text.contains(&format!("sha256:{}", sha256(token))),
                "{what}: no digest of a static token"
            );
        }
        for var in [
            "LEGACY_SECRET",
            "CRON_SECRET",
            "PAGERDUTY_TOKEN",
            "SONARQUBE_TOKEN",
        ] {
            assert!(
                text.contains(&format!("${{{var}}}")),
                "{what}: ${{{var}}} is not left for the gateway"
            );
        }
    }
}

/// A secret written as a value in the app-config is as readable in the
/// output: a warning says where, never what.
#[test]
fn a_literal_legacy_secret_is_warned_about_by_path_only() {
    let dir = TempDir::new("secrets-literal");
    let input = write(
        &dir.0,
        "app-config.yaml",
        "backend:\n  auth:\n    keys:\n      - secret: bGl0ZXJhbC1sZWdhY3ktc2VjcmV0\nproxy:\n  endpoints:\n    /x: http://x.example\n",
    );
    let o = run_cli(&["check", &input], &[], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("backend.auth.keys[0].secret: a literal secret is written into the gateway's configuration"), "{err}");
    assert!(!err.contains("bGl0ZXJhbC1sZWdhY3ktc2VjcmV0"), "{err}");
}

/// The same app-config is valid with and without the secrets' variables
/// set where `check` runs: they are the gateway's to provide.
#[test]
fn check_answers_the_same_whether_or_not_the_secrets_are_set_here() {
    let dir = TempDir::new("secrets-check");
    let input = write(&dir.0, "app-config.yaml", APP_CONFIG);
    let with = run_cli(&["check", &input], &ENV, None);
    let without = run_cli(&["check", &input], &[], None);
    assert!(with.status.success(), "{}", stderr(&with));
    assert!(without.status.success(), "{}", stderr(&without));
    for var in ["LEGACY_SECRET", "CI_TOKEN", "BOT_TOKEN", "SONARQUBE_TOKEN"] {
        assert!(
            stderr(&without).contains(&format!("'{var}'")),
            "{var}: {}",
            stderr(&without)
        );
    }
}

/// What the outputs hold works: a static token known only by its digest,
/// one left as `${VAR}` for the gateway's environment, and `auth` sent as
/// Node sends it, in real Envoy.
#[test]
fn a_gateway_rendered_without_secrets_admits_the_tokens_and_sends_auth() {
    let up = Upstream::start(&[]);
    let dir = TempDir::new("secrets-served");
    let input = write(
        &dir.0,
        "app-config.yaml",
        &format!(
            "backend:\n  auth:\n    externalAccess:\n      - type: static\n        options: {{ token: \"${{CI_TOKEN}}\", subject: ci }}\n      - type: static\n        options: {{ token: \"${{VM_TOKEN}}\", subject: vm }}\nproxy:\n  endpoints:\n    /sonarqube:\n      target: http://127.0.0.1:{}/api\n      auth: \"${{SONARQUBE_TOKEN}}:\"\n",
            up.port
        ),
    );
    let out = dir.0.join("envoy.yaml").display().to_string();
    let o = render_to(&input, &out, &[("CI_TOKEN", "ci-token-from-env-7f3a")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rendered = std::fs::read_to_string(&out).unwrap();
    assert!(!rendered.contains("ci-token-from-env-7f3a"));
    for v in [
        "ci-token-from-env-7f3a",
        "vm-token-in-gateway-env",
        "squ_token_from_env_51ab",
        "c3F1X3Rva2VuX2Zyb21fZW52XzUxYWI6",
    ] {
        secret(v);
    }
    let envoy = Envoy::run_file(
        Path::new(&out),
        1,
        TempDir::new("secrets-served-envoy"),
        &[],
        &[
            ("VM_TOKEN", "vm-token-in-gateway-env"),
            ("SONARQUBE_TOKEN", "squ_token_from_env_51ab"),
        ],
    )
    .unwrap_or_else(|(log, _)| panic!("{log}"));
    // Buffer.from('squ_token_from_env_51ab:').toString('base64')
    let basic = "Basic c3F1X3Rva2VuX2Zyb21fZW52XzUxYWI6";
    for token in ["ci-token-from-env-7f3a", "vm-token-in-gateway-env"] {
        let m = unique();
        let r = envoy.get(
            &format!("/api/proxy/sonarqube/issues?{m}"),
            &[("authorization", &format!("Bearer {token}"))],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let seen = up.find(&m).unwrap();
        assert_eq!(seen.header("authorization"), Some(basic));
    }
    let m = unique();
    let r = envoy.get(
        &format!("/api/proxy/sonarqube/issues?{m}"),
        &[("authorization", "Bearer ci-token-from-env-7f3b")],
    );
    assert_eq!(r.status, 401);
    up.assert_never(&m);
}
