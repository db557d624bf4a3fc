//! The only code that talks to the proxy-wasm host.
//!
//! - The root context loads the configuration into an immutable plan, owns
//!   every key-set fetch (`dispatch_http_call` through the URL's cluster),
//!   refreshes sets from `on_tick`, and shares fetched sets with the other
//!   worker VMs through proxy-wasm shared data.
//! - Each HTTP context feeds the request's headers to [`decision::decide`]
//!   and applies what it returns. A request whose token needs a key set this
//!   VM has never had is paused; the root wakes it (through this VM's shared
//!   queue) once the fetch ends, decides again and resumes or answers it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use log::{debug, error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};

use backstage_proxy_core::auth::jwks::set::parse_key_set;
use backstage_proxy_core::auth::jwks::store::Source;
use backstage_proxy_core::auth::AuthState;
use backstage_proxy_core::config::{self, Plan};
use backstage_proxy_core::decision::{self, Decision, Request};
use backstage_proxy_core::reply::{Reason, Reply};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(Root { id, runtime: None }) });
}}

/// How often the root looks at key sets (refresh, shared data, lost fetches).
const TICK: Duration = Duration::from_millis(100);
/// A paused request is decided again at most this many times.
const MAX_ROUNDS: u8 = 4;
/// Most requests a VM holds paused for key sets; past it, a request whose
/// key set is not here yet is refused at once (tokens are minted by anyone,
/// so what they may make the gateway hold is bounded).
const MAX_PAUSED: usize = 1024;

/// Counter ids, defined once per VM; Envoy shows them as
/// `wasmcustom.backstage_proxy.<…>`.
struct Metrics {
    allowed: Option<u32>,
    passthrough: Option<u32>,
    own_jwks: Option<u32>,
    denied: HashMap<Reason, u32>,
    fetch_success: Option<u32>,
    fetch_failure: Option<u32>,
    fetch_rationed: Option<u32>,
    shared_adopted: Option<u32>,
    cache_hit: Option<u32>,
    cache_miss: Option<u32>,
    /// This VM's linear memory in bytes (a gauge, one per VM).
    vm_memory: Option<u32>,
}

impl Metrics {
    fn define(vm_tag: &str) -> Metrics {
        let counter = |name: &str| hostcalls::define_metric(MetricType::Counter, name).ok();
        Metrics {
            allowed: counter("backstage_proxy.allowed"),
            passthrough: counter("backstage_proxy.passthrough"),
            own_jwks: counter("backstage_proxy.own_jwks_served"),
            denied: Reason::ALL
                .iter()
                .filter_map(|r| {
                    counter(&format!("backstage_proxy.denied.{}", r.code())).map(|id| (*r, id))
                })
                .collect(),
            fetch_success: counter("backstage_proxy.keyset.fetch_success"),
            fetch_failure: counter("backstage_proxy.keyset.fetch_failure"),
            fetch_rationed: counter("backstage_proxy.keyset.fetch_rationed"),
            shared_adopted: counter("backstage_proxy.keyset.shared_adopted"),
            cache_hit: counter("backstage_proxy.token_cache.hit"),
            cache_miss: counter("backstage_proxy.token_cache.miss"),
            vm_memory: hostcalls::define_metric(
                MetricType::Gauge,
                &format!("backstage_proxy.vm_memory_bytes.{vm_tag}"),
            )
            .ok(),
        }
    }

    fn bump(id: Option<u32>, by: u64) {
        if let (Some(id), Ok(by)) = (id, i64::try_from(by)) {
            if by > 0 {
                let _ = hostcalls::increment_metric(id, by);
            }
        }
    }
}

/// What a stream needs to remember between callbacks.
#[derive(Default)]
struct Stream {
    /// The endpoint a forwarded request went to (for the response policy).
    endpoint: Option<usize>,
    /// Set once the filter answered locally: its own reply is not filtered.
    local_reply: bool,
    /// How often this request was decided (bounded by MAX_ROUNDS).
    rounds: u8,
}

/// Per-VM state shared by the root and every HTTP context of the VM.
struct Runtime {
    root_id: u32,
    plan: Rc<Plan>,
    auth: AuthState,
    metrics: Metrics,
    /// This VM's wake-up queue (HTTP contexts → root).
    queue: Option<u32>,
    /// Paused streams waiting for a key set, by key-set URL.
    waiters: HashMap<String, Vec<u32>>,
    streams: HashMap<u32, Rc<RefCell<Stream>>>,
    /// Fetches in flight: call token → source.
    callouts: HashMap<u32, Source>,
    hits_seen: u64,
    misses_seen: u64,
    /// Some endpoint has `xfwd`: only then is the client address read.
    needs_client: bool,
}

