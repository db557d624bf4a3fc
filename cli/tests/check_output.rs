//! `check` as CI uses it, and `render`'s safe defaults: YAML errors at
//! their line and column in any of the files, one error per mistake, the
//! same answer whichever variables are set, each warning once per command
//! with its file, `--strict`, `--format json` and `--format sarif` (checked
//! against the SARIF 2.1.0 schema), and `render` outside the repository.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use backstage_proxy_testkit::{repo_root, TempDir};
use common::*;
use serde_json::Value;

/// The tool run in `dir`, with only `env` (and PATH) set.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(cli())
        .current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Lines starting with `prefix`.
fn lines_with<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// Every file's syntax errors, the first file's and a later one's, each as
/// `file:line:col: message`, the line (values masked) and a caret; a tab
/// at the tab, not a line early.
#[test]
fn yaml_errors_point_at_line_and_column_in_every_file() {
    let dir = TempDir::new("check-yaml");
    let first = write(
        &dir.0,
        "app-config.yaml",
        "proxy:\n  endpoints:\n    /x: \"http://x\n",
    );
    let ok = write(&dir.0, "app-config.ok.yaml", "proxy: {}\n");
    let later = write(
        &dir.0,
        "app-config.local.yaml",
        "proxy:\n  endpoints:\n    /x:\n      target: http://x\n\t  credentials: require\n",
    );
    let dup = write(
        &dir.0,
        "app-config.dup.yaml",
        "backend:\n  baseUrl: http://a\n  baseUrl: http://b\n",
    );
    let o = run_cli(&["check", &first, &ok, &later, &dup], &[], None);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let want = [
        format!("error: {first}:3:9: not valid YAML: unclosed quote\n3 |     /x: \"****:***\n  |         ^\n"),
        format!("error: {later}:5:1: a tab where YAML expects spaces (while scanning a plain scalar, found a tab)\n5 | →  credentials: *******\n  | ^\n"),
        format!("error: {dup}:3:3: duplicate key 'baseUrl': a key may appear once in a mapping (Backstage's loader refuses it too)\n3 |   baseUrl: ****:***\n  |   ^\n"),
    ];
    for w in &want {
        assert!(err.contains(w.as_str()), "missing\n{w}in\n{err}");
    }
    assert!(err.ends_with("3 error(s)\n"), "{err}");
    assert!(stdout(&o).is_empty());
}

/// A mistake inside an endpoint is one error, not also one for each
/// section naming the endpoint; a mistake in those sections still counts.
#[test]
fn one_error_per_mistake() {
    let dir = TempDir::new("check-cascade");
    let f = write(
        &dir.0,
        "app-config.yaml",
        "backend:\n  baseUrl: http://backstage:7007\nproxy:\n  endpoints:\n    /sonarqube:\n      target: https://sonarqube.example.com/api\n      credentails: require\ngateway:\n  access:\n    /sonarqube: {allow: [user]}\n  rateLimits:\n    /sonarqube: {perPrincipal: {requests: 60, seconds: 60}}\n",
    );
    let o = run_cli(&["check", &f], &[], None);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let errors = lines_with(&err, "error:");
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].starts_with(&format!(
            "error: {f}: proxy.endpoints./sonarqube.credentails: unknown key 'credentails'"
        )),
        "{err}"
    );
}

/// The report's case: a key the gateway does not know whose value is a
/// variable is refused whether or not the variable is set.
#[test]
fn an_unknown_key_is_refused_whichever_variables_are_set() {
    let dir = TempDir::new("check-env");
    let f = write(
        &dir.0,
        "app-config.yaml",
        "proxy:\n  endpoints:\n    /sonarqube:\n      target: https://sonarqube.example.com/api\n      autth: '${SONARQUBE_TOKEN}:'\n",
    );
    let want = format!("error: {f}: proxy.endpoints./sonarqube.autth: unknown key 'autth'");
    for env in [&[][..], &[("SONARQUBE_TOKEN", "sonar-0123456789")]] {
        let o = run_cli(&["check", &f], env, None);
        assert_eq!(o.status.code(), Some(1), "{env:?}");
        assert!(stderr(&o).contains(&want), "{env:?}: {}", stderr(&o));
    }
}

