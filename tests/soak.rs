//! Soak (`docs/security.md` K05, K08, K09; issue 6): a bounded run of one
//! million mixed requests through the filter in Envoy (two workers) on
//! loopback: static and Backstage user tokens (a hot set that stays cached,
//! a cold pool larger than the verified-token cache), forged and expired
//! tokens, unknown key ids, oversized tokens and oversized headers, unknown
//! endpoints and disallowed methods, while the key set rotates underneath.
//! Every response must have the status its kind calls for, and each
//! worker's VM memory must level off after warm-up (a step or two, no steady growth).
//!
//! `SOAK_REQUESTS` sets the count (default 1 000 000).

use backstage_proxy_testkit as support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::mint::*;
use support::*;

const AUTH: &str = "/api/auth/.well-known/jwks.json";
const STATIC: &str = "soak-static-token-0123456789abcdef";
/// Keys in rotation order; the set published is always {K[r], K[r+1]}.
const KEYS: usize = 12;
const CLIENTS: usize = 12;
const HOT: usize = 16;
/// Larger than the verified-token cache (1024): cold tokens keep evicting.
const COLD: usize = 1500;

/// An upstream that answers every request `200 ok` on keep-alive
/// connections, recording nothing (a million requests).
fn fast_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut out = conn.try_clone().unwrap();
                let mut reader = BufReader::new(conn);
                loop {
                    let mut len = 0usize;
                    let mut line = Vec::new();
                    loop {
                        line.clear();
                        if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == b"\r\n" {
                            break;
                        }
                        let l = String::from_utf8_lossy(&line).to_ascii_lowercase();
                        if let Some(v) = l.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    if out
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// One keep-alive client connection; reconnects when Envoy closes it.
struct Conn {
    port: u16,
    stream: Option<(TcpStream, BufReader<TcpStream>)>,
}

impl Conn {
    fn roundtrip(&mut self, raw: &[u8]) -> u16 {
        for _ in 0..3 {
            if self.stream.is_none() {
                let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                s.set_nodelay(true).unwrap();
                let r = BufReader::new(s.try_clone().unwrap());
                self.stream = Some((s, r));
            }
            let (s, r) = self.stream.as_mut().unwrap();
            if s.write_all(raw).is_err() {
                self.stream = None;
                continue;
            }
            match read_response(r) {
                Some((status, close)) => {
                    if close {
                        self.stream = None;
                    }
                    return status;
                }
                None => self.stream = None,
            }
        }
        0
    }
}

/// Status and whether the server closes the connection.
fn read_response(r: &mut BufReader<TcpStream>) -> Option<(u16, bool)> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
    let mut len = 0usize;
    let mut close = false;
    loop {
        let mut h = Vec::new();
        if r.read_until(b'\n', &mut h).ok()? == 0 {
            return None;
        }
        if h == b"\r\n" {
            break;
        }
        let h = String::from_utf8_lossy(&h).to_ascii_lowercase();
        if let Some(v) = h.strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        if h.starts_with("connection:") && h.contains("close") {
            close = true;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((status, close))
}

/// What each request kind must be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Static,
    HotUser,
    ColdUser,
    ForgedSignature,
    Expired,
    UnknownKid,
    NoToken,
    OversizedToken,
    OversizedHeader,
    UnknownEndpoint,
    MethodNotAllowed,
}

impl Kind {
    fn want(self) -> u16 {
        match self {
            Kind::Static | Kind::HotUser | Kind::ColdUser => 200,
            Kind::ForgedSignature
            | Kind::Expired
            | Kind::UnknownKid
            | Kind::NoToken
            | Kind::OversizedToken => 401,
            Kind::OversizedHeader => 431,
            Kind::UnknownEndpoint => 404,
            Kind::MethodNotAllowed => 405,
        }
    }

    /// The mix: request `i` of a client.
    fn of(i: u64) -> Kind {
        match i % 20 {
            0..=6 => Kind::Static,
            7..=11 => Kind::HotUser,
            12 => Kind::ColdUser,
            13 => Kind::ForgedSignature,
            14 => Kind::Expired,
            15 => Kind::UnknownKid,
            16 => Kind::NoToken,
            17 if (i / 20).is_multiple_of(8) => Kind::OversizedHeader,
            17 => Kind::OversizedToken,
            18 => Kind::UnknownEndpoint,
            _ => Kind::MethodNotAllowed,
        }
    }
}

/// Tokens per rotation key, minted before the run.
struct Minted {
    hot: Vec<String>,
    cold: Vec<String>,
    forged: String,
    expired: String,
}

fn mint(k: &Es256) -> Minted {
    let now = now();
    let exp = now + 3600;
    let hot: Vec<String> = (0..HOT)
        .map(|i| user_token(k, &format!("user:default/hot{i}"), now, exp))
        .collect();
    let cold = (0..COLD)
        .map(|i| user_token(k, &format!("user:default/cold{i}"), now, exp))
        .collect();
    // The signature's first character: its six bits all count (the last
    // character's low bits may be padding, and the token then fails as
    // malformed, never reaching the signature check).
    let sig_at = hot[0].rfind('.').unwrap() + 1;
    let mut forged = hot[0].clone().into_bytes();
    forged[sig_at] = if forged[sig_at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    Minted {
        hot,
        cold,
        forged,
        expired: user_token(k, "user:default/old", now - 7200, now - 3600),
    }
}

fn vm_memory(envoy: &Envoy) -> BTreeMap<String, u64> {
    envoy
        .stats()
        .into_iter()
        .filter(|(k, _)| k.contains("backstage_proxy.vm_memory_bytes."))
        .collect()
}

/// The native module has no VM: the memory is Envoy's whole resident set
/// (`VmRSS`), which holds the module's state with Envoy's own.
fn rss(pid: u32) -> BTreeMap<String, u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    BTreeMap::from([("envoy_rss".to_string(), kb * 1024)])
}

/// What the soak watches: each worker VM's memory (Wasm), or Envoy's
/// resident set (native).
fn memory(envoy: &Envoy) -> BTreeMap<String, u64> {
    match artifact() {
        Artifact::Wasm => vm_memory(envoy),
        Artifact::Native => rss(envoy.pid()),
    }
}

#[test]
fn a_million_mixed_requests_with_rotating_keys() {
    let total: u64 = std::env::var("SOAK_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let keys_server = KeyServer::start();
    let upp = fast_upstream();
    let kp = keys_server.port;
    let keys: Vec<Es256> = (0..KEYS)
        .map(|i| Es256::new(60 + i as u8, &format!("k{i}")))
        .collect();
    let publish = |r: usize| {
        keys_server.set(
            AUTH,
            KeyMode::Serve(key_set(&[&keys[r % KEYS], &keys[(r + 1) % KEYS]])),
        );
    };
    publish(0);
    let started_mint = Instant::now();
    let minted: Arc<Vec<Minted>> = Arc::new(keys.iter().map(mint).collect());
    let stranger = Es256::new(99, "never-published");
    let unknown_kid = Arc::new(user_token(&stranger, "user:default/x", now(), now() + 3600));
    eprintln!(
        "minted {} tokens in {:?}",
        KEYS * (HOT + COLD + 2),
        started_mint.elapsed()
    );

    let config = format!(
        r#"{{"proxy":{{"endpoints":{{
              "/svc":"http://127.0.0.1:{upp}/base",
              "/ro":{{"target":"http://127.0.0.1:{upp}/ro","allowedMethods":["GET"]}}}}}},
            "backend":{{"baseUrl":"http://127.0.0.1:{kp}","auth":{{"externalAccess":[
              {{"type":"static","options":{{"token":"{STATIC}","subject":"soak"}}}}]}}}},
            "gateway":{{"jwksCacheSeconds":3,"jwksRefetchCooldownSeconds":2,"jwksFetchTimeoutMs":2000}}}}"#
    );
    let mut opts = EnvoyOptions::new(config)
        .cluster(cluster_for_port(upp), upp)
        .cluster(cluster_for_port(kp), kp);
    opts.concurrency = 2;
    let envoy = Envoy::start(opts);
    let port = envoy.port;

    let sent = Arc::new(AtomicU64::new(0));
    let active = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let unexpected: Arc<Mutex<Vec<(Kind, u16)>>> = Arc::new(Mutex::new(Vec::new()));
    let counts: Arc<Mutex<BTreeMap<Kind, u64>>> = Arc::new(Mutex::new(BTreeMap::new()));
    let big_token = Arc::new("a".repeat(17 * 1024));
    let big_header = Arc::new("b".repeat(64 * 1024));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (sent, active, unexpected, counts, minted, unknown_kid, big_token, big_header) = (
                sent.clone(),
                active.clone(),
                unexpected.clone(),
                counts.clone(),
                minted.clone(),
                unknown_kid.clone(),
                big_token.clone(),
                big_header.clone(),
            );
            thread::spawn(move || {
                let mut conn = Conn { port, stream: None };
                let mut local: BTreeMap<Kind, u64> = BTreeMap::new();
                let mut i = c as u64 * 7;
                while sent.fetch_add(1, Ordering::Relaxed) < total {
                    i += 1;
                    let kind = Kind::of(i);
                    let m = &minted[active.load(Ordering::Acquire) % KEYS];
                    let (method, path, auth, extra): (&str, &str, Option<&str>, &str) = match kind {
                        Kind::Static => ("GET", "/api/proxy/svc/s", Some(STATIC), ""),
                        Kind::HotUser => (
                            "GET",
                            "/api/proxy/svc/h",
                            Some(&m.hot[(i / 20) as usize % HOT]),
                            "",
                        ),
                        Kind::ColdUser => (
                            "GET",
                            "/api/proxy/svc/c",
                            Some(&m.cold[(i / 20 + c as u64 * 97) as usize % COLD]),
                            "",
                        ),
                        Kind::ForgedSignature => ("GET", "/api/proxy/svc/f", Some(&m.forged), ""),
                        Kind::Expired => ("GET", "/api/proxy/svc/e", Some(&m.expired), ""),
                        Kind::UnknownKid => ("GET", "/api/proxy/svc/u", Some(&unknown_kid), ""),
                        Kind::NoToken => ("GET", "/api/proxy/svc/n", None, ""),
                        Kind::OversizedToken => ("GET", "/api/proxy/svc/o", Some(&big_token), ""),
                        Kind::OversizedHeader => {
                            ("GET", "/api/proxy/svc/b", Some(STATIC), &big_header)
                        }
                        Kind::UnknownEndpoint => ("GET", "/api/proxy/nope/x", Some(STATIC), ""),
                        Kind::MethodNotAllowed => ("DELETE", "/api/proxy/ro/x", Some(STATIC), ""),
                    };
                    let mut raw = format!("{method} {path} HTTP/1.1\r\nhost: soak\r\n");
                    if let Some(t) = auth {
                        raw.push_str("authorization: Bearer ");
                        raw.push_str(t);
                        raw.push_str("\r\n");
                    }
                    if !extra.is_empty() {
                        raw.push_str("x-big: ");
                        raw.push_str(extra);
                        raw.push_str("\r\n");
                    }
                    raw.push_str("\r\n");
                    let status = conn.roundtrip(raw.as_bytes());
                    *local.entry(kind).or_default() += 1;
                    if status != kind.want() {
                        let mut u = unexpected.lock().unwrap();
                        if u.len() < 1000 {
                            u.push((kind, status));
                        }
                    }
                }
                let mut all = counts.lock().unwrap();
                for (k, n) in local {
                    *all.entry(k).or_default() += n;
                }
            })
        })
        .collect();

    // rotation: the clients move to the next key (already published and
    // fetched), then the set drops the old key and publishes the one after
    let rotations = Arc::new(AtomicU64::new(0));
    let rotator = {
        let (active, done, rotations) = (active.clone(), done.clone(), rotations.clone());
        let keys_ref: Vec<String> = (0..KEYS)
            .map(|r| key_set(&[&keys[r % KEYS], &keys[(r + 1) % KEYS]]))
            .collect();
        let setter = keys_server_setter(&keys_server);
        thread::spawn(move || {
            let mut r = 0usize;
            loop {
                // the next key has been published for ≥ 2 refresh periods
                for _ in 0..150 {
                    if done.load(Ordering::Acquire) {
                        return;
                    }
                    thread::sleep(Duration::from_millis(100));
                }
                r += 1;
                active.store(r, Ordering::Release);
                thread::sleep(Duration::from_secs(2));
                setter(keys_ref[r % KEYS].clone());
                rotations.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // memory after warm-up, then sampled every two seconds to the end.
    // Warm-up is the first 40%: by then the verified-token cache has been
    // filled and emptied by several key rotations.
    let warm_at = total * 4 / 10;
    while sent.load(Ordering::Relaxed) < warm_at {
        thread::sleep(Duration::from_millis(200));
    }
    thread::sleep(Duration::from_millis(300));
    let warm = memory(&envoy);
    let mut samples = vec![(sent.load(Ordering::Relaxed), warm.clone())];
    while !clients.iter().all(|c| c.is_finished()) {
        thread::sleep(Duration::from_secs(2));
        samples.push((sent.load(Ordering::Relaxed).min(total), memory(&envoy)));
    }
    for c in clients {
        c.join().unwrap();
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Release);
    rotator.join().unwrap();
    thread::sleep(Duration::from_millis(300));
    let end = memory(&envoy);

    let counts = counts.lock().unwrap().clone();
    let answered: u64 = counts.values().sum();
    let stats = envoy.stats();
    let stat = |k: &str| {
        stats
            .get(&format!("wasmcustom.backstage_proxy.{k}"))
            .copied()
            .unwrap_or(0)
    };
    eprintln!(
        "soak: {answered} requests in {:.1} s ({:.0} req/s), {} key rotations, {} key-set fetches",
        elapsed.as_secs_f64(),
        answered as f64 / elapsed.as_secs_f64(),
        rotations.load(Ordering::Relaxed),
        keys_server.total()
    );
    eprintln!("soak: per kind {counts:?}");
    eprintln!(
        "soak: token cache hit {} miss {}; key-set fetch ok {} failed {}",
        stat("token_cache.hit"),
        stat("token_cache.miss"),
        stat("keyset.fetch_success"),
        stat("keyset.fetch_failure")
    );
    eprintln!("soak: VM memory after warm-up {warm:?}, at the end {end:?}");
    let steps = |vm: &str| -> Vec<(u64, u64)> {
        samples
            .windows(2)
            .filter_map(|w| {
                let (a, b) = (w[0].1.get(vm)?, w[1].1.get(vm)?);
                (b > a).then_some((w[1].0, b - a))
            })
            .collect()
    };
    for vm in warm.keys() {
        eprintln!(
            "soak: {vm} grew after warm-up at (requests sent, bytes) {:?}",
            steps(vm)
        );
    }

    assert_eq!(answered, total);
    let unexpected = unexpected.lock().unwrap();
    assert!(
        unexpected.is_empty(),
        "{} unexpected statuses, first: {:?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(20)]
    );
    assert!(
        rotations.load(Ordering::Relaxed) >= 1 || total < 200_000,
        "no key rotation happened"
    );
    if artifact() == Artifact::Native {
        // Envoy's resident set moves both ways (its allocator returns
        // pages); what must not happen is growth that keeps going: after
        // warm-up the process may grow by at most 8 MiB in all.
        let (before, after) = (warm["envoy_rss"], end["envoy_rss"]);
        let peak = samples
            .iter()
            .map(|(_, m)| m["envoy_rss"])
            .max()
            .unwrap_or(after);
        eprintln!(
            "soak: Envoy RSS after warm-up {} KiB, peak {} KiB, at the end {} KiB",
            before / 1024,
            peak / 1024,
            after / 1024
        );
        assert!(
            after <= before + 8 * 1024 * 1024,
            "Envoy's RSS grew {before} → {after} bytes after warm-up"
        );
    } else {
        // a gauge per VM: the two workers' and the main thread's
        assert!(warm.len() >= 2, "memory gauges: {warm:?}");
    }
    for (vm, before) in warm.iter().filter(|_| artifact() == Artifact::Wasm) {
        let after = end[vm];
        // Wasm memory grows in 64 KiB pages and never shrinks. The allocator
        // reaches its high-water mark by a step or two at a random point
        // (seen: 4 pages at once at 438 000 in one run, none after warm-up in
        // others), then holds. A leak grows in repeated steps instead:
        // checked with a build that leaked 16 bytes on every 16th request
        // (one byte per request on average), which grew each worker by one
        // page three separate times after warm-up and failed here. So: at
        // most two steps, at most eight pages in all, under the 8 MiB budget.
        let steps = steps(vm);
        assert!(
            steps.len() <= 2 && after <= before + 8 * 64 * 1024,
            "{vm}: {before} → {after} bytes after warm-up, in steps {steps:?}"
        );
        assert!(after <= 8 * 1024 * 1024, "{vm}: {after} bytes");
    }
    // the filter counted what the clients saw
    assert!(stat("token_cache.hit") > 0 && stat("token_cache.miss") > 0);
    assert_eq!(envoy.admin("/ready").0, 200);
}

/// A cloneable setter for the key server's published set.
fn keys_server_setter(ks: &KeyServer) -> impl Fn(String) + Send + 'static {
    let handle = ks.handle();
    move |body| handle(AUTH, KeyMode::Serve(body))
}
