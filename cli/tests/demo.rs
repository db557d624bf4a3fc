//! `make demo` as a newcomer meets it (docs/demo.md): `examples/demo.sh`
//! starts the real Backstage of `examples/backstage/` (npm packages:
//! `make demo-tools`), renders the gateway with this tool from
//! `examples/app-config/demo/app-config.yaml` and runs it in real Envoy
//! with the built `.wasm`; then the commands of docs/demo.md#sign-in-and-call-the-gateway
//! run as written (curl and jq), on ports of the test's own:
//!
//! - ada, signed in through the guest provider, gets 200 on the user
//!   endpoint and on the group endpoint (her token's `ent` lists sre);
//! - grace, signed in through the oauth2Proxy provider, gets 200 on the
//!   user endpoint and 403 `NotAllowedError` on the group endpoint;
//! - no token is 401;
//! - no token reaches the demo's output (Envoy's log and access log);
//! - SIGTERM to the script stops Backstage, Envoy and the upstream.
//!
//! Node, the npm packages, curl and jq are required: the test fails,
//! naming the missing one, never skips.

mod common;

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backstage_proxy_testkit::{envoy_bin, repo_root, secret, wasm_path, TempDir};
use common::{cli, tool};

/// The statuses docs/demo.md promises, in the order of its commands: ada
/// on /echo and /sre, grace on /echo and /sre, no token.
const EXPECTED: [u16; 5] = [200, 200, 200, 403, 401];

/// The demo script, in a process group of its own; killed with its group
/// if the test ends before it stopped.
struct Demo {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    dir: PathBuf,
}

impl Demo {
    fn output(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- stdout\n{}\n--- stderr\n{}\n--- backstage.log (end)\n{}",
            read(&self.out),
            read(&self.err),
            tail(&read(&self.dir.join("backstage.log")), 40)
        )
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// What the demo needs besides Envoy and the build: fail naming it.
fn require_prerequisites(root: &Path) {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is not installed: the demo runs a real Backstage (Node 20 or later)"
    );
    assert!(
        root.join("examples/backstage/node_modules/@backstage/backend-defaults")
            .is_dir(),
        "examples/backstage/node_modules is missing: run `make demo-tools` (npm ci)"
    );
    tool("curl");
    tool("jq");
}

