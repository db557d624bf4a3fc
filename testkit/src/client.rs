//! Raw client

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::*;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        first_of(&self.headers, name)
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        all_of(&self.headers, name)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// Sends raw bytes and reads one response (to EOF or its length).
pub fn http(port: u16, raw: &str) -> std::io::Result<Response> {
    register_request_secrets(raw);
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(raw.as_bytes())?;
    let mut reader = BufReader::new(s.try_clone()?);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers = read_head(&mut reader).unwrap_or_default();
    let head = raw.starts_with("HEAD ");
    let body = if status == 101 || head || status == 204 || status == 304 {
        Vec::new()
    } else {
        match read_body(&mut reader, &headers) {
            Some(b) => b?,
            None => {
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest);
                rest
            }
        }
    };
    let _ = s.shutdown(Shutdown::Both);
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// One HTTP/2 request over cleartext with exactly these pseudo-headers and
/// headers, unchecked (testkit/h2_client.py, Python's `h2` from .venv):
/// what a hostile HTTP/2 client sends. Status 0 when the stream was reset.
pub fn h2(port: u16, headers: &[(&str, &str)]) -> Response {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `make envoy` (it installs the h2 client's package too)",
        python.display()
    );
    for (n, v) in headers {
        register_request_secrets(&format!("{n}: {v}"));
    }
    let request: Vec<[&str; 2]> = headers.iter().map(|(n, v)| [*n, *v]).collect();
    let mut child = Command::new(python)
        .arg(repo_root().join("testkit/h2_client.py"))
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&request).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "h2 client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Response {
        status: v["status"].as_u64().unwrap_or(0) as u16,
        headers: header_pairs(&v["headers"]),
        body: v["body"].as_str().unwrap().bytes().collect(),
    }
}

/// A JSON list of `[name, value]` pairs, as the Python helpers print
/// headers.
pub fn header_pairs(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_string(),
                h[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
