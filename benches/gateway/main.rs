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
//! 6. the native dynamic module (`make native`) with the static token, the
//!    user token cached, and uncached;
//! 7. Backstage's own proxy backend (Node, `createBackend()` + the proxy
//!    plugin + a static token), from `bench/backstage`.
//!
//! Throughput: `wrk` at 32 connections. Latency: `wrk` at one connection (so
//! latency is not queueing). Ratios are to bare Envoy. Also: CPU per
//! request, the `.wasm` size, the per-VM memory after a long run. Writes the
//! table to stdout and JSON to `bench/results/latest.json`.
//!
//! Environment: BENCH_SECONDS (per wrk run, default 10), BENCH_SOAK
//! (requests before reading VM memory, default 1000000), BENCH_SKIP_NODE=1.

mod measure;
mod systems;

use std::path::Path;

use backstage_proxy_testkit::mint::*;
use backstage_proxy_testkit::*;
use serde_json::{json, Value};

use measure::*;
use systems::*;

const STATIC: &str = "static-bench-token-0123";
const PATH: &str = "/api/proxy/svc/x";

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
    // The same decisions from the native dynamic module (docs/native.md).
    let nat = native_module(up, &keys, 1024);
    let (nat_port, nat_pid) = (nat.port, nat.pid());
    add(
        &mut envoys,
        &mut systems,
        "native module, static token",
        nat,
        STATIC,
    );
    systems.push(System {
        name: "native module, ES256 user, cache warm".into(),
        port: nat_port,
        pid: nat_pid,
        token: user.clone(),
    });
    add(
        &mut envoys,
        &mut systems,
        "native module, ES256 user, no cache",
        native_module(up, &keys, 0),
        &user,
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
