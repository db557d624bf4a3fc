//! What the command-line tests share: the tool run as a user runs it, the
//! app-config files written for it, the system tools they need, and the
//! resources it writes for each Kubernetes fixture in every mode. Each test
//! file compiles this module and uses a part of it.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use backstage_proxy_testkit::{repo_root, wasm_path};
use serde_json::Value;

pub mod native;
pub mod registry;

pub fn cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_backstage-proxy-wasm"))
}

pub fn run_cli(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(cli());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        // A command that fails on its arguments exits before reading its
        // input: a closed pipe here is its answer, not the test's failure.
        let _ = child.stdin.take().unwrap().write_all(text.as_bytes());
    }
    child.wait_with_output().unwrap()
}

pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `render` of `input` into `output` for the built `.wasm`, on loopback with
/// ports Envoy chooses.
pub fn render_to(input: &str, output: &str, env: &[(&str, &str)]) -> Output {
    let wasm = wasm_path().display().to_string();
    run_cli(
        &[
            "render",
            "--wasm",
            &wasm,
            "--admin-port",
            "0",
            "--listen",
            "127.0.0.1:0",
            "--output",
            output,
            input,
        ],
        env,
        None,
    )
}

/// `envoy --mode validate` on a rendered file; the filter's on_configure runs.
pub fn envoy_validate(yaml_path: &str, env: &[(&str, &str)]) {
    backstage_proxy_testkit::envoy_validate(
        Path::new(yaml_path),
        &std::env::current_dir().unwrap(),
        env,
    );
}

/// A system tool the tests run (Debian packages: `make tools`).
pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed: run `make tools` (Debian packages docker-registry, skopeo, chromium) or `make compose-tools` (podman)");
}

/// Endpoints in the object form, https targets, a `jwks` key set, CORS and
/// header values from the environment.
pub const OBJECT_HTTPS_JWKS_ENV: &str = r#"
backend:
  baseUrl: https://backstage.example.com
  cors:
    origin: [https://backstage.example.com, "https://*.example.org"]
    methods: [GET, POST]
    credentials: true
  auth:
    externalAccess:
      - type: jwks
        options:
          url: https://login.example.com/.well-known/jwks.json
          issuer: https://login.example.com
          audience: [edge, other]
          algorithm: RS256, ES256
          subjectPrefix: corp
      - type: legacy
        options: { secret: c2VjcmV0LXNlY3JldC1zZWNyZXQ, subject: cron }
proxy:
  skipInvalidProxies: false
  endpoints:
    /pagerduty:
      target: https://api.pagerduty.com
      headers: { Authorization: "Token token=${PAGERDUTY_TOKEN}" }
      allowedMethods: [GET]
    /jenkins:
      target: https://jenkins.internal:8443/api
      secure: false
      timeout: 10000
      proxyTimeout: 30000
      followRedirects: true
      headers:
        X-Api-Key: { $env: JENKINS_KEY }
    /forward:
      target: ${FORWARD_TARGET}
      credentials: forward
      xfwd: true
      ws: true
"#;

pub fn fixture(name: &str) -> String {
    repo_root()
        .join("cli/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

pub const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const FIXTURES: [&str; 3] = ["create-app.yaml", "production.yaml", "fleet.yaml"];
pub const MODES: [&[&str]; 5] = [
    &["istio"],
    &[
        "istio",
        "--gateway",
        "gateways/public",
        "--hostname",
        "backstage.example.com",
    ],
    &["istio", "--gateway-api"],
    &[
        "istio",
        "--gateway-api",
        "--traffic-extension",
        "--hostname",
        "backstage.example.com",
    ],
    &[
        "envoy-gateway",
        "--hostname",
        "backstage.example.com",
        "--envoy-proxy",
    ],
];

/// Every mode of both commands on every fixture: (description, mode, docs).
pub fn generated() -> Vec<(String, &'static [&'static str], Vec<Value>)> {
    let mut out = Vec::new();
    for f in FIXTURES {
        for mode in MODES {
            let o: Output = Command::new(cli())
                .args(mode)
                .args([
                    "--url",
                    "oci://ghcr.io/example/backstage-proxy-wasm:1.0.0",
                    "--sha256",
                    DIGEST,
                ])
                .arg(fixture(f))
                .env("CI_TOKEN", "ci-token-0123456789")
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{mode:?} {f}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let docs: Vec<Value> =
                serde_saphyr::from_multiple(&String::from_utf8_lossy(&o.stdout)).unwrap();
            out.push((format!("{} {f}", mode.join(" ")), mode, docs));
        }
    }
    out
}

/// Every file below `dir` that `keep` takes, build output, dependencies
/// and virtual environments left out, in no particular order.
pub fn files_below(dir: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.map(|e| e.unwrap().path()) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !matches!(name, "target" | "node_modules" | ".git" | ".venv" | "build") {
                files_below(&path, keep, out);
            }
        } else if keep(&path) {
            out.push(path);
        }
    }
}

/// Validates resources as the API server would with strict field
/// validation (`testkit/crd_validate.py`: the published CRDs, and
/// Kubernetes' own kinds by their published schemas): its JSON report.
pub fn validate(docs: &[Value]) -> Value {
    validate_in(docs, "testkit/crds")
}

/// [`validate`] against Envoy Gateway 1.8's CRDs alone
/// (`testkit/crds/envoy-gateway-1.8`: its dynamic modules).
pub fn validate_18<T: serde::Serialize + ?Sized>(docs: &T) -> Value {
    validate_in(docs, "testkit/crds/envoy-gateway-1.8")
}

fn validate_in<T: serde::Serialize + ?Sized>(docs: &T, crds: &str) -> Value {
    let out = venv_python(
        "testkit/crd_validate.py",
        &repo_root().join(crds),
        serde_json::to_vec(docs).unwrap(),
    );
    assert!(
        out.status.success(),
        "the validator failed (jsonschema and cel-python in .venv: `make schema-tools`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs one of the test kit's Python validators with `.venv`'s Python
/// (`make schema-tools`): `script` with `arg`, `input` on its standard
/// input (written from a thread, so a large report cannot block it).
pub fn venv_python(script: &str, arg: &Path, input: Vec<u8>) -> Output {
    use std::io::Write;
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `make schema-tools`",
        python.display()
    );
    let mut child = Command::new(python)
        .arg(repo_root().join(script))
        .arg(arg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let w = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    w.join().unwrap();
    out
}
