//! The tool's container image (cli/Dockerfile), built with podman from the
//! static binary `make cli-static` leaves in build/cli-image/<platform>/
//! (what the release workflow publishes for linux/amd64 and linux/arm64),
//! and run as a user runs it: app-config mounted at /work, the same
//! answers as the tool run natively, as a non-root user.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use backstage_proxy_testkit::{repo_root, unique, TempDir};
use common::*;

fn platform() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no image platform for {other}"),
    }
}

fn podman(args: &[&str]) -> Output {
    Command::new(tool("podman"))
        .args(args)
        .output()
        .expect("podman runs: `make compose-tools` installs it")
}

struct Image(String);
impl Drop for Image {
    fn drop(&mut self) {
        let _ = podman(&["rmi", "-f", &self.0]);
    }
}

fn static_binary() -> PathBuf {
    let bin = repo_root()
        .join("build/cli-image")
        .join(platform())
        .join("backstage-proxy-wasm");
    assert!(
        bin.is_file(),
        "{} is missing: run `make cli-static`",
        bin.display()
    );
    // A static executable has no program interpreter: ldd says so.
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    let said =
        String::from_utf8_lossy(&ldd.stdout).to_string() + &String::from_utf8_lossy(&ldd.stderr);
    assert!(
        said.contains("not a dynamic executable") || said.contains("statically linked"),
        "{} is not static: {said}",
        bin.display()
    );
    bin
}

fn run_in(image: &str, dir: &Path, args: &[&str]) -> Output {
    let mount = format!("{}:/work:ro", dir.display());
    let mut all = vec!["run", "--rm", "--network=none", "-v", &mount, image];
    all.extend_from_slice(args);
    podman(&all)
}

#[test]
fn the_cli_image_runs_the_static_tool_as_the_native_one_answers() {
    static_binary();
    let image = Image(format!("localhost/bpw-cli-test:{}", unique()));
    let built = Command::new(tool("podman"))
        .current_dir(repo_root())
        .args(["build", "--platform", &format!("linux/{}", platform())])
        .args(["-f", "cli/Dockerfile", "-t", &image.0, "build/cli-image"])
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "podman build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let inspect = podman(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.User}} {{json .Config.Entrypoint}} {{.Architecture}}",
        &image.0,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        format!(
            "65532:65532 [\"/usr/local/bin/backstage-proxy-wasm\"] {}",
            platform()
        ),
        "a non-root user, the tool as the entry point, the platform's binary"
    );

    let dir = TempDir::new("cli-image");
    std::fs::copy(
        repo_root().join("examples/app-config/app-config.yaml"),
        dir.0.join("app-config.yaml"),
    )
    .unwrap();
    write(
        &dir.0,
        "bad.yaml",
        "proxy:\n  endpoints:\n    /pd:\n      target: http://t\n      credentials: maybe\n",
    );
    for args in [
        vec!["--version"],
        vec!["check", "app-config.yaml"],
        vec!["check", "app-config.yaml", "bad.yaml"],
    ] {
        let inside = run_in(&image.0, &dir.0, &args);
        let native = Command::new(cli())
            .current_dir(&dir.0)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            inside.status.code(),
            native.status.code(),
            "{args:?}: {inside:?}"
        );
        assert_eq!(inside.stdout, native.stdout, "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&inside.stderr),
            String::from_utf8_lossy(&native.stderr),
            "{args:?}"
        );
    }
    let refused = run_in(&image.0, &dir.0, &["check", "app-config.yaml", "bad.yaml"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("bad.yaml: proxy.endpoints./pd.credentials"),
        "{refused:?}"
    );
}
