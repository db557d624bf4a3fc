//! docker-compose, run for real as docs/deploying.md#docker-compose says
//! on a machine without Docker: its podman block run verbatim (podman and
//! podman-compose from `make compose-tools`; the two images it names are
//! local stand-ins from `make compose-images`, since nothing can be pulled
//! here), each `curl` line checked against the answer its comment gives,
//! the port published on the host's loopback only, then its `down`. Then
//! the multi-stage `Dockerfile` for users without Rust: its build stage's
//! instructions carried out in a clean copy of the context, and both
//! compose files parsed by podman-compose.

use backstage_proxy_testkit as support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::docs::{section, sh_blocks, steps, Step};
use support::*;

fn podman_compose() -> PathBuf {
    let p = repo_root().join(".venv/bin/podman-compose");
    assert!(
        p.is_file(),
        "podman-compose is missing: run `make compose-tools` (PyPI podman-compose into .venv)"
    );
    p
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `podman-compose down` however the test ends.
struct Project;
impl Drop for Project {
    fn drop(&mut self) {
        let _ = Command::new(podman_compose())
            .current_dir(repo_root())
            .arg("down")
            .output();
    }
}

/// The docs' compose section: the podman route's commands, the `curl`
/// lines with the answers their comments give, and podman's `down`.
struct Walkthrough {
    podman: Vec<Step>,
    curls: Vec<(String, String)>,
    down: String,
}

fn walkthrough() -> Walkthrough {
    let text = section("docs/deploying.md", "## docker-compose");
    let blocks: Vec<Vec<Step>> = sh_blocks(&text).iter().map(|b| steps(b)).collect();
    let find = |needle: &str| {
        blocks
            .iter()
            .find(|b| b.iter().any(|s| s.command.contains(needle)))
            .unwrap_or_else(|| panic!("the compose section has a block with {needle}"))
            .clone()
    };
    assert!(
        find("docker compose up -d")
            .iter()
            .any(|s| s.command == "make build"),
        "the Docker route is there for machines that have Docker"
    );
    let podman = find(".venv/bin/podman-compose up -d");
    let curls: Vec<(String, String)> = find("curl ")
        .into_iter()
        .map(|s| {
            let answer = s
                .inline
                .unwrap_or_else(|| panic!("each curl line ends with # <answer>: {}", s.command));
            (s.command, answer)
        })
        .collect();
    assert!(
        curls.len() >= 3,
        "the walkthrough has its curl lines: {curls:?}"
    );
    let down = find("podman-compose down")
        .into_iter()
        .find(|s| s.command.contains("podman-compose down"))
        .unwrap()
        .command;
    Walkthrough {
        podman,
        curls,
        down,
    }
}

fn bash(cmd: &str) -> Output {
    run(Command::new("bash")
        .current_dir(repo_root())
        .args(["-c", cmd]))
}

fn status_of(url: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "2",
            url,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// An address of this host other than loopback, if it has one.
fn other_address() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(str::to_string)
}

#[test]
fn the_docs_podman_route_runs_the_compose_file_and_the_walkthrough_holds() {
    let w = walkthrough();
    wasm_path();
    let project = Project;
    let _ = Command::new(podman_compose())
        .current_dir(repo_root())
        .arg("down")
        .output();
    for step in &w.podman {
        if step.command == "make build" {
            continue; // built before the tests: wasm_path() above
        }
        bash(&step.command);
    }
    for image in [
        "docker.io/envoyproxy/envoy:v1.39.3",
        "docker.io/library/python:3.11-slim",
    ] {
        let ok = Command::new("podman")
            .args(["image", "exists", image])
            .status()
            .unwrap()
            .success();
        assert!(ok, "{image} is missing after the docs' commands");
    }

    // Envoy answers once the filter is loaded and the upstream listens.
    let deadline = Instant::now() + Duration::from_secs(30);
    while status_of("http://127.0.0.1:10000/api/proxy/public/ready") != "200" {
        assert!(
            Instant::now() < deadline,
            "the composed gateway never answered 200"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (cmd, expected) in &w.curls {
        let out = Command::new("bash").args(["-c", cmd]).output().unwrap();
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(got.trim(), expected, "docs/deploying.md line: {cmd}");
    }
    // Published on the host's loopback only: podman says so, and another
    // address of the host gets no answer.
    let root = repo_root();
    let name = root.file_name().unwrap().to_string_lossy();
    let ports = Command::new("podman")
        .args([
            "ps",
            "--filter",
            &format!("label=com.docker.compose.project={name}"),
        ])
        .args(["--format", "{{.Ports}}"])
        .output()
        .unwrap();
    let ports = String::from_utf8_lossy(&ports.stdout);
    assert!(ports.contains("127.0.0.1:10000->10000/tcp"), "{ports}");
    assert!(!ports.contains("0.0.0.0:"), "{ports}");
    if let Some(addr) = other_address() {
        assert_eq!(
            status_of(&format!("http://{addr}:10000/api/proxy/public/ready")),
            "000",
            "the gateway answers on {addr}, beyond the host's loopback"
        );
    }
    bash(&w.down);
    assert!(
        std::net::TcpListener::bind("127.0.0.1:10000").is_ok(),
        "port 10000 is still held after `down`"
    );
    drop(project);
}

/// One instruction of the Dockerfile: keyword and arguments.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in dockerfile.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(part) = t.strip_suffix('\\') {
            pending.push_str(part);
            pending.push(' ');
            continue;
        }
        pending.push_str(t);
        let (kw, args) = pending.split_once(' ').unwrap_or((&pending, ""));
        out.push((kw.to_ascii_uppercase(), args.trim().to_string()));
        pending.clear();
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    run(Command::new("cp").arg("-a").arg(from).arg(to));
}

#[test]
fn the_dockerfile_builds_the_module_in_its_first_stage_from_a_clean_context() {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let all = instructions(&text);
    let stages: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| k == "FROM")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(stages.len(), 2, "a build stage and the Envoy stage");
    let (first_from, last_from) = (&all[stages[0]].1, &all[stages[1]].1);
    assert!(
        first_from.starts_with("docker.io/library/rust:") && first_from.ends_with(" AS build"),
        "{first_from}"
    );
    assert_eq!(
        last_from, "docker.io/envoyproxy/envoy:v1.39.3",
        "the Envoy the tests run"
    );

    // Carry out the build stage in a clean copy of the context: WORKDIR is
    // the copy, COPY copies from the repository, RUN runs there. (The base
    // image cannot be pulled here; the host's Rust toolchain stands in.)
    let ctx = TempDir::new("dockerfile");
    let work = ctx.0.join("src");
    std::fs::create_dir_all(&work).unwrap();
    for (kw, args) in &all[stages[0] + 1..stages[1]] {
        match kw.as_str() {
            "WORKDIR" => assert_eq!(args, "/src"),
            "COPY" => {
                let parts: Vec<&str> = args.split_whitespace().collect();
                let (dest, sources) = parts.split_last().unwrap();
                for s in sources {
                    let src = root.join(s);
                    assert!(src.exists(), "COPY {s}: not in the repository");
                    let target = if dest.ends_with('/') || sources.len() > 1 {
                        work.join(dest.trim_start_matches("./"))
                            .join(Path::new(s).file_name().unwrap())
                    } else {
                        work.join(dest.trim_start_matches("./"))
                    };
                    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                    copy_tree(&src, &target);
                }
            }
            "RUN" => {
                run(Command::new("bash")
                    .current_dir(&work)
                    .args(["-c", args])
                    .env("CARGO_TARGET_DIR", work.join("target")));
            }
            other => panic!("unexpected {other} in the build stage"),
        }
    }
    // The Envoy stage copies what the build stage made, and the example.
    let mut copied = 0;
    for (kw, args) in &all[stages[1] + 1..] {
        if kw != "COPY" {
            continue;
        }
        let parts: Vec<&str> = args.split_whitespace().collect();
        if let Some(from) = parts[0].strip_prefix("--from=") {
            assert_eq!(from, "build");
            let built = parts[1].strip_prefix("/src/").unwrap();
            let wasm = work.join(built);
            assert!(wasm.is_file(), "{} was not built", wasm.display());
            assert_eq!(
                parts[2], "/work/build/plugin.wasm",
                "where envoy.yaml loads it from"
            );
            let size = std::fs::metadata(&wasm).unwrap().len();
            assert!(size > 100_000, "{size} bytes");
        } else {
            assert!(root.join(parts[0]).is_file(), "COPY {}", parts[0]);
        }
        copied += 1;
    }
    assert_eq!(copied, 2);
    // The final image's layout, /work with envoy.yaml and build/plugin.wasm:
    // Envoy loads the module the stage built with the shipped envoy.yaml.
    let image = ctx.0.join("work");
    std::fs::create_dir_all(image.join("build")).unwrap();
    std::fs::copy(root.join("envoy.yaml"), image.join("envoy.yaml")).unwrap();
    std::fs::copy(
        work.join("target/wasm32-wasip1/wasm/backstage_proxy_wasm.wasm"),
        image.join("build/plugin.wasm"),
    )
    .unwrap();
    envoy_validate(Path::new("envoy.yaml"), &image, &[]);

    for compose in ["docker-compose.yml", "docker-compose.build.yml"] {
        run(Command::new(podman_compose())
            .current_dir(&root)
            .args(["-f", compose, "config"]));
    }
}