type Shared = Rc<RefCell<Runtime>>;

fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// This VM's linear memory in bytes (0 when built natively, for checks).
fn vm_memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    return core::arch::wasm32::memory_size(0) as u64 * 65536;
    #[cfg(not(target_arch = "wasm32"))]
    return 0;
}

fn shared_key(url: &str) -> String {
    format!("backstage_proxy/jwks/{url}")
}

fn lease_key(url: &str) -> String {
    format!("backstage_proxy/lease/{url}")
}

struct Root {
    id: u32,
    runtime: Option<Shared>,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if let Some(rt) = &self.runtime {
            fetch_done(rt, token, body_size);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(bytes) = self.get_plugin_configuration() else {
            error!(
                "backstage-proxy-wasm: no configuration given (set the filter's `configuration`)"
            );
            return false;
        };
        let plan = match config::parse(&bytes, &|name| std::env::var(name).ok()) {
            Ok(plan) => plan,
            Err(errors) => {
                for e in &errors {
                    error!("backstage-proxy-wasm: invalid configuration: {e}");
                }
                return false;
            }
        };
        for w in &plan.warnings {
            warn!("backstage-proxy-wasm: {w}");
        }
        info!(
            "backstage-proxy-wasm: loaded {} endpoint(s) under {}",
            plan.endpoints.len(),
            plan.gateway.prefix
        );
        // One queue per VM: a name no other worker uses.
        let nonce = std::collections::hash_map::RandomState::new();
        // (also tags this VM's memory gauge)
        let tag = format!(
            "{:016x}",
            std::hash::BuildHasher::hash_one(&nonce, now_ms())
        );
        let name = format!("backstage_proxy.wake.{}.{tag}", self.id);
        let queue = hostcalls::register_shared_queue(&name).ok();
        let auth = AuthState::new(&plan);
        let needs_client = plan.endpoints.iter().any(|e| e.xfwd);
        self.runtime = Some(Rc::new(RefCell::new(Runtime {
            root_id: self.id,
            plan: Rc::new(plan),
            auth,
            metrics: Metrics::define(&tag),
            queue,
            waiters: HashMap::new(),
            streams: HashMap::new(),
            callouts: HashMap::new(),
            hits_seen: 0,
            misses_seen: 0,
            needs_client,
        })));
        let _ = hostcalls::set_tick_period(TICK);
        true
    }

