//! A container registry on loopback (Debian's docker-registry) and skopeo,
//! as the image tests push and pull with: the image pushed with the make
//! target the release workflow pushes with, read back from the registry.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backstage_proxy_testkit::{http, repo_root, TempDir};

use super::{tool, write};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Registry {
    child: std::process::Child,
    pub port: u16,
    _dir: TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// `127.0.0.1:PORT/REPO:TAG` in this registry.
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("127.0.0.1:{}/{repo_tag}", self.port)
    }
}

pub fn start_registry() -> Registry {
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

/// `make -s TARGET DIR_VAR=dir OCI_TAG=test OCI_REF=reference`: the image
/// layout `dir` pushed by the release workflow's target, to a registry
/// without TLS.
pub fn make_push(target: &str, dir_var: &str, dir: &Path, reference: &str) {
    let push = Command::new("make")
        .current_dir(repo_root())
        .args([
            "-s",
            target,
            &format!("{dir_var}={}", dir.display()),
            "OCI_TAG=test",
            &format!("OCI_REF={reference}"),
            "OCI_PUSH_FLAGS=--dest-tls-verify=false",
        ])
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "make {target}: {}",
        String::from_utf8_lossy(&push.stderr)
    );
}

/// `skopeo inspect --raw` of `reference` (add `--config` for the image
/// configuration): the bytes the registry serves.
pub fn inspect_raw(reference: &str, config: bool) -> Vec<u8> {
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    if config {
        args.push("--config");
    }
    let docker = format!("docker://{reference}");
    args.push(&docker);
    let raw = Command::new(tool("skopeo")).args(&args).output().unwrap();
    assert!(
        raw.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&raw.stderr)
    );
    raw.stdout
}

/// Pulls `reference` with skopeo into the image layout `dir` (tag
/// `pulled`); returns the bytes of the blob `digest` (`sha256:…`) there.
pub fn pull_blob(reference: &str, dir: &Path, digest: &str) -> Vec<u8> {
    let pull = Command::new(tool("skopeo"))
        .args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{reference}"),
            &format!("oci:{}:pulled", dir.display()),
        ])
        .output()
        .unwrap();
    assert!(
        pull.status.success(),
        "pull: {}",
        String::from_utf8_lossy(&pull.stderr)
    );
    std::fs::read(blob_path(dir, digest)).unwrap()
}

pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}
