//! A real Backstage backend (`examples/backstage`: backend-defaults with
//! the auth, catalog, permission and proxy plugins, from npm) on a loopback
//! port of the test's own, for tests that compare the gateway with what
//! Backstage itself does. Node and `examples/backstage/node_modules`
//! (`make demo-tools`) are required: a test fails, naming them, when they
//! are missing.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{repo_root, TempDir};

pub struct Backstage {
    pub port: u16,
    child: Child,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl Backstage {
    /// Starts Backstage on a free port with `app_config` (YAML, read after
    /// the demo's own settings, then the port), and waits until it answers.
    pub fn start(app_config: &str) -> Backstage {
        Backstage::start_script("index.js", app_config)
    }

    /// [`Backstage::start`] with another backend script, run with the
    /// demo's directory as its working directory (its `node_modules`); a
    /// relative path is read from there.
    pub fn start_script(script: &str, app_config: &str) -> Backstage {
        let root = repo_root();
        let app = root.join("examples/backstage");
        assert!(
            Command::new("node")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()),
            "node is not installed: the test runs a real Backstage (Node 20 or later)"
        );
        assert!(
            app.join("node_modules/@backstage/plugin-proxy-backend")
                .is_dir(),
            "examples/backstage/node_modules is missing: run `make demo-tools` (npm ci)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let dir = TempDir::new("backstage");
        let test_config = dir.0.join("test.yaml");
        std::fs::write(&test_config, app_config).unwrap();
        let listen = dir.0.join("listen.yaml");
        std::fs::write(
            &listen,
            format!("backend:\n  baseUrl: http://127.0.0.1:{port}\n  listen: {{ host: 127.0.0.1, port: {port} }}\n"),
        )
        .unwrap();
        let log = dir.0.join("backstage.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("node")
            .current_dir(&app)
            // A module linked into node_modules (the gateway-permissions
            // module's `file:` dependency) takes its peers from this tree,
            // as it does once installed from npm.
            .arg("--preserve-symlinks")
            .arg(script)
            .args(["--config", "app-config.yaml", "--config"])
            .arg(&test_config)
            .arg("--config")
            .arg(&listen)
            .env("NODE_ENV", "development")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut b = Backstage {
            port,
            child,
            log,
            _dir: dir,
        };
        b.wait_ready();
        b
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("Backstage exited ({status}):\n{}", self.log());
            }
            // The auth plugin's key set answers once the backend is up.
            if self.get_status("/api/auth/.well-known/jwks.json") == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("Backstage did not start within 120 s:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get_status(&self, path: &str) -> Option<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        text.split(' ').nth(1)?.parse().ok()
    }

    /// The status of a request through Backstage (HTTP/1.1, closed after).
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
        self.fetch(method, path, headers).0
    }

    /// The status and body of a request through Backstage (HTTP/1.1,
    /// closed after; a chunked body is joined).
    pub fn fetch(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
            self.port
        );
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        crate::secrets::register_request_secrets(&raw);
        s.write_all(raw.as_bytes()).unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            unchunk(body)
        } else {
            body.to_string()
        };
        (status, body)
    }

    /// Where this Backstage is, for an app-config's `backend.baseUrl`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        &self._dir.0
    }
}

impl Drop for Backstage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chunked body's chunks, joined.
fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
