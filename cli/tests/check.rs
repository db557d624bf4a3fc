//! `check` and the command line itself: bad configurations refused with
//! file and JSON path (the filter's own messages), `$include` and
//! `APP_CONFIG_` overrides, standard input, `--help`, `--version` and usage
//! errors.

mod common;

use std::path::Path;

use backstage_proxy_testkit::TempDir;
use common::*;

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
    check_include_and_overrides(&dir.0);
    // the filter reports the same message for the same input
    let filter_errors = backstage_proxy_core::config::parse(
        br#"{"proxy":{"endpoints":{"/pd":{"target":"http://t","credentials":"maybe"}}}}"#,
        &|_| None,
    )
    .unwrap_err();
    assert!(err.contains(&filter_errors[0].to_string()));
    check_stdin_and_usage_errors();
}

/// `$include` reads beside the file that holds it, from any directory the
/// tool runs in; `APP_CONFIG_` overrides apply after every file.
fn check_include_and_overrides(dir: &Path) {
    // $include reads beside the file that holds it, from any directory the
    // tool runs in; APP_CONFIG_ overrides apply after every file
    write(
        dir,
        "other.yaml",
        "target: http://included:8080\nallowedMethods: [GET]\n",
    );
    let good = write(
        dir,
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
}

/// Valid files from standard input, a missing variable, invalid YAML, and
/// usage errors.
fn check_stdin_and_usage_errors() {
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

/// `check` says what `secure: false` turns off, naming the endpoint, once;
/// an https endpoint without it gets no such warning.
#[test]
fn check_warns_that_secure_false_turns_off_certificate_verification() {
    let dir = TempDir::new("check-secure");
    let f = write(
        &dir.0,
        "app-config.yaml",
        "proxy:\n  endpoints:\n    /jenkins: { target: 'https://jenkins.internal:8443/api', secure: false }\n    /pd: https://api.pagerduty.com\n",
    );
    let o = run_cli(&["check", &f], &[], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("certificate verification"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with(&format!("warning: {f}: proxy.endpoints./jenkins.secure: false turns off certificate verification for https://jenkins.internal:8443: neither the issuer nor the name")),
        "{err}"
    );
}
