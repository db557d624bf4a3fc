//! What a verification costs inside Envoy, side by side in one run.
//!
//! One Envoy (one worker) with the filter, one keep-alive connection, the
//! same endpoint; for each token kind N sequential requests, median and p90
//! latency. The static token needs no crypto: the difference to it is the
//! in-VM cost of the verification. "cold" rows run with the verified-token
//! cache disabled (`tokenCacheSize: 0`), so every request checks a
//! signature; the "cached" row uses the cache.
//!
//!     cargo bench --bench verify_in_envoy      (or: make bench-verify)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::mint::*;
use support::*;

const N: usize = 2000;

fn keep_alive_run(port: u16, token: &str, n: usize) -> Vec<Duration> {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let req = format!(
        "GET /api/proxy/svc/x HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {token}\r\n\r\n"
    );
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        w.write_all(req.as_bytes()).unwrap();
        let mut status = String::new();
        r.read_line(&mut status).unwrap();
        assert!(status.contains(" 200 "), "{status}");
        let mut len = 0;
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        out.push(t0.elapsed());
    }
    out
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e6
}

fn main() {
    let keys = KeyServer::start();
    let up = Upstream::start(&[]);
    let es = Es256::new(1, "es");
    let ed = Ed::new(2, "ed");
    let rs = Rsa::test_key("rs");
    let ps = Rsa::from_pem(
        include_str!("../tests/fixtures/rsa2048-test-key.pem"),
        "ps",
        true,
    );
    keys.set(
        "/api/auth/.well-known/jwks.json",
        KeyMode::Serve(key_set(&[&es, &ed, &rs, &ps])),
    );
    let secret = b"legacy-shared-secret-for-bench-0";
    let t = now();
    let start = |cache: usize| {
        let config = format!(
            r#"{{"proxy":{{"endpoints":{{"/svc":"http://127.0.0.1:{}"}}}},"backend":{{"baseUrl":"http://127.0.0.1:{}","auth":{{
                "keys":[{{"secret":"{}"}}],
                "externalAccess":[{{"type":"static","options":{{"token":"static-bench-token-0123","subject":"bench"}}}}]}}}},
                "gateway":{{"tokenCacheSize":{cache}}}}}"#,
            up.port,
            keys.port,
            b64url(secret)
        );
        Envoy::start(
            EnvoyOptions::new(config)
                .cluster(format!("http_127.0.0.1_{}", up.port), up.port)
                .cluster(format!("http_127.0.0.1_{}", keys.port), keys.port),
        )
    };
    let cold = start(0);
    let warm = start(1024);
    let legacy = hs256_raw(
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"sub":"backstage-server","exp":{}}}"#, t + 3600),
        secret,
    );
    let rows: Vec<(&str, &Envoy, String)> = vec![
        (
            "static token (no crypto)",
            &cold,
            "static-bench-token-0123".to_string(),
        ),
        ("legacy HS256, cold", &cold, legacy),
        (
            "user ES256, cold",
            &cold,
            user_token(&es, "user:default/b", t, t + 3600),
        ),
        (
            "user RS256, cold",
            &cold,
            user_token(&rs, "user:default/b", t, t + 3600),
        ),
        (
            "user PS256, cold",
            &cold,
            user_token(&ps, "user:default/b", t, t + 3600),
        ),
        (
            "user EdDSA, cold",
            &cold,
            user_token(&ed, "user:default/b", t, t + 3600),
        ),
        (
            "user ES256, cached",
            &warm,
            user_token(&es, "user:default/b", t, t + 3600),
        ),
    ];
    println!(
        "{:<28} {:>10} {:>10} {:>14}",
        "token", "p50 us", "p90 us", "p50 - static"
    );
    let mut base = None;
    for (name, envoy, token) in rows {
        keep_alive_run(envoy.port, &token, 200); // warm-up: key set fetched, VM code hot
        let mut lat = keep_alive_run(envoy.port, &token, N);
        let (p50, p90) = (pct(&mut lat, 0.5), pct(&mut lat, 0.9));
        let b = *base.get_or_insert(p50);
        println!("{name:<28} {p50:>10.1} {p90:>10.1} {:>14.1}", p50 - b);
    }
    println!(
        "({N} sequential requests per row on one keep-alive connection, Envoy --concurrency 1)"
    );
}