/// The fenced block of `lang` in docs/demo.md's section `heading`.
fn docs_block(heading: &str, lang: &str) -> String {
    let page = std::fs::read_to_string(repo_root().join("docs/demo.md")).unwrap();
    let section = page
        .split(&format!("\n## {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("docs/demo.md has no section {heading:?}"));
    section
        .split(&format!("```{lang}\n"))
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap_or_else(|| panic!("docs/demo.md, section {heading:?}: no {lang} block"))
        .to_string()
}

/// Backstage, the echo upstream, the gateway and Envoy's admin.
struct Ports {
    backstage: u16,
    echo: u16,
    gateway: u16,
    admin: u16,
}

impl Ports {
    fn all(&self) -> [u16; 4] {
        [self.backstage, self.echo, self.gateway, self.admin]
    }
    /// The demo's default addresses in `text`, moved to these ports.
    fn apply(&self, text: &str) -> String {
        text.replace("127.0.0.1:7007", &format!("127.0.0.1:{}", self.backstage))
            .replace("127.0.0.1:8081", &format!("127.0.0.1:{}", self.echo))
            .replace("127.0.0.1:10000", &format!("127.0.0.1:{}", self.gateway))
    }
}

fn start_demo(dir: &Path, ports: &Ports) -> Demo {
    let root = repo_root();
    let shipped =
        std::fs::read_to_string(root.join("examples/app-config/demo/app-config.yaml")).unwrap();
    assert!(shipped.contains("http://127.0.0.1:7007") && shipped.contains("127.0.0.1:8081"));
    let app_config = dir.join("app-config.yaml");
    std::fs::write(&app_config, ports.apply(&shipped)).unwrap();
    let (out, err) = (dir.join("demo.out"), dir.join("demo.err"));
    let child = Command::new("bash")
        .arg(root.join("examples/demo.sh"))
        .env("ENVOY_BIN", envoy_bin())
        .env("BPW_CLI", cli())
        .env("WASM", wasm_path())
        .env("DEMO_APP_CONFIG", &app_config)
        .env("DEMO_DIR", dir)
        .env("DEMO_BACKSTAGE_PORT", ports.backstage.to_string())
        .env("DEMO_ECHO_PORT", ports.echo.to_string())
        .env("DEMO_GATEWAY_PORT", ports.gateway.to_string())
        .env("DEMO_ADMIN_PORT", ports.admin.to_string())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut demo = Demo {
        child,
        out,
        err,
        dir: dir.to_path_buf(),
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if std::fs::read_to_string(&demo.out)
            .unwrap_or_default()
            .contains("demo: ready.")
        {
            return demo;
        }
        if let Ok(Some(status)) = demo.child.try_wait() {
            panic!(
                "the demo exited ({status}) before it was ready\n{}",
                demo.output()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the demo was not ready within 4 minutes\n{}",
            demo.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs the docs' commands in one shell (variables carry over), each
/// `curl` preceded by a marker; returns the status and body of each
/// response and the two tokens the commands signed in with.
fn run_commands(commands: &str, dir: &Path) -> (Vec<(u16, String)>, Vec<String>) {
    let mut script = String::from("set -u\n");
    for line in commands.lines() {
        if line.starts_with("curl ") {
            script.push_str("echo '@@@ response'\n");
        }
        script.push_str(line);
        script.push('\n');
    }
    script.push_str("echo '@@@ tokens'\nprintf '%s\\n' \"$TOKEN\" \"$GRACE\"\n");
    let path = dir.join("commands.sh");
    std::fs::write(&path, &script).unwrap();
    let out = Command::new("bash").arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (responses, tokens) = text.split_once("@@@ tokens\n").unwrap();
    let tokens: Vec<String> = tokens.lines().map(str::to_string).collect();
    let responses = responses
        .split("@@@ response\n")
        .skip(1)
        .map(|r| {
            let status = r
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("not an HTTP response: {r}"));
            (status, r.to_string())
        })
        .collect();
    (responses, tokens)
}

#[test]
fn the_demo_signs_users_in_with_a_real_backstage_and_the_gateway_decides_by_group() {
    let root = repo_root();
    require_prerequisites(&root);
    // The page shows the demo's app-config as it is (its comments aside).
    let shipped =
        std::fs::read_to_string(root.join("examples/app-config/demo/app-config.yaml")).unwrap();
    let uncommented: String = shipped
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(docs_block("What runs", "yaml"), uncommented);

    let tmp = TempDir::new("demo");
    let ports = Ports {
        backstage: free_port(),
        echo: free_port(),
        gateway: free_port(),
        admin: free_port(),
    };
    let mut demo = start_demo(&tmp.0, &ports);

    let commands = ports.apply(&docs_block("Sign in and call the gateway", "sh"));
    // The script prints the page's commands, on its ports.
    let printed = std::fs::read_to_string(&demo.out).unwrap();
    for line in commands.lines() {
        assert!(printed.contains(line), "not printed: {line}\n{printed}");
    }
    let expected: Vec<u16> = commands
        .lines()
        .filter(|l| l.starts_with("curl "))
        .map(|l| l.rsplit("# ").next().unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(expected, EXPECTED, "the page's promises changed");

    let (responses, tokens) = run_commands(&commands, &tmp.0);
    for t in &tokens {
        assert_eq!(
            t.split('.').count(),
            3,
            "not a signed-in token: {t:?}\n{}",
            demo.output()
        );
        secret(t);
    }
    let statuses: Vec<u16> = responses.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, EXPECTED, "{responses:#?}\n{}", demo.output());
    let body = |i: usize| &responses[i].1;
    assert!(body(0).contains("\"path\": \"/echo/hello\""), "{}", body(0));
    assert!(
        body(1).contains("\"path\": \"/sre/runbook\""),
        "{}",
        body(1)
    );
    assert!(body(3).contains("NotAllowedError"), "{}", body(3));
    assert!(
        !body(3).contains("\"path\""),
        "grace reached the upstream: {}",
        body(3)
    );
    assert!(body(4).contains("AuthenticationError"), "{}", body(4));

    // Neither token is in what the demo printed (Envoy's log, access log).
    let printed = demo.output();
    for t in &tokens {
        let signature = t.rsplit('.').next().unwrap();
        assert!(!printed.contains(signature), "a token in the demo's output");
    }
    assert!(
        printed.contains("user:default/grace"),
        "the access log names the caller"
    );

    // SIGTERM to the script alone (as `kill` or make passes it on): every
    // process it started stops.
    let pid = demo.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = demo.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(143), "{}", demo.output());
    for port in ports.all() {
        assert!(
            !listening(port),
            "port {port} still served after the demo stopped"
        );
    }
    let after = demo.output();
    assert!(!after.contains("demo: a process"), "{after}");
}
