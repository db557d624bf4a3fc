//! `make bench`: what the filter costs, side by side in one run.
//!
//! Every system forwards the same request (`GET /api/proxy/svc/x` with a
//! bearer token) to the same fast upstream (an Envoy `direct_response`
//! listener), on loopback, Envoy pinned to one worker:
//!
//! 1. bare Envoy, same route and rewrite, no filter;
//! 2. the filter, `require` endpoint, static token;
//! 3. the filter, Backstage user token (ES256), verified-token cache warm;
//! 4. the filter, the same token, cache disabled (a verification per request);
//! 5. Envoy's native `jwt_authn` (ES256, `local_jwks`) with its JWT cache,
//!    and 5b. without it;
//! 6. Backstage's own proxy backend (Node, `createBackend()` + the proxy
//!    plugin + a static token), from `bench/backstage`.
//!
//! Throughput: `wrk` at 32 connections. Latency: `wrk` at one connection (so
//! latency is not queueing). Ratios are to bare Envoy. Also: CPU per
//! request, the `.wasm` size, the per-VM memory after a long run. Writes the
//! table to stdout and JSON to `bench/results/latest.json`.
//!
//! Environment: BENCH_SECONDS (per wrk run, default 10), BENCH_SOAK
//! (requests before reading VM memory, default 1000000), BENCH_SKIP_NODE=1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::mint::*;
use support::*;

const STATIC: &str = "static-bench-token-0123";
const PATH: &str = "/api/proxy/svc/x";

#[derive(Debug, Clone, Default)]
struct Wrk {
    rps: f64,
    requests: u64,
    errors: u64,
    p50: f64,
    p75: f64,
    p90: f64,
    p99: f64,
}

fn micros(s: &str) -> f64 {
    let s = s.trim();
    let (num, mult) = if let Some(v) = s.strip_suffix("us") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1e3)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1e6)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>().unwrap_or(f64::NAN) * mult
}

fn wrk(port: u16, conns: u32, secs: u64, token: Option<&str>) -> Wrk {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t1",
        &format!("-c{conns}"),
        &format!("-d{secs}s"),
        "--latency",
        "--timeout",
        "5s",
    ]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    cmd.arg(format!("http://127.0.0.1:{port}{PATH}"));
    let out = cmd.output().expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut w = Wrk::default();
    for line in text.lines() {
        let l = line.trim();
        let mut parts = l.split_whitespace();
        match parts.next() {
            Some("50%") => w.p50 = micros(parts.next().unwrap_or("")),
            Some("75%") => w.p75 = micros(parts.next().unwrap_or("")),
            Some("90%") => w.p90 = micros(parts.next().unwrap_or("")),
            Some("99%") => w.p99 = micros(parts.next().unwrap_or("")),
            Some("Requests/sec:") => {
                w.rps = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0.0)
            }
            Some("Non-2xx") => {
                w.errors += l
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            }
            Some("Socket") => {
                w.errors += l
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {
                if let Some((n, _)) = l.split_once(" requests in ") {
                    w.requests = n.trim().parse().unwrap_or(0);
                }
            }
        }
    }
    assert!(
        w.requests > 0,
        "wrk produced no result:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    w
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

struct Row {
    name: &'static str,
    through: Wrk,
    latency: Wrk,
    cpu_us_per_req: f64,
}

fn measure(name: &'static str, port: u16, pid: u32, token: Option<&str>, secs: u64) -> Row {
    // warm-up: key sets fetched, connections and VM code hot
    wrk(port, 4, 2, token);
    let c0 = cpu_seconds(pid);
    let through = wrk(port, 32, secs, token);
    let c1 = cpu_seconds(pid);
    let latency = wrk(port, 1, secs, token);
    let cpu_us_per_req = (c1 - c0) * 1e6 / through.requests.max(1) as f64;
    eprintln!(
        "  {name}: {:.0} req/s, p50 at 1 connection {:.0} us",
        through.rps, latency.p50
    );
    Row {
        name,
        through,
        latency,
        cpu_us_per_req,
    }
}

fn start_yaml(yaml: &str, tag: &str) -> Envoy {
    let dir = TempDir::new(tag);
    let path = dir.0.join("envoy.yaml");
    std::fs::write(&path, yaml).unwrap();
    Envoy::run_file(&path, 1, dir, &[], &[]).unwrap_or_else(|(log, _)| panic!("{log}"))
}

fn native(upstream: u16, jwt: Option<(&Value, bool)>) -> Envoy {
    let template =
        std::fs::read_to_string(repo_root().join("bench/envoy-native.yaml.tmpl")).unwrap();
    let filter = match jwt {
        None => String::new(),
        Some((jwks, cache)) => {
            let mut provider = json!({
                "local_jwks": { "inline_string": jwks.to_string() },
                "forward": false,
            });
            if cache {
                provider["jwt_cache_config"] = json!({ "jwt_cache_size": 100 });
            }
            let cfg = json!({
                "name": "envoy.filters.http.jwt_authn",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                    "providers": { "backstage": provider },
                    "rules": [{ "match": { "prefix": "/api/proxy" }, "requires": { "provider_name": "backstage" } }]
                }
            });
            format!("\n          - {}", serde_json::to_string(&cfg).unwrap())
        }
    };
    let yaml = template
        .replace("{{UPSTREAM_PORT}}", &upstream.to_string())
        .replace("{{JWT_AUTHN}}", &filter);
    start_yaml(&yaml, "native")
}

