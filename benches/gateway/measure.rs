//! Measuring a system: `wrk` runs and their parsing, CPU time from
//! `/proc`, the rows of the table, and the VM memory after a soak.

use std::process::Command;
use std::time::Duration;

use backstage_proxy_testkit::*;

use crate::PATH;

#[derive(Debug, Clone, Default)]
pub struct Wrk {
    pub rps: f64,
    pub requests: u64,
    pub errors: u64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p99: f64,
}

pub fn micros(s: &str) -> f64 {
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

pub fn wrk(port: u16, conns: u32, secs: u64, token: Option<&str>) -> Wrk {
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
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// One system's runs, a throughput and a latency run per round.
pub struct Row {
    pub name: String,
    pub through: Vec<Wrk>,
    pub latency: Vec<Wrk>,
    pub cpu_us_per_req: Vec<f64>,
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Row {
    pub fn rps(&self) -> f64 {
        median(self.through.iter().map(|w| w.rps).collect())
    }
    pub fn rps_range(&self) -> (f64, f64) {
        let v: Vec<f64> = self.through.iter().map(|w| w.rps).collect();
        (
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(0.0, f64::max),
        )
    }
    pub fn lat(&self, f: impl Fn(&Wrk) -> f64) -> f64 {
        median(self.latency.iter().map(f).collect())
    }
    pub fn p99_32(&self) -> f64 {
        median(self.through.iter().map(|w| w.p99).collect())
    }
    pub fn p50_32(&self) -> f64 {
        median(self.through.iter().map(|w| w.p50).collect())
    }
    pub fn cpu(&self) -> f64 {
        median(self.cpu_us_per_req.clone())
    }
    pub fn errors(&self) -> u64 {
        self.through
            .iter()
            .chain(&self.latency)
            .map(|w| w.errors)
            .sum()
    }
}

/// A system under test: where it listens, which process does the work.
pub struct System {
    pub name: String,
    pub port: u16,
    pub pid: u32,
    pub token: String,
}

/// One round for one system: throughput at 32 connections (with the
/// process's CPU time around it), then latency at one connection.
pub fn measure_round(sys: &System, row: &mut Row, secs: u64) {
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

/// Drives the filter until it has served `n` requests, then reads each
/// VM's linear memory gauge.
pub fn soak_memory(envoy: &Envoy, token: &str, n: u64) -> (u64, Vec<(String, u64)>) {
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
