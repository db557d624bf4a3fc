//! TLS upstreams: a private CA and server certificates made with the
//! `openssl` command, and a loopback HTTPS server (`testkit/tls_upstream.py`,
//! Python's standard library) that records the SNI of each handshake and
//! each request that got through one. Both fail loudly when their tool is
//! missing: a TLS test never skips.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::*;

/// The `openssl` command, or a panic saying it is needed.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("the `openssl` command is needed to make the test certificates: {e}")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private certificate authority in a directory of its own: `ca.crt`
/// (what a gateway's `--ca-file` names) and its key.
pub struct TestCa {
    pub dir: TempDir,
}

/// A server certificate the test CA issued: its chain and key files.
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new() -> TestCa {
        let dir = TempDir::new("test-ca");
        openssl(
            &dir.0,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=backstage-proxy-wasm test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        TestCa { dir }
    }

    /// The CA certificate (PEM).
    pub fn cert(&self) -> PathBuf {
        self.dir.0.join("ca.crt")
    }

    /// A server certificate for `san` (`DNS:localhost`, `IP:127.0.0.1`,
    /// …) with that name as its common name too, issued by this CA.
    pub fn issue(&self, file_stem: &str, san: &str) -> ServerCert {
        let cn = san.split_once(':').map(|(_, n)| n).unwrap_or(san);
        let (key, csr, crt, ext) = (
            format!("{file_stem}.key"),
            format!("{file_stem}.csr"),
            format!("{file_stem}.crt"),
            format!("{file_stem}.ext"),
        );
        std::fs::write(
            self.dir.0.join(&ext),
            format!("subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"),
        )
        .unwrap();
        openssl(
            &self.dir.0,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        openssl(
            &self.dir.0,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &format!("0x{}", unique_serial()),
                "-days",
                "2",
                "-sha256",
                "-extfile",
                &ext,
                "-out",
                &crt,
            ],
        );
        ServerCert {
            cert: self.dir.0.join(crt),
            key: self.dir.0.join(key),
        }
    }
}

impl Default for TestCa {
    fn default() -> TestCa {
        TestCa::new()
    }
}

/// A serial number no other certificate of the run has.
fn unique_serial() -> String {
    unique()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// What reached a [`TlsUpstream`].
#[derive(Debug, Clone, Default)]
pub struct TlsRecord {
    /// The server name of each handshake (`None`: the client sent none).
    pub sni: Vec<Option<String>>,
    /// Each request that got through a handshake.
    pub requests: Vec<Seen>,
}

/// A loopback HTTPS upstream presenting one certificate, recording what
/// reached it. Stopped when dropped (and when the test process is gone:
/// it exits when its standard input closes).
pub struct TlsUpstream {
    pub port: u16,
    record: PathBuf,
    child: Child,
    _stdin: ChildStdin,
    _dir: TempDir,
}

impl TlsUpstream {
    pub fn start(cert: &ServerCert) -> TlsUpstream {
        let dir = TempDir::new("tls-upstream");
        let record = dir.0.join("record.jsonl");
        let venv = repo_root().join(".venv/bin/python");
        let python = if venv.is_file() {
            venv
        } else {
            PathBuf::from("python3")
        };
        let mut child = Command::new(&python)
            .arg(repo_root().join("testkit/tls_upstream.py"))
            .arg(&cert.cert)
            .arg(&cert.key)
            .arg(&record)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{}: the TLS upstream needs Python 3: {e}", python.display())
            });
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the TLS upstream did not start (it said {line:?})"));
        TlsUpstream {
            port,
            record,
            child,
            _stdin: stdin,
            _dir: dir,
        }
    }

    /// Everything recorded so far.
    pub fn record(&self) -> TlsRecord {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        let mut out = TlsRecord::default();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(sni) = v.get("sni") {
                out.sni.push(sni.as_str().map(str::to_string));
                continue;
            }
            out.requests.push(Seen {
                method: v["method"].as_str().unwrap().to_string(),
                target: v["target"].as_str().unwrap().to_string(),
                headers: crate::client::header_pairs(&v["headers"]),
                body: Vec::new(),
            });
        }
        out
    }

    /// The request whose target contains `mark` (waits briefly for it).
    pub fn find(&self, mark: &str) -> Option<Seen> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if let Some(s) = self
                .record()
                .requests
                .into_iter()
                .find(|s| s.target.contains(mark))
            {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
