//! The README's quick start, followed as written: `make run`, then every
//! `curl` of its example block run verbatim and checked against the
//! answer written under it (the status line, response headers, the body,
//! what the echo upstream received). And `make run` stops, with Envoy and
//! the upstream, however a user stops it: SIGTERM to make, SIGTERM to the
//! recipe's script, Ctrl-C.

use backstage_proxy_testkit as support;

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::docs::{section, sh_blocks, steps, Step};
use support::*;

/// Every `make run` here holds ports 10000, 9901 and 8081: one at a time.
static PORTS: Mutex<()> = Mutex::new(());
const PORTS_USED: [u16; 3] = [10000, 9901, 8081];

/// `make run` as the README says, without rebuilding what `make test` built
/// (a cargo build inside `cargo test` would wait for its lock), in a
/// process group of its own so that Ctrl-C can be sent to it alone.
struct MakeRun {
    make: Child,
}

impl MakeRun {
    fn start() -> MakeRun {
        wasm_path();
        let _ = envoy_bin();
        for port in PORTS_USED {
            assert!(
                TcpListener::bind(("127.0.0.1", port)).is_ok(),
                "port {port} is taken: `make run` needs it"
            );
        }
        let make = Command::new("make")
            .current_dir(repo_root())
            .args(["-s", "-o", "build", "-o", "envoy", "run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("make runs");
        let run = MakeRun { make };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !(listening(10000) && listening(8081)) {
            assert!(Instant::now() < deadline, "make run never listened");
            std::thread::sleep(Duration::from_millis(100));
        }
        run
    }

    /// The recipe's script, Envoy and the upstream, by pid.
    fn processes(&self) -> (u32, Vec<u32>) {
        let script = children(self.make.id());
        assert_eq!(script.len(), 1, "make runs one recipe: {script:?}");
        let kids = children(script[0]);
        assert_eq!(kids.len(), 2, "Envoy and the upstream: {kids:?}");
        (script[0], kids)
    }
}

impl Drop for MakeRun {
    fn drop(&mut self) {
        // Whatever is left of the group (nothing, when the test passed).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.make.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.make.wait();
    }
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn kill(signal: &str, target: &str) -> bool {
    Command::new("kill")
        .args([signal, "--", target])
        .status()
        .expect("kill runs")
        .success()
}

/// The pids whose parent is `pid` (from /proc).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some((_, state, ppid)) = stat(child) {
            if ppid == pid && state != 'Z' {
                out.push(child);
            }
        }
    }
    out
}

/// (command, state, parent pid) of a live process.
fn stat(pid: u32) -> Option<(String, char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = text.rsplit_once(") ")?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((head.split_once(" (")?.1.to_string(), state, ppid))
}

fn gone(pid: u32) -> bool {
    stat(pid).is_none_or(|(_, state, _)| state == 'Z')
}

#[test]
fn make_run_stops_envoy_and_the_upstream_however_it_is_stopped() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let pidfile = repo_root().join("build/upstream.pid");
    for how in ["SIGTERM to make", "SIGTERM to the recipe", "Ctrl-C"] {
        let mut run = MakeRun::start();
        let (script, kids) = run.processes();
        let names: Vec<String> = kids.iter().filter_map(|p| stat(*p)).map(|s| s.0).collect();
        assert!(
            names.iter().any(|n| n == "envoy") && names.iter().any(|n| n.starts_with("python")),
            "{names:?}"
        );
        let upstream: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            kids.contains(&upstream),
            "build/upstream.pid names the upstream"
        );
        let sent = match how {
            "SIGTERM to make" => kill("-TERM", &run.make.id().to_string()),
            "SIGTERM to the recipe" => kill("-TERM", &script.to_string()),
            _ => kill("-INT", &format!("-{}", run.make.id())),
        };
        assert!(sent, "{how}: not sent");
        let deadline = Instant::now() + Duration::from_secs(20);
        while run.make.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "{how}: make is still running");
            std::thread::sleep(Duration::from_millis(50));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(kids.iter().all(|p| gone(*p)) && gone(script)) {
            assert!(
                Instant::now() < deadline,
                "{how}: left running: {kids:?} / {script}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        for port in PORTS_USED {
            assert!(
                TcpListener::bind(("127.0.0.1", port)).is_ok(),
                "{how}: port {port} is still held"
            );
        }
        assert!(
            !pidfile.exists(),
            "{how}: build/upstream.pid is left behind"
        );
    }
}

/// A `curl -i` answer: status line, headers (names in lower case), body.
struct Answer {
    status: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn parse_curl_i(out: &str) -> Answer {
    let (head, body) = out
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not a curl -i answer: {out}"));
    let mut lines = head.lines();
    let status = lines.next().unwrap().trim().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Checks one answer line written under a `curl` in the README. Text after
/// two spaces is commentary. The forms:
///   `HTTP/1.1 200 OK`            the status line
///   `{...}`                      the body, exactly
///   `upstream path: /p`          the path the echo upstream received
///   `upstream name: value`       a header the upstream received (`(none)`: absent)
///   `name: value`                a response header (`(none)`: absent)
fn check(step: &Step, answer: &Answer, line: &str) {
    let expected = line.split("  ").next().unwrap().trim();
    let cmd = &step.command;
    if expected.starts_with("HTTP/") {
        assert_eq!(answer.status, expected, "README: {cmd}");
        return;
    }
    if expected.starts_with('{') {
        assert_eq!(answer.body.trim(), expected, "README: {cmd}");
        return;
    }
    let (name, value) = expected
        .split_once(": ")
        .unwrap_or_else(|| panic!("README: {cmd}: an answer line the test cannot read: {line}"));
    let (seen, what): (Vec<String>, &str) = match name.strip_prefix("upstream ") {
        Some("path") => {
            let echo: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
            assert_eq!(echo["path"], value, "README: {cmd}: upstream path");
            return;
        }
        Some(header) => {
            let echo: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
            let seen = header_pairs(&echo["headers"])
                .into_iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(header))
                .map(|(_, v)| v)
                .collect();
            (seen, "the upstream received")
        }
        None => {
            let seen = answer
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .collect();
            (seen, "the response carries")
        }
    };
    let want: Vec<String> = if value == "(none)" {
        Vec::new()
    } else {
        vec![value.to_string()]
    };
    assert_eq!(seen, want, "README: {cmd}: {what} {name}");
}

#[test]
fn the_readme_quick_start_answers_as_written() {
    let text = section("README.md", "## Quick start");
    let blocks = sh_blocks(&text);
    assert!(
        blocks
            .first()
            .is_some_and(|b| b.lines().any(|l| l.starts_with("make run "))),
        "the quick start begins with `make run`: {blocks:?}"
    );
    let curls: Vec<Step> = blocks
        .iter()
        .flat_map(|b| steps(b))
        .filter(|s| s.command.starts_with("curl "))
        .collect();
    assert!(
        curls.len() >= 4,
        "the quick start's curl examples: {curls:?}"
    );

    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let run = MakeRun::start();
    for step in &curls {
        assert!(
            step.command.starts_with("curl -i ") && !step.after.is_empty(),
            "README: each example is `curl -i` with its answer under it: {step:?}"
        );
        let out = Command::new("bash")
            .args(["-c", &step.command])
            .output()
            .unwrap();
        assert!(out.status.success(), "README: {}: {out:?}", step.command);
        let answer = parse_curl_i(&String::from_utf8_lossy(&out.stdout));
        for line in &step.after {
            check(step, &answer, line);
        }
    }
    drop(run);
}
