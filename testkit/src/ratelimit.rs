//! A recording stand-in for Envoy's rate limit service (`ratelimit/stub.py`,
//! Python's grpcio from `.venv`, installed by `make grpc-tools`): the real
//! service (envoyproxy/ratelimit, on Redis) cannot be installed here. It
//! records the domain and descriptors of every call and answers from the
//! configuration `backstage-proxy-wasm ratelimit-config` writes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::{repo_root, TempDir};

pub struct RateLimitStub {
    pub port: u16,
    child: Child,
    record: PathBuf,
    _dir: TempDir,
}

impl RateLimitStub {
    /// Starts the stand-in with this service configuration (JSON, which
    /// is YAML); returns once it listens.
    pub fn start(config: &serde_json::Value) -> RateLimitStub {
        let python = repo_root().join(".venv/bin/python");
        assert!(
            python.is_file(),
            "{} is missing: run `make grpc-tools` (the rate limit service stand-in needs grpcio)",
            python.display()
        );
        let dir = TempDir::new("ratelimit-stub");
        let config_path = dir.0.join("config.yaml");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let record = dir.0.join("record.jsonl");
        let mut child = Command::new(python)
            .arg(repo_root().join("testkit/ratelimit/stub.py"))
            .arg("--config")
            .arg(&config_path)
            .arg("--record")
            .arg(&record)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("the rate limit stand-in did not start (is grpcio installed? `make grpc-tools`): {line:?}")
            });
        RateLimitStub {
            port,
            child,
            record,
            _dir: dir,
        }
    }

    /// Every call so far: `{"domain", "descriptors": [[[key, value], …], …]}`.
    pub fn calls(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Stops it: the service is down from here on.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RateLimitStub {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Envoy flushes its access log on a timer: waits (up to 15 s) for `n`
/// lines in `path` and returns its text.
pub fn wait_for_lines(path: &std::path::Path, n: usize) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n || std::time::Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
