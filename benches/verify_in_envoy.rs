//! What a verification costs inside Envoy, side by side in one run.
//!
//! One Envoy (one worker) with the filter, one keep-alive connection, the
//! same endpoint; for each token kind N sequential requests per round, in
//! ROUNDS interleaved rounds: median and p90 latency, and Envoy's CPU time
//! per request (utime + stime from /proc, which a shared machine's
//! scheduling disturbs far less than latency). The static token needs no
//! crypto: the difference to it is the in-VM cost of the verification.
//! "cold" rows run with the verified-token cache disabled
//! (`tokenCacheSize: 0`), so every request checks a signature; the "cached"
//! row uses the cache.
//!
//!     cargo bench --bench verify_in_envoy      (or: make bench-verify)

use backstage_proxy_testkit as support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::mint::*;
use support::*;

const N: usize = 2000;
const ROUNDS: usize = 3;

/// utime + stime of a process, in microseconds.
fn cpu_us(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| f.get(*i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    ticks * 1e6 / 100.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

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
    let ps = Rsa::from_pem(backstage_proxy_testkit::mint::RSA2048_PEM, "ps", true);
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
                .cluster(cluster_for_port(up.port), up.port)
                .cluster(cluster_for_port(keys.port), keys.port),
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
    // per row: (p50, p90, cpu µs/request) of each round
    let mut results: Vec<Vec<(f64, f64, f64)>> = vec![vec![]; rows.len()];
    for (name, envoy, token) in &rows {
        keep_alive_run(envoy.port, token, 200); // warm-up: key set fetched, VM code hot
        eprintln!("warmed up: {name}");
    }
    for _ in 0..ROUNDS {
        for ((_, envoy, token), out) in rows.iter().zip(results.iter_mut()) {
            let before = cpu_us(envoy.pid());
            let mut lat = keep_alive_run(envoy.port, token, N);
            let cpu = (cpu_us(envoy.pid()) - before) / N as f64;
            out.push((pct(&mut lat, 0.5), pct(&mut lat, 0.9), cpu));
        }
    }
    println!(
        "{:<28} {:>8} {:>8} {:>13} {:>12} {:>12}",
        "token", "p50 us", "p90 us", "p50 - static", "CPU us/req", "CPU - static"
    );
    let col = |r: &Vec<(f64, f64, f64)>, f: fn(&(f64, f64, f64)) -> f64| {
        median(r.iter().map(f).collect())
    };
    let base = &results[0];
    for ((name, _, _), r) in rows.iter().zip(&results) {
        // differences per round, then their median: the rounds share conditions
        let d50 = median(r.iter().zip(base).map(|(a, b)| a.0 - b.0).collect());
        let dcpu = median(r.iter().zip(base).map(|(a, b)| a.2 - b.2).collect());
        println!(
            "{name:<28} {:>8.1} {:>8.1} {d50:>13.1} {:>12.1} {dcpu:>12.1}",
            col(r, |x| x.0),
            col(r, |x| x.1),
            col(r, |x| x.2),
        );
    }
    println!(
        "({ROUNDS} interleaved rounds of {N} sequential requests per row, one keep-alive connection each, Envoy --concurrency 1; medians over rounds)"
    );
}
