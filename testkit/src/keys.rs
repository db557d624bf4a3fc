//! A key-set server that can rotate keys, go down, stall, answer garbage or
//! redirect, and counts the fetches it served per path.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::*;

#[derive(Debug, Clone)]
pub enum KeyMode {
    /// 200 with this body.
    Serve(String),
    Status(u16),
    Redirect(String),
    Garbage,
    /// 200 with a body of this many bytes.
    Huge(usize),
    /// Close the connection without answering.
    Refuse,
    /// Wait this long, then serve the body.
    Stall(u64, String),
}

pub struct KeyServer {
    pub port: u16,
    modes: Arc<Mutex<HashMap<String, KeyMode>>>,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl KeyServer {
    pub fn start() -> KeyServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let modes: Arc<Mutex<HashMap<String, KeyMode>>> = Arc::new(Mutex::new(HashMap::new()));
        let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::new(Mutex::new(HashMap::new()));
        let (m, c) = (modes.clone(), counts.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (m, c) = (m.clone(), c.clone());
                thread::spawn(move || key_serve(conn, &m, &c));
            }
        });
        KeyServer {
            port,
            modes,
            counts,
        }
    }

    pub fn set(&self, path: &str, mode: KeyMode) {
        self.modes.lock().unwrap().insert(path.to_string(), mode);
    }

    /// [`KeyServer::set`] from another thread.
    pub fn handle(&self) -> impl Fn(&str, KeyMode) + Send + 'static {
        let modes = self.modes.clone();
        move |path, mode| {
            modes.lock().unwrap().insert(path.to_string(), mode);
        }
    }

    pub fn count(&self, path: &str) -> usize {
        *self.counts.lock().unwrap().get(path).unwrap_or(&0)
    }

    pub fn total(&self) -> usize {
        self.counts.lock().unwrap().values().sum()
    }
}

fn key_serve(
    conn: TcpStream,
    modes: &Mutex<HashMap<String, KeyMode>>,
    counts: &Mutex<HashMap<String, usize>>,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("/").to_string();
        if read_head(&mut reader).is_none() {
            return;
        }
        *counts.lock().unwrap().entry(path.clone()).or_default() += 1;
        let mode = modes
            .lock()
            .unwrap()
            .get(&path)
            .cloned()
            .unwrap_or(KeyMode::Status(404));
        let respond = |out: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
            let head = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n", body.len());
            let _ = out.write_all(head.as_bytes());
            let _ = out.write_all(body);
        };
        match mode {
            KeyMode::Serve(body) => respond(&mut out, "200 OK", "", body.as_bytes()),
            KeyMode::Status(code) => respond(&mut out, &format!("{code} X"), "", b"{}"),
            KeyMode::Redirect(to) => {
                respond(&mut out, "302 Found", &format!("location: {to}\r\n"), b"")
            }
            KeyMode::Garbage => respond(&mut out, "200 OK", "", b"<html>not a key set</html>"),
            KeyMode::Huge(n) => {
                let mut body = br#"{"keys":[],"pad":""#.to_vec();
                body.resize(n, b'x');
                body.extend_from_slice(b"\"}");
                respond(&mut out, "200 OK", "", &body)
            }
            KeyMode::Refuse => {
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            KeyMode::Stall(ms, body) => {
                thread::sleep(Duration::from_millis(ms));
                respond(&mut out, "200 OK", "", body.as_bytes())
            }
        }
    }
}
