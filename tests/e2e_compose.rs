//! docker-compose, run for real: the unchanged `docker-compose.yml` under
//! podman and podman-compose (`make compose-tools`; the two images it names
//! are local stand-ins built by `make compose-images`, since nothing can be
//! pulled here), and the README's compose walkthrough run against it, each
//! `curl` line checked against the answer its comment gives. Then the
//! multi-stage `Dockerfile` for users without Rust: its build stage's
//! instructions carried out in a clean copy of the context, and both
//! compose files parsed by docker-compose and podman-compose.

use backstage_proxy_testkit as support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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
struct Project(&'static str);
impl Drop for Project {
    fn drop(&mut self) {
        let _ = Command::new(podman_compose())
            .current_dir(repo_root())
            .args(["-p", self.0, "down"])
            .output();
    }
}

/// The README's docker-compose walkthrough: each `curl` line and the answer
/// its comment expects.
fn walkthrough() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(repo_root().join("docs/deploying.md")).unwrap();
    let section = readme
        .split("\n## docker-compose\n")
        .nth(1)
        .expect("README has a docker-compose section");
    let block = section
        .split("```sh")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the section starts with a sh block");
    let lines: Vec<(String, String)> = block
        .lines()
        .filter(|l| l.starts_with("curl "))
        .map(|l| {
            let (cmd, expected) = l
                .rsplit_once(" # ")
                .expect("each curl line ends with # <answer>");
            (cmd.trim().to_string(), expected.trim().to_string())
        })
        .collect();
    assert!(
        lines.len() >= 3,
        "the walkthrough has its curl lines: {lines:?}"
    );
    assert!(block.contains("docker compose up -d") && block.contains("docker compose down"));
    lines
}

#[test]
fn the_compose_file_runs_under_podman_and_the_readme_walkthrough_holds() {
    let root = repo_root();
    wasm_path();
    for image in [
        "docker.io/envoyproxy/envoy:v1.39.3",
        "docker.io/library/python:3.11-slim",
    ] {
        let ok = Command::new("podman")
            .args(["image", "exists", image])
            .status()
            .expect("podman is needed: run `make compose-tools`")
            .success();
        assert!(ok, "{image} is missing: run `make compose-images`");
    }
    let project = Project("bpw-compose-test");
    let _ = Command::new(podman_compose())
        .current_dir(&root)
        .args(["-p", project.0, "down"])
        .output();
    run(Command::new(podman_compose()).current_dir(&root).args([
        "-p",
        project.0,
        "-f",
        "docker-compose.yml",
        "up",
        "-d",
    ]));

    // Envoy answers once the filter is loaded and the upstream listens.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "http://localhost:10000/api/proxy/public/ready",
            ])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout) == "200" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the composed gateway never answered 200"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (cmd, expected) in walkthrough() {
        let out = Command::new("bash").args(["-c", &cmd]).output().unwrap();
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(got.trim(), expected, "README line: {cmd}");
    }
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
        first_from.starts_with("rust:") && first_from.ends_with(" AS build"),
        "{first_from}"
    );
    assert_eq!(
        last_from, "envoyproxy/envoy:v1.39.3",
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
        run(Command::new("docker-compose")
            .current_dir(&root)
            .args(["-f", compose, "config", "-q"]));
        run(Command::new(podman_compose())
            .current_dir(&root)
            .args(["-f", compose, "config"]));
    }
}