    fn on_tick(&mut self) {
        if let Some(rt) = &self.runtime {
            if let Some(id) = rt.borrow().metrics.vm_memory {
                let bytes = vm_memory_bytes();
                let _ = hostcalls::record_metric(id, bytes);
            }
            let now = now_ms();
            let lost = rt.borrow_mut().auth.keys.expire_stuck(now);
            for source in lost {
                warn!("backstage-proxy-wasm: key-set fetch lost: {}", source.url);
                resume_waiters(rt, &source.url);
            }
            adopt_shared_for_waiters(rt);
            pump(rt);
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        while let Ok(Some(_)) = hostcalls::dequeue_shared_queue(queue_id) {}
        if let Some(rt) = &self.runtime {
            pump(rt);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            id: context_id,
            runtime: self.runtime.clone(),
            stream: Rc::new(RefCell::new(Stream::default())),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Shared data written by another worker, if it is newer than ours and fresh.
fn shared_set(
    url: &str,
    newer_than: Option<u64>,
    max_age_ms: u64,
    now: u64,
) -> Option<(u64, Vec<u8>)> {
    let (Some(bytes), _) = hostcalls::get_shared_data(&shared_key(url)).ok()? else {
        return None;
    };
    let split = bytes.iter().position(|&b| b == b'\n')?;
    let fetched_at: u64 = std::str::from_utf8(bytes.get(..split)?)
        .ok()?
        .parse()
        .ok()?;
    if newer_than.is_some_and(|t| fetched_at <= t) || now.saturating_sub(fetched_at) >= max_age_ms {
        return None;
    }
    Some((fetched_at, bytes.get(split + 1..)?.to_vec()))
}

/// Takes this worker's lease on fetching `url`; `false` when another worker
/// holds an unexpired one (it will publish the set in shared data).
fn take_lease(url: &str, now: u64, hold_ms: u64) -> bool {
    let key = lease_key(url);
    let (value, cas) = match hostcalls::get_shared_data(&key) {
        Ok(v) => v,
        Err(_) => return true,
    };
    let until: u64 = value
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if until > now {
        return false;
    }
    let new = (now + hold_ms).to_string();
    // Without a previous value there is no CAS to compare; 0 means "any".
    hostcalls::set_shared_data(&key, Some(new.as_bytes()), Some(cas.unwrap_or(0))).is_ok()
}

fn release_lease(url: &str) {
    let _ = hostcalls::set_shared_data(&lease_key(url), Some(b"0"), None);
}

/// Waiting streams whose key set another worker has meanwhile published.
fn adopt_shared_for_waiters(rt: &Shared) {
    let now = now_ms();
    let urls: Vec<String> = rt.borrow().waiters.keys().cloned().collect();
    for url in urls {
        let (known, max_age) = {
            let r = rt.borrow();
            (
                r.auth.keys.fetched_at(&url),
                r.auth.keys.timing().refresh_ms,
            )
        };
        if let Some((fetched_at, body)) = shared_set(&url, known, max_age, now) {
            if let Ok(set) = parse_key_set(&body) {
                let mut r = rt.borrow_mut();
                r.auth.keys.succeeded(&url, set, fetched_at);
                Metrics::bump(r.metrics.shared_adopted, 1);
                drop(r);
                resume_waiters(rt, &url);
            }
        }
    }
}

/// Starts every fetch that is due, unless a fresher set is in shared data
/// or another worker holds the lease.
fn pump(rt: &Shared) {
    let now = now_ms();
    let (due, timing) = {
        let r = rt.borrow();
        (r.auth.keys.due(now), r.auth.keys.timing())
    };
    for source in due {
        let known = rt.borrow().auth.keys.fetched_at(&source.url);
        if let Some((fetched_at, body)) = shared_set(&source.url, known, timing.refresh_ms, now) {
            if let Ok(set) = parse_key_set(&body) {
                let mut r = rt.borrow_mut();
                r.auth.keys.succeeded(&source.url, set, fetched_at);
                Metrics::bump(r.metrics.shared_adopted, 1);
                drop(r);
                resume_waiters(rt, &source.url);
                continue;
            }
        }
        if !take_lease(&source.url, now, timing.fetch_timeout_ms + 500) {
            continue;
        }
        if !rt.borrow_mut().auth.keys.may_fetch(&source.url, now) {
            release_lease(&source.url);
            Metrics::bump(rt.borrow().metrics.fetch_rationed, 1);
            resume_waiters(rt, &source.url);
            continue;
        }
        let headers = vec![
            (":method", "GET"),
            (":path", source.path.as_str()),
            (":authority", source.authority.as_str()),
            ("accept", "application/json"),
        ];
        let timeout = Duration::from_millis(timing.fetch_timeout_ms);
        match hostcalls::dispatch_http_call(&source.cluster, headers, None, vec![], timeout) {
            Ok(token) => {
                let mut r = rt.borrow_mut();
                r.auth.keys.start(&source.url, now);
                r.callouts.insert(token, source);
            }
            Err(status) => {
                warn!(
                    "backstage-proxy-wasm: cannot fetch key set {} through cluster {}: {status:?}",
                    source.url, source.cluster
                );
                release_lease(&source.url);
                let mut r = rt.borrow_mut();
                r.auth.keys.start(&source.url, now);
                r.auth.keys.failed(&source.url, now);
                Metrics::bump(r.metrics.fetch_failure, 1);
                drop(r);
                resume_waiters(rt, &source.url);
            }
        }
    }
}

/// A key-set fetch ended: keep the set if it is usable, else keep the last
/// good one; then wake the streams that waited for it.
fn fetch_done(rt: &Shared, token: u32, body_size: usize) {
    let Some(source) = rt.borrow_mut().callouts.remove(&token) else {
        return;
    };
    let now = now_ms();
    let max = rt.borrow().plan.gateway.jwks_max_bytes;
    let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten();
    let outcome = match status.as_deref() {
        Some(b"200") if body_size <= max => {
            let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default();
            parse_key_set(&body)
                .map(|set| (set, body))
                .map_err(|e| e.describe().to_string())
        }
        Some(b"200") => Err(format!("response larger than {max} bytes")),
        Some(s) => Err(format!("status {}", String::from_utf8_lossy(s))),
        None => Err("no response (timeout, reset or unknown cluster)".to_string()),
    };
    release_lease(&source.url);
    {
        let mut r = rt.borrow_mut();
        match outcome {
            Ok((set, body)) => {
                if set.ignored > 0 {
                    debug!(
                        "backstage-proxy-wasm: key set {}: {} unusable key(s) ignored",
                        source.url, set.ignored
                    );
                }
                r.auth.keys.succeeded(&source.url, set, now);
                Metrics::bump(r.metrics.fetch_success, 1);
                let mut value = now.to_string().into_bytes();
                value.push(b'\n');
                value.extend_from_slice(&body);
                let _ = hostcalls::set_shared_data(&shared_key(&source.url), Some(&value), None);
            }
            Err(why) => {
                warn!("backstage-proxy-wasm: key-set fetch failed for {}: {why}; keeping the last good set, if any", source.url);
                r.auth.keys.failed(&source.url, now);
                Metrics::bump(r.metrics.fetch_failure, 1);
            }
        }
    }
    resume_waiters(rt, &source.url);
}

/// Decides again, in each waiting stream's own context, and resumes it or
/// answers it. Restores the root as the effective context afterwards.
fn resume_waiters(rt: &Shared, url: &str) {
    let (ids, root_id) = {
        let mut r = rt.borrow_mut();
        (r.waiters.remove(url).unwrap_or_default(), r.root_id)
    };
    if ids.is_empty() {
        return;
    }
    let mut again = false;
    for id in ids {
        let Some(stream) = rt.borrow().streams.get(&id).cloned() else {
            continue;
        };
        if hostcalls::set_effective_context(id).is_err() {
            rt.borrow_mut().streams.remove(&id);
            continue;
        }
        let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
        let client = client_address(rt);
        match run(rt, id, &stream, &headers, client) {
            Action::Continue => {
                rt.borrow_mut().streams.remove(&id);
                let _ = hostcalls::resume_http_request();
            }
            Action::Pause => {
                let waiting = rt.borrow().waiters.values().any(|w| w.contains(&id));
                if waiting {
                    again = true;
                } else {
                    rt.borrow_mut().streams.remove(&id);
                }
            }
            _ => {}
        }
    }
    let _ = hostcalls::set_effective_context(root_id);
    if again {
        pump(rt);
    }
}

/// The client's address, read only when some endpoint needs it (`xfwd`).
fn client_address(rt: &Shared) -> Option<Vec<u8>> {
    if !rt.borrow().needs_client {
        return None;
    }
    hostcalls::get_property(vec!["source", "address"])
        .ok()
        .flatten()
}

/// One decision for a stream, applied through the host. `Pause` means the
/// stream was answered locally or is waiting for a key set.
fn run(
    rt: &Shared,
    id: u32,
    stream: &Rc<RefCell<Stream>>,
    headers: &[(String, Vec<u8>)],
    client: Option<Vec<u8>>,
) -> Action {
    // Borrowed from the header list (a copy only for bytes that are not
    // UTF-8): no allocation per request for the pseudo-headers.
    let text = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v))
    };
    let method = text(":method").unwrap_or_default();
    let path = text(":path");
    let authority = text(":authority").unwrap_or_default();
    let scheme = text(":scheme").unwrap_or(std::borrow::Cow::Borrowed("http"));
    let client = client.map(|b| String::from_utf8_lossy(&b).into_owned());
    let request = Request {
        method: &method,
        path: path.as_deref(),
        authority: &authority,
        scheme: &scheme,
        headers,
        client_address: client.as_deref(),
        now_ms: now_ms(),
    };
    stream.borrow_mut().rounds += 1;
    let rounds = stream.borrow().rounds;
    let plan = rt.borrow().plan.clone();
    let decision = {
        let mut r = rt.borrow_mut();
        let d = decision::decide(&plan, &mut r.auth, &request);
        let (hits, misses) = (r.auth.cache_hits, r.auth.cache_misses);
        Metrics::bump(r.metrics.cache_hit, hits - r.hits_seen);
        Metrics::bump(r.metrics.cache_miss, misses - r.misses_seen);
        r.hits_seen = hits;
        r.misses_seen = misses;
        d
    };
    match decision {
        Decision::PassThrough { remove } => {
            Metrics::bump(rt.borrow().metrics.passthrough, 1);
            for name in remove {
                if headers.iter().any(|(n, _)| *n == name) {
                    let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, &name, None);
                }
            }
            Action::Continue
        }
        Decision::Reply { reply, endpoint } => {
            let r = rt.borrow();
            match reply.reason {
                Some(reason) => {
                    Metrics::bump(r.metrics.denied.get(&reason).copied(), 1);
                    let key = endpoint
                        .and_then(|i| plan.endpoints.get(i))
                        .map(|e| e.raw_key.as_str())
                        .unwrap_or("-");
                    debug!(
                        "backstage-proxy-wasm: denied status={} reason={} endpoint={}",
                        reply.status,
                        reason.code(),
                        key
                    );
                }
                None => Metrics::bump(r.metrics.own_jwks, 1),
            }
            drop(r);
            send(stream, &reply)
        }
        Decision::Forward(fwd) => {
            Metrics::bump(rt.borrow().metrics.allowed, 1);
            // One host call per edit: replacing the whole map instead costs
            // Envoy more (measured: 3 400 more instructions per request).
            for name in &fwd.remove {
                let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None);
            }
            for (name, value) in &fwd.set {
                let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
            }
            stream.borrow_mut().endpoint = Some(fwd.endpoint);
            Action::Continue
        }
        Decision::NeedKeys(_) if rounds > MAX_ROUNDS || rt.borrow().streams.len() >= MAX_PAUSED => {
            let reply = backstage_proxy_core::reply::unauthenticated(
                Reason::KeySetUnavailable,
                "Invalid token",
                &method,
                path.as_deref().unwrap_or_default(),
            );
            Metrics::bump(
                rt.borrow()
                    .metrics
                    .denied
                    .get(&Reason::KeySetUnavailable)
                    .copied(),
                1,
            );
            send(stream, &reply)
        }
        Decision::NeedKeys(source) => {
            let mut r = rt.borrow_mut();
            r.waiters.entry(source.url.clone()).or_default().push(id);
            r.streams.insert(id, stream.clone());
            if let Some(q) = r.queue {
                let _ = hostcalls::enqueue_shared_queue(q, Some(b"1"));
            }
            Action::Pause
        }
    }
}

