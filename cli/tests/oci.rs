//! The OCI image, built twice (one digest), pushed to a docker-registry on
//! loopback as the release workflow pushes it, inspected and pulled back
//! with skopeo: the layer's plugin.wasm is the build.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backstage_proxy_testkit::{http, repo_root, wasm_path, TempDir};
use common::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Registry {
    child: std::process::Child,
    port: u16,
    _dir: TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry() -> Registry {
    let dir = TempDir::new("registry");
    let port = free_port();
    let cfg = write(
        &dir.0,
        "config.yml",
        &format!("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n", dir.0.join("data").display()),
    );
    let child = Command::new(tool("docker-registry"))
        .args(["serve", &cfg])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http(
        port,
        "GET /v2/ HTTP/1.1\r\nhost: r\r\nconnection: close\r\n\r\n",
    )
    .map(|r| r.status)
    .unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "docker-registry did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Registry {
        child,
        port,
        _dir: dir,
    }
}

#[test]
fn oci_image_is_reproducible_and_round_trips_through_a_registry() {
    let dir = TempDir::new("oci");
    let wasm = wasm_path();
    let digest = build_twice(&dir.0, &wasm);
    let a = dir.0.join("a").display().to_string();

    let reg = start_registry();
    let dest = format!("docker://127.0.0.1:{}/backstage-proxy-wasm:test", reg.port);
    let skopeo = tool("skopeo");
    // Pushed as the release workflow pushes: `make oci-push`.
    push(&a, reg.port);
    // the registry serves exactly our manifest
    let manifest = served_manifest(&skopeo, &dest, &digest);
    // pull it back and compare the layer's plugin.wasm with the build
    let pulled = dir.0.join("pulled").display().to_string();
    let pull = Command::new(&skopeo)
        .args([
            "copy",
            "--src-tls-verify=false",
            &dest,
            &format!("oci:{pulled}:pulled"),
        ])
        .output()
        .unwrap();
    assert!(
        pull.status.success(),
        "pull: {}",
        String::from_utf8_lossy(&pull.stderr)
    );
    let layer_digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let layer = std::fs::read(Path::new(&pulled).join("blobs/sha256").join(layer_digest)).unwrap();
    let files = backstage_proxy_wasm_cli::oci::untar(
        &backstage_proxy_wasm_cli::oci::gunzip(&layer).unwrap(),
    )
    .unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "plugin.wasm");
    assert!(
        files[0].1 == std::fs::read(&wasm).unwrap(),
        "plugin.wasm is byte-identical to the build"
    );
}

/// Two builds of the same `.wasm` (in `a` and `b` below `dir`): one
/// manifest digest, which it returns.
fn build_twice(dir: &Path, wasm: &Path) -> String {
    let wasm_s = wasm.display().to_string();
    let a = dir.join("a").display().to_string();
    let b = dir.join("b").display().to_string();
    let da = run_cli(
        &["oci", "--wasm", &wasm_s, "--output", &a, "--tag", "test"],
        &[],
        None,
    );
    let db = run_cli(
        &["oci", "--wasm", &wasm_s, "--output", &b, "--tag", "test"],
        &[],
        None,
    );
    assert!(da.status.success(), "{}", stderr(&da));
    let digest = stdout(&da).trim().to_string();
    assert_eq!(
        digest,
        stdout(&db).trim(),
        "two builds, one manifest digest"
    );
    assert!(digest.starts_with("sha256:") && digest.len() == 71);
    digest
}

/// `make oci-push` of the image layout `dir` to the registry on `port`.
fn push(dir: &str, port: u16) {
    let push = Command::new("make")
        .current_dir(repo_root())
        .args([
            "-s",
            "oci-push",
            &format!("OCI_DIR={dir}"),
            "OCI_TAG=test",
            &format!("OCI_REF=127.0.0.1:{port}/backstage-proxy-wasm:test"),
            "OCI_PUSH_FLAGS=--dest-tls-verify=false",
        ])
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "push: {}",
        String::from_utf8_lossy(&push.stderr)
    );
}

/// The manifest the registry serves for `dest`: the image's, with one
/// tar+gzip layer.
fn served_manifest(skopeo: &Path, dest: &str, digest: &str) -> serde_json::Value {
    let raw = Command::new(skopeo)
        .args(["inspect", "--raw", "--tls-verify=false", dest])
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(
        format!(
            "sha256:{}",
            backstage_proxy_wasm_cli::oci::sha256_hex(&raw.stdout)
        ),
        digest,
        "Istio's sha256 is this digest"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    manifest
}