/// An app-config with warnings of every origin: the filter's, the tool's
/// own (`secure: false`, unset variables), and the Kubernetes outputs'.
const WARNS: &str = "backend:\n  baseUrl: http://backstage:7007\nproxy:\n  endpoints:\n    /jenkins:\n      target: https://jenkins.internal:8443/api\n      secure: false\n      timeout: 1000\n      allowedMethods: [get]\n      allowedHeaders: ['${EXTRA_HEADER}']\n      headers: {X-Key: '${JENKINS_KEY}', X-Other: '${JENKINS_KEY}'}\n      pathRewrite: {'^/a': '/b', '^/c': '/d'}\n";

/// Every command prints each warning once, naming its file; `--strict`
/// makes warnings fail `check`.
#[test]
fn each_warning_once_per_command_and_strict_fails_on_them() {
    let dir = TempDir::new("check-warn");
    let f = write(&dir.0, "app-config.yaml", WARNS);
    let url = "oci://r/x:1";
    for args in [
        &["check", &f][..],
        &["render", "--wasm", "/plugin.wasm", &f],
        &["istio", "--url", url, "--sha256", DIGEST, &f],
        &[
            "istio",
            "--gateway-api",
            "--url",
            url,
            "--sha256",
            DIGEST,
            &f,
        ],
        &["envoy-gateway", "--url", url, "--sha256", DIGEST, &f],
    ] {
        let o = run_cli(args, &[], None);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        let warnings = lines_with(&err, "warning:");
        assert!(warnings.len() >= 5, "{args:?}: {err}");
        for w in &warnings {
            assert_eq!(
                warnings.iter().filter(|x| *x == w).count(),
                1,
                "{args:?}: {err}"
            );
        }
        for path in [
            "secure",
            "timeout",
            "allowedMethods",
            "allowedHeaders[0]",
            "headers.X-Key",
        ] {
            let at = format!("warning: {f}: proxy.endpoints./jenkins.{path}: ");
            assert!(err.contains(&at), "{args:?}: {at} in {err}");
        }
    }
    // Two endpoints of the production fixture share a destination whose
    // Host an HTTPRoute cannot keep: one warning, not one per route.
    for mode in MODES {
        let p = fixture("production.yaml");
        let mut args = mode.to_vec();
        args.extend(["--url", url, "--sha256", DIGEST, &p]);
        let o = run_cli(&args, &[("CI_TOKEN", "ci-token-0123456789")], None);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        let warnings = lines_with(&err, "warning:");
        for w in &warnings {
            assert_eq!(
                warnings.iter().filter(|x| *x == w).count(),
                1,
                "{args:?}: {err}"
            );
        }
    }
    let o = run_cli(&["check", "--strict", &f], &[], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("warning(s), which --strict makes errors"));
    assert!(stdout(&o).is_empty());
    // Without warnings, --strict passes.
    let clean = write(
        &dir.0,
        "clean.yaml",
        "proxy:\n  endpoints:\n    /x: http://x\nbackend:\n  baseUrl: http://backstage:7007\n",
    );
    let o = run_cli(&["check", "--strict", &clean], &[], None);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `--format json`: one object on standard output, every finding with
/// severity, rule, file, line, column, path and message; `ok` and the exit
/// status agree, `--strict` included.
#[test]
fn check_format_json() {
    let dir = TempDir::new("check-json");
    let f = write(&dir.0, "app-config.yaml", WARNS);
    for (strict, ok) in [(false, true), (true, false)] {
        let mut args = vec!["check", "--format", "json", &f];
        if strict {
            args.insert(1, "--strict");
        }
        let o = run_cli(&args, &[], None);
        assert_eq!(o.status.success(), ok);
        assert!(stderr(&o).is_empty(), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["ok"], ok);
        assert_eq!(v["endpoints"], 1);
        assert_eq!(v["errors"], 0);
        let secure = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| {
                x["path"] == "proxy.endpoints./jenkins.secure"
                    && x["rule"] == "configuration-warning"
            })
            .unwrap();
        assert_eq!(secure["severity"], "warning");
        assert_eq!(secure["file"], f.as_str());
        assert_eq!(
            (secure["line"].as_u64(), secure["column"].as_u64()),
            (Some(7), Some(7))
        );
    }
    let bad = write(
        &dir.0,
        "bad.yaml",
        "proxy:\n  endpoints:\n    /x: {target: http://x, autth: y}\n",
    );
    let o = run_cli(&["check", "--format", "json", &bad], &[], None);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["ok"].as_bool(), v["endpoints"].is_null()),
        (Some(false), true)
    );
    assert_eq!(v["findings"][0]["rule"], "unknown-key");
    assert_eq!(v["findings"][0]["line"], 3);
}

