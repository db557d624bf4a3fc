//! The recording upstream

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    /// Every header line in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The first value of a header in a recorded list.
pub(crate) fn first_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Every value of a header in a recorded list, in order.
pub(crate) fn all_of<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        first_of(&self.headers, name)
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        all_of(&self.headers, name)
    }
    pub fn names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// A loopback HTTP/1.1 server that records each request and answers 200
/// with the configured extra response header lines (or 101 to a WebSocket
/// upgrade).
pub struct Upstream {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub fn start(response_headers: &[(&str, &str)]) -> Upstream {
        Upstream::start_on(0, response_headers)
    }

    /// On a given loopback port (0: any).
    pub fn start_on(port: u16, response_headers: &[(&str, &str)]) -> Upstream {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let extra: Vec<(String, String)> = response_headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let record = seen.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let record = record.clone();
                let extra = extra.clone();
                thread::spawn(move || serve(conn, &record, &extra));
            }
        });
        Upstream { port, seen }
    }

    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The request whose target contains `mark` (waits briefly for it).
    pub fn find(&self, mark: &str) -> Option<Seen> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if let Some(s) = self
                .seen
                .lock()
                .unwrap()
                .iter()
                .find(|s| s.target.contains(mark))
            {
                return Some(s.clone());
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Asserts nothing carrying `mark` ever reached this upstream.
    pub fn assert_never(&self, mark: &str) {
        thread::sleep(Duration::from_millis(150));
        let hits: Vec<Seen> = self
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.target.contains(mark) || s.headers.iter().any(|(_, v)| v.contains(mark)))
            .cloned()
            .collect();
        assert!(
            hits.is_empty(),
            "expected nothing to reach the upstream, but it saw {hits:?}"
        );
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// Reads header lines up to the blank line (names lower-cased); `None` at EOF.
pub(crate) fn read_head(reader: &mut impl BufRead) -> Option<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        // bytes, not read_line: header values may hold obs-text (non-UTF-8)
        let mut raw = Vec::new();
        if reader.read_until(b'\n', &mut raw).unwrap_or(0) == 0 {
            return None;
        }
        let h = String::from_utf8_lossy(&raw);
        let h = h.trim_end();
        if h.is_empty() {
            return Some(headers);
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
}

/// Reads a body framed by content-length or chunked encoding (`None` when
/// neither frames it).
pub(crate) fn read_body(
    reader: &mut impl BufRead,
    headers: &[(String, String)],
) -> Option<std::io::Result<Vec<u8>>> {
    let mut body = Vec::new();
    if let Some(len) = first_of(headers, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        return Some(reader.read_exact(&mut body).map(|_| body));
    }
    if !first_of(headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return None;
    }
    loop {
        let mut size = String::new();
        if let Err(e) = reader.read_line(&mut size) {
            return Some(Err(e));
        }
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let mut chunk = vec![0; n + 2];
        if let Err(e) = reader.read_exact(&mut chunk) {
            return Some(Err(e));
        }
        if n == 0 {
            return Some(Ok(body));
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

fn serve(conn: TcpStream, record: &Mutex<Vec<Seen>>, extra: &[(String, String)]) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ' ');
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let Some(headers) = read_head(&mut reader) else {
            return;
        };
        let get = |name: &str| first_of(&headers, name).map(str::to_string);
        let body = match read_body(&mut reader, &headers) {
            None => Vec::new(),
            Some(Ok(b)) => b,
            Some(Err(_)) => return,
        };
        let upgrade = get("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        record.lock().unwrap().push(Seen {
            method: method.clone(),
            target: target.clone(),
            headers: headers.clone(),
            body,
        });
        if upgrade {
            let _ = out.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
            );
            let _ = out.flush();
            thread::sleep(Duration::from_millis(200));
            return;
        }
        let payload = format!(
            "{{\"method\":\"{method}\",\"target\":\"{}\"}}",
            target.replace('"', "%22")
        );
        let mut resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            payload.len()
        );
        for (n, v) in extra {
            resp.push_str(&format!("{n}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        resp.push_str(&payload);
        if out.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