fn send(stream: &Rc<RefCell<Stream>>, reply: &Reply) -> Action {
    stream.borrow_mut().local_reply = true;
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let _ = hostcalls::send_http_response(u32::from(reply.status), headers, Some(&reply.body));
    Action::Pause
}

struct Http {
    id: u32,
    /// `None` only if Envoy created a stream for a VM whose configuration
    /// was refused; such streams are answered 503.
    runtime: Option<Shared>,
    stream: Rc<RefCell<Stream>>,
}

impl Context for Http {
    fn on_done(&mut self) -> bool {
        if let Some(rt) = &self.runtime {
            let mut r = rt.borrow_mut();
            r.streams.remove(&self.id);
            for w in r.waiters.values_mut() {
                w.retain(|id| *id != self.id);
            }
        }
        true
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(rt) = self.runtime.clone() else {
            return send(
                &self.stream,
                &Reply {
                    status: 503,
                    headers: Vec::new(),
                    body: Vec::new(),
                    reason: None,
                },
            );
        };
        #[cfg(feature = "test-panic")]
        forced_panic(self);
        let headers = self.get_http_request_headers_bytes();
        let client = client_address(&rt);
        run(&rt, self.id, &self.stream, &headers, client)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let (local, endpoint) = {
            let s = self.stream.borrow();
            (s.local_reply, s.endpoint)
        };
        if local {
            return Action::Continue;
        }
        if let (Some(rt), Some(idx)) = (&self.runtime, endpoint) {
            let plan = rt.borrow().plan.clone();
            let headers = self.get_http_response_headers_bytes();
            let remove =
                decision::response_removals(&plan, idx, headers.iter().map(|(n, _)| n.as_str()));
            for name in &remove {
                let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, None);
            }
        }
        Action::Continue
    }
}

/// Test-only (feature `test-panic`): a request with this header kills the VM.
#[cfg(feature = "test-panic")]
#[allow(clippy::panic)]
fn forced_panic(ctx: &impl HttpContext) {
    if ctx
        .get_http_request_header("x-backstage-proxy-test-panic")
        .is_some()
    {
        panic!("test-panic: forced by x-backstage-proxy-test-panic");
    }
}