/// Validates a SARIF log with `testkit/sarif_validate.py` against the
/// SARIF 2.1.0 schema (jsonschema in .venv: `make schema-tools`).
fn assert_valid_sarif(log: &[u8]) {
    let out = venv_python(
        "testkit/sarif_validate.py",
        &repo_root().join("testkit/sarif/sarif-schema-2.1.0.json"),
        log.to_vec(),
    );
    assert!(
        out.status.success(),
        "not valid SARIF 2.1.0:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--format sarif`: a SARIF 2.1.0 log the schema accepts, for warnings,
/// errors, a YAML syntax error and standard input; the validator itself
/// refuses a log the schema does not allow.
#[test]
fn check_format_sarif_is_valid_sarif_2_1_0() {
    let dir = TempDir::new("check-sarif");
    let warns = write(&dir.0, "app config.yaml", WARNS);
    let bad = write(
        &dir.0,
        "bad.yaml",
        "proxy:\n  endpoints:\n    /x: {target: http://x, autth: y}\n",
    );
    let broken = write(&dir.0, "broken.yaml", "proxy: [\n");
    for (files, code) in [
        (vec![warns.as_str()], 0),
        (vec![bad.as_str()], 1),
        (vec![broken.as_str(), "-"], 1),
    ] {
        let mut args = vec!["check", "--format", "sarif"];
        args.extend(files.iter().copied());
        let o = run_cli(
            &args,
            &[],
            Some("proxy: {endpoints: {/y: {target: 'http://y', x: 1}}}\n"),
        );
        assert_eq!(o.status.code(), Some(code), "{files:?}");
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(
            !v["runs"][0]["results"].as_array().unwrap().is_empty(),
            "{files:?}"
        );
        assert_valid_sarif(&o.stdout);
    }
    let o = run_cli(&["check", "--format", "sarif", &bad], &[], None);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &v["runs"][0]["results"][0];
    assert_eq!(r["ruleId"], "unknown-key");
    assert_eq!(
        r["locations"][0]["physicalLocation"]["region"]["startLine"],
        3
    );
    let mut wrong = v.clone();
    wrong["runs"][0]["results"][0]["level"] = Value::from("fatal");
    let python = repo_root().join(".venv/bin/python");
    let mut child = Command::new(python)
        .arg(repo_root().join("testkit/sarif_validate.py"))
        .arg(repo_root().join("testkit/sarif/sarif-schema-2.1.0.json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(&wrong).unwrap())
        .unwrap();
    assert!(!child.wait_with_output().unwrap().status.success());
}

/// Outside the repository: `render` without `--wasm` refuses (usage error)
/// instead of writing a path that is not there; with build/plugin.wasm in
/// the directory it writes that file's absolute path. The listener is on
/// loopback unless `--listen` asks for every interface.
#[test]
fn render_outside_the_repository_and_its_listener() {
    let dir = TempDir::new("render-elsewhere");
    write(
        &dir.0,
        "app-config.yaml",
        "proxy:\n  endpoints:\n    /x: http://x\n",
    );
    let o = run_in(&dir.0, &["render", "app-config.yaml"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--wasm PATH is required"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
    std::fs::create_dir(dir.0.join("build")).unwrap();
    std::fs::write(dir.0.join("build/plugin.wasm"), b"\0asm").unwrap();
    let o = run_in(&dir.0, &["render", "app-config.yaml"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_saphyr::from_str(&stdout(&o)).unwrap();
    let wasm = dir.0.join("build/plugin.wasm").canonicalize().unwrap();
    assert!(
        stdout(&o).contains(&format!("filename: {}", wasm.display())),
        "{}",
        stdout(&o)
    );
    let address = &v["static_resources"]["listeners"][0]["address"]["socket_address"];
    assert_eq!(
        (address["address"].as_str(), address["port_value"].as_u64()),
        (Some("127.0.0.1"), Some(10000))
    );
    let o = run_in(
        &dir.0,
        &[
            "render",
            "--wasm",
            "/w.wasm",
            "--listen",
            "0.0.0.0:10000",
            "app-config.yaml",
        ],
        &[],
    );
    let v: Value = serde_saphyr::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["static_resources"]["listeners"][0]["address"]["socket_address"]["address"],
        "0.0.0.0"
    );
}
