//! K. Reliability: bodies are never buffered (`docs/security.md#the-cases`).

use std::io::Write;
use std::thread;
use std::time::Duration;

use backstage_proxy_testkit::*;

use crate::fixture::*;

#[test]
fn k11_g05_a_100_mib_upload_streams_through_byte_identical_without_growing_the_vm() {
    let g = gw(false);
    let before = g.vm_memory();
    assert!(before > 0, "the VM memory gauge is published");
    let size = 100 * 1024 * 1024;
    let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let m = unique();
    let head = format!(
        "PUT /api/proxy/svc/upload?m={m} HTTP/1.1\r\nhost: g\r\nauthorization: {}\r\ncontent-type: application/octet-stream\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n",
        s1()
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", g.envoy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut out);
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
    let seen = g.up.find(&m).unwrap();
    assert_eq!(
        seen.header("content-length"),
        Some(size.to_string().as_str())
    );
    assert!(seen.body == body, "the body changed on the way");
    thread::sleep(Duration::from_millis(300));
    let after = g.vm_memory();
    assert!(after <= before + 128 * 1024, "VM memory {before} → {after}");
}