fn filter(upstream: u16, keys: &KeyServer, cache: usize) -> Envoy {
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":"http://127.0.0.1:{upstream}"}}}},
            "backend":{{"baseUrl":"http://127.0.0.1:{}","auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{STATIC}","subject":"bench"}}}}]}}}},
            "gateway":{{"tokenCacheSize":{cache}}}}}"#,
        keys.port
    );
    Envoy::start(
        EnvoyOptions::new(config)
            .cluster(format!("http_127.0.0.1_{upstream}"), upstream)
            .cluster(format!("http_127.0.0.1_{}", keys.port), keys.port),
    )
}

struct Node {
    child: Child,
    port: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn backstage(upstream: u16) -> Option<Node> {
    let dir = repo_root().join("bench/backstage");
    if !dir
        .join("node_modules/@backstage/plugin-proxy-backend")
        .is_dir()
    {
        eprintln!("  Backstage's proxy not installed (make bench installs it with npm): skipped");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = std::env::temp_dir().join(format!("bpw-bench-backstage-{}.yaml", std::process::id()));
    std::fs::write(
        &cfg,
        format!(
            "backend:\n  baseUrl: http://127.0.0.1:{port}\n  listen: {{ host: 127.0.0.1, port: {port} }}\n  database: {{ client: better-sqlite3, connection: ':memory:' }}\n  auth:\n    externalAccess:\n      - type: static\n        options: {{ token: {STATIC}, subject: bench }}\nproxy:\n  endpoints:\n    /svc: {{ target: 'http://127.0.0.1:{upstream}', credentials: require }}\n"
        ),
    )
    .unwrap();
    let child = Command::new("node")
        .current_dir(&dir)
        .args(["index.js", "--config"])
        .arg(&cfg)
        // warn: Backstage's per-request access log off, to its advantage
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let node = Node { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = http(port, &format!("GET {PATH} HTTP/1.1\r\nhost: b\r\nauthorization: Bearer {STATIC}\r\nconnection: close\r\n\r\n")).map(|r| r.status == 200).unwrap_or(false);
        if ok {
            return Some(node);
        }
        if Instant::now() > deadline {
            eprintln!("  Backstage did not come up: skipped");
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Drives the filter until it has served `n` requests, then reads each
/// VM's linear memory gauge.
fn soak_memory(envoy: &Envoy, token: &str, n: u64) -> (u64, Vec<(String, u64)>) {
    let served = |e: &Envoy| e.counter("http.gateway.downstream_rq_total");
    while served(envoy) < n {
        wrk(envoy.port, 32, 10, Some(token));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut vms: Vec<(String, u64)> = envoy
        .stats()
        .into_iter()
        .filter(|(k, _)| k.contains("backstage_proxy.vm_memory_bytes."))
        .collect();
    vms.sort();
    (served(envoy), vms)
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken from the command line.
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let soak: u64 = std::env::var("BENCH_SOAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let wasm_size = std::fs::metadata(wasm_path()).map(|m| m.len()).unwrap_or(0);

    let upstream = start_yaml(
        &std::fs::read_to_string(repo_root().join("bench/envoy-upstream.yaml")).unwrap(),
        "upstream",
    );
    let up = upstream.port;
    let keys = KeyServer::start();
    let es = Es256::new(1, "bench-es256");
    keys.set(
        "/api/auth/.well-known/jwks.json",
        KeyMode::Serve(key_set(&[&es])),
    );
    let t = now();
    let user = user_token(&es, "user:default/bench", t, t + 86_400);
    let jwks: Value = serde_json::from_str(&key_set(&[&es])).unwrap();

    eprintln!("benchmark: {secs} s per run, wrk -t1, Envoy --concurrency 1, upstream = Envoy direct_response");
    let mut rows = Vec::new();
    {
        let e = native(up, None);
        rows.push(measure(
            "bare Envoy (no filter)",
            e.port,
            e.pid(),
            Some(&user),
            secs,
        ));
    }
    {
        let e = filter(up, &keys, 1024);
        rows.push(measure(
            "filter, static token",
            e.port,
            e.pid(),
            Some(STATIC),
            secs,
        ));
        rows.push(measure(
            "filter, ES256 user, cache warm",
            e.port,
            e.pid(),
            Some(&user),
            secs,
        ));
    }
    {
        let e = filter(up, &keys, 0);
        rows.push(measure(
            "filter, ES256 user, no cache",
            e.port,
            e.pid(),
            Some(&user),
            secs,
        ));
    }
    {
        let e = native(up, Some((&jwks, true)));
        rows.push(measure(
            "jwt_authn ES256, cache on",
            e.port,
            e.pid(),
            Some(&user),
            secs,
        ));
    }
    {
        let e = native(up, Some((&jwks, false)));
        rows.push(measure(
            "jwt_authn ES256, no cache",
            e.port,
            e.pid(),
            Some(&user),
            secs,
        ));
    }
    if std::env::var("BENCH_SKIP_NODE").is_err() {
        if let Some(n) = backstage(up) {
            let pid = n.child.id();
            rows.push(measure(
                "Backstage proxy (Node)",
                n.port,
                pid,
                Some(STATIC),
                secs,
            ));
        }
    }

    let bare = rows
        .first()
        .map(|r| (r.through.rps, r.latency.p50))
        .unwrap_or((1.0, 0.0));
    println!();
    println!(
        "{:<34} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>10} {:>11}",
        "system",
        "req/s",
        "x bare",
        "p50 us",
        "p90 us",
        "p99 us",
        "p50-bare",
        "p99@32 us",
        "CPU us/req"
    );
    for r in &rows {
        println!(
            "{:<34} {:>10.0} {:>7.2} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>10.0} {:>11.1}",
            r.name,
            r.through.rps,
            r.through.rps / bare.0,
            r.latency.p50,
            r.latency.p90,
            r.latency.p99,
            r.latency.p50 - bare.1,
            r.through.p99,
            r.cpu_us_per_req
        );
    }
    let errors: u64 = rows
        .iter()
        .map(|r| r.through.errors + r.latency.errors)
        .sum();
    println!("(throughput: 32 connections; latency: 1 connection; {secs} s each; non-2xx/socket errors: {errors})");

    // Per-VM memory after a long run of the filter with a cached token.
    let e = filter(up, &keys, 1024);
    let (served, vms) = soak_memory(&e, &user, soak);
    println!("\n.wasm: {wasm_size} bytes");
    println!("per-VM linear memory after {served} requests through the filter:");
    for (k, v) in &vms {
        println!("  {k}: {:.2} MiB", *v as f64 / 1048576.0);
    }

    let result = json!({
        "seconds_per_run": secs,
        "wasm_bytes": wasm_size,
        "errors": errors,
        "rows": rows.iter().map(|r| json!({
            "system": r.name,
            "rps_32": r.through.rps,
            "ratio_to_bare": r.through.rps / bare.0,
            "p50_us_1": r.latency.p50, "p75_us_1": r.latency.p75, "p90_us_1": r.latency.p90, "p99_us_1": r.latency.p99,
            "p50_us_32": r.through.p50, "p99_us_32": r.through.p99,
            "cpu_us_per_request": r.cpu_us_per_req,
        })).collect::<Vec<_>>(),
        "soak_requests": served,
        "vm_memory_bytes": vms.iter().map(|(k, v)| json!({ "vm": k, "bytes": v })).collect::<Vec<_>>(),
    });
    let out = repo_root().join("bench/results/latest.json");
    std::fs::write(&out, serde_json::to_string_pretty(&result).unwrap()).unwrap();
    println!("\nwrote {}", Path::new(&out).display());
}
