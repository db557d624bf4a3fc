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

use backstage_proxy_testkit as support;

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

/// One system's runs, a throughput and a latency run per round.
struct Row {
    name: String,
    through: Vec<Wrk>,
    latency: Vec<Wrk>,
    cpu_us_per_req: Vec<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Row {
    fn rps(&self) -> f64 {
        median(self.through.iter().map(|w| w.rps).collect())
    }
    fn rps_range(&self) -> (f64, f64) {
        let v: Vec<f64> = self.through.iter().map(|w| w.rps).collect();
        (
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(0.0, f64::max),
        )
    }
    fn lat(&self, f: impl Fn(&Wrk) -> f64) -> f64 {
        median(self.latency.iter().map(f).collect())
    }
    fn p99_32(&self) -> f64 {
        median(self.through.iter().map(|w| w.p99).collect())
    }
    fn p50_32(&self) -> f64 {
        median(self.through.iter().map(|w| w.p50).collect())
    }
    fn cpu(&self) -> f64 {
        median(self.cpu_us_per_req.clone())
    }
    fn errors(&self) -> u64 {
        self.through
            .iter()
            .chain(&self.latency)
            .map(|w| w.errors)
            .sum()
    }
}

/// A system under test: where it listens, which process does the work.
struct System {
    name: String,
    port: u16,
    pid: u32,
    token: String,
}

/// One round for one system: throughput at 32 connections (with the
/// process's CPU time around it), then latency at one connection.
fn measure_round(sys: &System, row: &mut Row, secs: u64) {
    let token = Some(sys.token.as_str());
    let c0 = cpu_seconds(sys.pid);
    let through = wrk(sys.port, 32, secs, token);
    let c1 = cpu_seconds(sys.pid);
    let latency = wrk(sys.port, 1, secs, token);
    row.cpu_us_per_req
        .push((c1 - c0) * 1e6 / through.requests.max(1) as f64);
    eprintln!(
        "  {}: {:.0} req/s, p50 at 1 connection {:.0} us",
        sys.name, through.rps, latency.p50
    );
    row.through.push(through);
    row.latency.push(latency);
}

fn start_yaml(yaml: &str, tag: &str) -> Envoy {
    let dir = TempDir::new(tag);
    let path = dir.0.join("envoy.yaml");
    std::fs::write(&path, yaml).unwrap();
    Envoy::run_file(&path, 1, dir, &[], &[]).unwrap_or_else(|(log, _)| panic!("{log}"))
}

/// The no-op proxy-wasm filter (bench/noop-filter, built by `make bench`).
fn noop_wasm() -> Option<std::path::PathBuf> {
    let p = repo_root().join("bench/noop-filter/target/wasm32-wasip1/release/noop_filter.wasm");
    p.is_file().then_some(p)
}

enum Native<'a> {
    Bare,
    Noop(&'a Path),
    JwtAuthn(&'a Value, bool),
}

fn native(upstream: u16, kind: Native<'_>) -> Envoy {
    let template =
        std::fs::read_to_string(repo_root().join("bench/envoy-native.yaml.tmpl")).unwrap();
    let jwt = match kind {
        Native::JwtAuthn(jwks, cache) => Some((jwks, cache)),
        _ => None,
    };
    let filter = match (jwt, &kind) {
        (None, Native::Noop(wasm)) => {
            let cfg = json!({
                "name": "envoy.filters.http.wasm",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                    "config": {
                        "name": "noop",
                        "failure_policy": "FAIL_CLOSED",
                        "vm_config": {
                            "vm_id": "noop",
                            "runtime": "envoy.wasm.runtime.v8",
                            "code": { "local": { "filename": wasm.display().to_string() } }
                        }
                    }
                }
            });
            format!("\n          - {}", serde_json::to_string(&cfg).unwrap())
        }
        (None, _) => String::new(),
        (Some((jwks, cache)), _) => {
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

/// `policies`: more of the `gateway` section (`gateway.access`,
/// `gateway.rateLimits`), after a comma.
const POLICY: &str = r#","access":{"/svc":{"allow":["subject:bench","group:default/sre"]}}"#;
const RATE_LIMIT: &str = r#","rateLimits":{"/svc":{"perPrincipal":{"requests":1000000000,"seconds":60},"total":{"requests":1000000000,"seconds":60}}}"#;

fn filter(
    upstream: u16,
    keys: &KeyServer,
    cache: usize,
    wasm: Option<&Path>,
    policies: &str,
) -> Envoy {
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":"http://127.0.0.1:{upstream}"}}}},
            "backend":{{"baseUrl":"http://127.0.0.1:{}","auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{STATIC}","subject":"bench"}}}}]}}}},
            "gateway":{{"tokenCacheSize":{cache}{policies}}}}}"#,
        keys.port
    );
    let mut opts = EnvoyOptions::new(config)
        .cluster(format!("http_127.0.0.1_{upstream}"), upstream)
        .cluster(format!("http_127.0.0.1_{}", keys.port), keys.port);
    opts.wasm = wasm.map(Path::to_path_buf);
    Envoy::start(opts)
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
    let env_num = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let secs = env_num("BENCH_SECONDS", 10);
    let rounds = env_num("BENCH_ROUNDS", 3).max(1);
    let soak = env_num("BENCH_SOAK", 1_000_000);
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

    // Every system runs at once, each Envoy on one worker; the rounds
    // interleave them, so that a slow minute of this shared machine falls on
    // all of them alike. Medians over the rounds are reported.
    let mut envoys: Vec<Envoy> = Vec::new();
    let mut systems: Vec<System> = Vec::new();
    let add =
        |envoys: &mut Vec<Envoy>, systems: &mut Vec<System>, name: &str, e: Envoy, token: &str| {
            systems.push(System {
                name: name.to_string(),
                port: e.port,
                pid: e.pid(),
                token: token.to_string(),
            });
            envoys.push(e);
        };
    add(
        &mut envoys,
        &mut systems,
        "bare Envoy (no filter)",
        native(up, Native::Bare),
        &user,
    );
    match noop_wasm() {
        Some(w) => add(
            &mut envoys,
            &mut systems,
            "no-op Rust proxy-wasm filter",
            native(up, Native::Noop(&w)),
            &user,
        ),
        None => eprintln!("  bench/noop-filter not built (make bench builds it): skipped"),
    }
    let cached = filter(up, &keys, 1024, None, "");
    let (cached_port, cached_pid) = (cached.port, cached.pid());
    add(
        &mut envoys,
        &mut systems,
        "filter, static token",
        cached,
        STATIC,
    );
    systems.push(System {
        name: "filter, ES256 user, cache warm".into(),
        port: cached_port,
        pid: cached_pid,
        token: user.clone(),
    });
    // BENCH_WASM=name=path,…: other builds of the filter, side by side
    // (cached ES256 token), for comparing changes in one run
    for spec in std::env::var("BENCH_WASM").unwrap_or_default().split(',') {
        if let Some((name, path)) = spec.split_once('=') {
            let e = filter(up, &keys, 1024, Some(Path::new(path)), "");
            add(
                &mut envoys,
                &mut systems,
                &format!("{name}, ES256 cached"),
                e,
                &user,
            );
        }
    }
    add(
        &mut envoys,
        &mut systems,
        "filter, ES256 user, no cache",
        filter(up, &keys, 0, None, ""),
        &user,
    );
    // What gateway.access and gateway.rateLimits cost on top of the static
    // token (a budget the benchmark never spends).
    add(
        &mut envoys,
        &mut systems,
        "filter, static token, access policy",
        filter(up, &keys, 1024, None, POLICY),
        STATIC,
    );
    add(
        &mut envoys,
        &mut systems,
        "filter, static token, policy + rate limit",
        filter(up, &keys, 1024, None, &format!("{POLICY}{RATE_LIMIT}")),
        STATIC,
    );
    add(
        &mut envoys,
        &mut systems,
        "jwt_authn ES256, cache on",
        native(up, Native::JwtAuthn(&jwks, true)),
        &user,
    );
    add(
        &mut envoys,
        &mut systems,
        "jwt_authn ES256, no cache",
        native(up, Native::JwtAuthn(&jwks, false)),
        &user,
    );
    let node = if std::env::var("BENCH_SKIP_NODE").is_err() {
        backstage(up)
    } else {
        None
    };
    if let Some(n) = &node {
        systems.push(System {
            name: "Backstage proxy (Node)".into(),
            port: n.port,
            pid: n.child.id(),
            token: STATIC.into(),
        });
    }
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        let keep: Vec<&str> = only.split(',').collect();
        systems.retain(|s| keep.iter().any(|k| s.name.contains(k)));
    }

    eprintln!(
        "benchmark: {rounds} rounds of {secs} s runs, wrk -t1, Envoy --concurrency 1, upstream = Envoy direct_response"
    );
    // warm-up: key sets fetched, connections open, VM code compiled and hot
    for sys in &systems {
        wrk(sys.port, 4, 2, Some(&sys.token));
    }
    let mut rows: Vec<Row> = systems
        .iter()
        .map(|s| Row {
            name: s.name.clone(),
            through: Vec::new(),
            latency: Vec::new(),
            cpu_us_per_req: Vec::new(),
        })
        .collect();
    for r in 0..rounds {
        eprintln!("round {}/{rounds}", r + 1);
        for (sys, row) in systems.iter().zip(rows.iter_mut()) {
            measure_round(sys, row, secs);
        }
    }

    let bare = rows
        .first()
        .map(|r| (r.rps(), r.lat(|w| w.p50)))
        .unwrap_or((1.0, 0.0));
    println!();
    println!(
        "{:<42} {:>8} {:>13} {:>7} {:>8} {:>8} {:>8} {:>9} {:>10} {:>11}",
        "system",
        "req/s",
        "(min-max)",
        "x bare",
        "p50 us",
        "p90 us",
        "p99 us",
        "p50-bare",
        "p99@32 us",
        "CPU us/req"
    );
    for r in &rows {
        let (lo, hi) = r.rps_range();
        println!(
            "{:<42} {:>8.0} {:>13} {:>7.2} {:>8.0} {:>8.0} {:>8.0} {:>9.0} {:>10.0} {:>11.1}",
            r.name,
            r.rps(),
            format!("{lo:.0}-{hi:.0}"),
            r.rps() / bare.0,
            r.lat(|w| w.p50),
            r.lat(|w| w.p90),
            r.lat(|w| w.p99),
            r.lat(|w| w.p50) - bare.1,
            r.p99_32(),
            r.cpu()
        );
    }
    let errors: u64 = rows.iter().map(Row::errors).sum();
    println!("(medians of {rounds} interleaved rounds; throughput: 32 connections; latency: 1 connection; {secs} s each; non-2xx/socket errors: {errors})");
    if let Some(n) = rows.iter().find(|r| r.name.starts_with("Backstage")) {
        for f in rows.iter().filter(|r| r.name.starts_with("filter,")) {
            println!(
                "{}: {:.1}x Backstage's throughput, p99 at 1 connection {:.2} of Backstage's",
                f.name,
                f.rps() / n.rps(),
                f.lat(|w| w.p99) / n.lat(|w| w.p99)
            );
        }
    }
    drop(node);
    drop(envoys);

    // Per-VM memory after a long run of the filter with a cached token.
    let e = filter(up, &keys, 1024, None, "");
    let (served, vms) = soak_memory(&e, &user, soak);
    println!("\n.wasm: {wasm_size} bytes");
    println!("per-VM linear memory after {served} requests through the filter:");
    for (k, v) in &vms {
        println!("  {k}: {:.2} MiB", *v as f64 / 1048576.0);
    }

    let result = json!({
        "seconds_per_run": secs,
        "rounds": rounds,
        "wasm_bytes": wasm_size,
        "errors": errors,
        "rows": rows.iter().map(|r| json!({
            "system": r.name,
            "rps_32": r.rps(),
            "rps_32_runs": r.through.iter().map(|w| w.rps).collect::<Vec<_>>(),
            "ratio_to_bare": r.rps() / bare.0,
            "p50_us_1": r.lat(|w| w.p50), "p75_us_1": r.lat(|w| w.p75),
            "p90_us_1": r.lat(|w| w.p90), "p99_us_1": r.lat(|w| w.p99),
            "p50_us_32": r.p50_32(), "p99_us_32": r.p99_32(),
            "cpu_us_per_request": r.cpu(),
        })).collect::<Vec<_>>(),
        "soak_requests": served,
        "vm_memory_bytes": vms.iter().map(|(k, v)| json!({ "vm": k, "bytes": v })).collect::<Vec<_>>(),
    });
    let out = repo_root().join("bench/results/latest.json");
    std::fs::write(&out, serde_json::to_string_pretty(&result).unwrap()).unwrap();
    println!("\nwrote {}", Path::new(&out).display());
}
