//! The HTTP context: one request's headers to the core's decision, and the
//! decision applied through the host (headers edited, a local reply sent,
//! or the stream paused for a key set); the response's headers through the
//! endpoint's allow-list.

use std::cell::RefCell;
use std::rc::Rc;

use backstage_proxy_core::auth::jwks::fetch::Park;
use backstage_proxy_core::auth::Principal;
use backstage_proxy_core::config::Plan;
use backstage_proxy_core::ratelimit::{self, Admit};

use crate::shared_data::HostShared;
use backstage_proxy_core::cors::Answer;
use backstage_proxy_core::decision::{self, Decision, Request};
use backstage_proxy_core::fasthash;
use backstage_proxy_core::reply::{self, Reason, Reply};
use log::debug;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};

use crate::metrics::Metrics;
use crate::root::{now_ms, Shared};

/// What a stream needs to remember between callbacks.
#[derive(Default)]
pub struct Stream {
    /// The endpoint a forwarded request went to (for the response policy).
    endpoint: Option<usize>,
    /// Set once the filter answered locally: its own reply is not filtered.
    local_reply: bool,
    /// CORS headers the response carries (`backend.cors`, SPEC §9.3).
    cors: Vec<(&'static str, String)>,
}

pub struct Http {
    id: u32,
    /// `None` only if Envoy created a stream for a VM whose configuration
    /// was refused; such streams are answered 503.
    runtime: Option<Shared>,
    stream: Rc<RefCell<Stream>>,
}

impl Http {
    pub fn new(id: u32, runtime: Option<Shared>) -> Http {
        Http {
            id,
            runtime,
            stream: Rc::new(RefCell::new(Stream::default())),
        }
    }
}

/// The client's address and whether its connection is TLS, read only when
/// some endpoint needs them (`xfwd`).
fn connection(rt: &Shared) -> (Option<String>, bool) {
    if !rt.borrow().needs_client {
        return (None, false);
    }
    let address = hostcalls::get_property(vec!["source", "address"])
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    // Envoy's `connection.tls_version` attribute: empty or absent in the
    // clear.
    let tls = hostcalls::get_property(vec!["connection", "tls_version"])
        .ok()
        .flatten()
        .is_some_and(|v| !v.is_empty());
    (address, tls)
}

/// One decision for a stream, applied through the host. `Pause` means the
/// stream was answered locally or is waiting for a key set.
pub fn run(
    rt: &Shared,
    id: u32,
    stream: &Rc<RefCell<Stream>>,
    headers: &[(String, Vec<u8>)],
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
    let plan = rt.borrow().plan.clone();
    // CORS first, before anything else, as Backstage's middleware runs.
    if let Some(policy) = &plan.cors {
        match policy.answer(
            &method,
            joined(headers, "origin").as_deref(),
            joined(headers, "access-control-request-headers").as_deref(),
        ) {
            Answer::None => {}
            Answer::Preflight { status, headers } => {
                Metrics::bump(rt.borrow().metrics.cors_preflight, 1);
                audit(&plan, None, None, "cors_preflight");
                let reply = Reply {
                    status,
                    headers: headers
                        .into_iter()
                        .map(|(n, v)| (n.to_string(), v))
                        .collect(),
                    body: Vec::new(),
                    reason: None,
                };
                return send(stream, &reply);
            }
            Answer::Decorate(headers) => stream.borrow_mut().cors = headers,
        }
    }
    let (client, downstream_tls) = connection(rt);
    let request = Request {
        method: &method,
        path: path.as_deref(),
        authority: &authority,
        downstream_tls,
        headers,
        client_address: client.as_deref(),
        now_ms: now_ms(),
    };
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
        Decision::Reply {
            reply,
            endpoint,
            principal,
        } => refuse(rt, &plan, stream, &reply, endpoint, principal.as_ref()),
        Decision::Forward(mut fwd) => {
            if plan.gateway.rate_limit_service.is_some() {
                // Envoy's rate limit filter decides, for the whole fleet;
                // its refusal's body names the path as the client sent it.
                if ratelimit::hand_over(&plan, headers, &mut fwd) {
                    let url = path.as_deref().unwrap_or_default();
                    let _ = hostcalls::set_property(
                        vec!["backstage_proxy.request_url"],
                        Some(url.as_bytes()),
                    );
                }
            } else if let Some((e, limit)) = plan
                .endpoints
                .get(fwd.endpoint)
                .and_then(|e| e.rate_limit.as_ref().map(|l| (e, l)))
            {
                let who = fwd.principal.as_ref().map(Principal::name);
                if let Admit::No { retry_after_s } =
                    ratelimit::admit(&mut HostShared, ratelimit::scope(e), who, limit, now_ms())
                {
                    let mut r = reply::error(
                        429,
                        Reason::RateLimited,
                        "TooManyRequestsError",
                        "Too many requests to this endpoint",
                        &method,
                        path.as_deref().unwrap_or_default(),
                    );
                    r.headers
                        .push(("retry-after".to_string(), retry_after_s.to_string()));
                    return refuse(
                        rt,
                        &plan,
                        stream,
                        &r,
                        Some(fwd.endpoint),
                        fwd.principal.as_ref(),
                    );
                }
            }
            {
                let mut r = rt.borrow_mut();
                Metrics::bump(r.metrics.allowed, 1);
                r.metrics.endpoint(&plan, fwd.endpoint, None);
            }
            audit(&plan, fwd.principal.as_ref(), Some(fwd.endpoint), "allowed");
            apply_request_edits(headers, &fwd.remove, &fwd.set);
            stream.borrow_mut().endpoint = Some(fwd.endpoint);
            Action::Continue
        }
        Decision::NeedKeys(source) => {
            let mut r = rt.borrow_mut();
            match r.coord.park(id, &source) {
                Park::Wait => {
                    r.streams.insert(id, stream.clone());
                    // Fetches go out from the root context: wake it.
                    if let Some(q) = r.queue {
                        let _ = hostcalls::enqueue_shared_queue(q, Some(b"1"));
                    }
                    Action::Pause
                }
                Park::Refuse => {
                    drop(r);
                    let reply = reply::unauthenticated(
                        Reason::KeySetUnavailable,
                        "Invalid token",
                        &method,
                        path.as_deref().unwrap_or_default(),
                    );
                    refuse(rt, &plan, stream, &reply, None, None)
                }
            }
        }
    }
}

/// The filter's own reply: in the audit trail, counted (a denial also per
/// endpoint) and logged at debug, then sent.
fn refuse(
    rt: &Shared,
    plan: &Plan,
    stream: &Rc<RefCell<Stream>>,
    reply: &Reply,
    endpoint: Option<usize>,
    principal: Option<&Principal>,
) -> Action {
    audit(
        plan,
        principal,
        endpoint,
        reply.reason.map(Reason::code).unwrap_or("own_jwks"),
    );
    let mut r = rt.borrow_mut();
    match reply.reason {
        Some(reason) => {
            r.metrics.deny(plan, reason, endpoint);
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
    send(stream, reply)
}

/// The audit trail: who called which endpoint and what the filter decided,
/// as filter state Envoy's access log reads
/// (`%FILTER_STATE(wasm.backstage_proxy.principal:PLAIN)%`, `….endpoint`,
/// `….decision`). Never a token, a secret or a claim beyond the principal.
fn audit(plan: &Plan, principal: Option<&Principal>, endpoint: Option<usize>, decision: &str) {
    if !plan.gateway.audit_trail {
        return;
    }
    let endpoint = endpoint
        .and_then(|i| plan.endpoints.get(i))
        .map(|e| e.raw_key.as_str())
        .unwrap_or("-");
    let principal = principal.map(Principal::name).unwrap_or("-");
    for (key, value) in [
        ("backstage_proxy.principal", principal),
        ("backstage_proxy.endpoint", endpoint),
        ("backstage_proxy.decision", decision),
    ] {
        let _ = hostcalls::set_property(vec![key], Some(value.as_bytes()));
    }
}

/// With `gateway.rateLimitService`, Envoy's rate limit filter (after this
/// one) may have answered instead of the upstream: its `429`
/// (`request_rate_limited`) is the endpoint's budget spent, its error
/// (`rate_limiter_error`, with `failureModeDeny`) the service unreachable.
/// Either is logged and counted as the filter's own refusals are, and the
/// `429` gets `retry-after` from Envoy's `x-ratelimit-reset` (the service's
/// time to the next window), as the filter's own `429` has it. Only a
/// `429` or `5xx` costs the property read.
fn rate_limit_service_reply<'h>(
    rt: &Shared,
    plan: &Plan,
    endpoint: usize,
    headers: &'h [(String, Vec<u8>)],
) -> Vec<(std::borrow::Cow<'h, str>, std::borrow::Cow<'h, str>)> {
    let status = headers
        .iter()
        .find(|(n, _)| n == ":status")
        .map(|(_, v)| v.as_slice());
    if !matches!(status, Some(s) if s == b"429" || s.first() == Some(&b'5')) {
        return Vec::new();
    }
    let details = hostcalls::get_property(vec!["response", "code_details"])
        .ok()
        .flatten()
        .unwrap_or_default();
    let reason = match details.as_slice() {
        b"request_rate_limited" => Reason::RateLimited,
        b"rate_limiter_error" => Reason::RateLimitServiceError,
        _ => return Vec::new(),
    };
    rt.borrow_mut().metrics.deny(plan, reason, Some(endpoint));
    // The principal was logged when the request was let through.
    if plan.gateway.audit_trail {
        let _ = hostcalls::set_property(
            vec!["backstage_proxy.decision"],
            Some(reason.code().as_bytes()),
        );
    }
    debug!(
        "backstage-proxy-wasm: denied by the rate limit service reason={} endpoint={}",
        reason.code(),
        plan.endpoints
            .get(endpoint)
            .map(|e| e.raw_key.as_str())
            .unwrap_or("-")
    );
    let reset = headers
        .iter()
        .find(|(n, _)| n == "x-ratelimit-reset")
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
    match (reason, reset) {
        (Reason::RateLimited, Some(seconds)) => vec![(
            std::borrow::Cow::Borrowed("retry-after"),
            std::borrow::Cow::Borrowed(seconds),
        )],
        _ => Vec::new(),
    }
}

/// Above this many removals a header map is replaced whole. Each removal
/// is a host call in which Envoy scans the map (and clears the route
/// cache): with `n` headers and `r` removals that is `n·r`, which grew to
/// 1.4 million instructions for a request with 100 headers. Replacing the
/// map is one pass, but for a request with few edits it costs Envoy about
/// 3,400 instructions more than editing in place (`make
/// bench-instructions`, growth table).
const REPLACE_MAP_ABOVE: usize = 6;

/// The forwarded request's edits: in place, or the map replaced whole
/// when many headers go.
fn apply_request_edits(
    headers: &[(String, Vec<u8>)],
    remove: &[std::borrow::Cow<'_, str>],
    set: &[(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)],
) {
    if cfg!(feature = "bench-skip-edits") {
        // Only the destination, so the request is still routed.
        if let Some((name, value)) = set.last() {
            let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
        }
        return;
    }
    edit_map(MapType::HttpRequestHeaders, headers, remove, set);
}

/// Removes `remove` (every value) from the header map `headers` was read
/// from and sets `set` (replacing): one host call per edit, or the map
/// replaced whole when many headers go.
fn edit_map(
    map_type: MapType,
    headers: &[(String, Vec<u8>)],
    remove: &[std::borrow::Cow<'_, str>],
    set: &[(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)],
) {
    if remove.len() > REPLACE_MAP_ABOVE {
        let mut gone = fasthash::set();
        gone.extend(remove.iter().map(|r| r.as_ref()));
        gone.extend(set.iter().map(|(n, _)| n.as_ref()));
        let mut map: Vec<(&str, &[u8])> = headers
            .iter()
            .filter(|(n, _)| !gone.contains(n.as_str()))
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        map.extend(set.iter().map(|(n, v)| (n.as_ref(), v.as_bytes())));
        let _ = hostcalls::set_map_bytes(map_type, map);
        return;
    }
    for name in remove {
        let _ = hostcalls::set_map_value(map_type, name, None);
    }
    for (name, value) in set {
        let _ = hostcalls::set_map_value(map_type, name, Some(value));
    }
}

/// All values of a request header, joined with `, ` as Node joins them;
/// `None` if absent or not UTF-8.
fn joined(headers: &[(String, Vec<u8>)], name: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for (n, v) in headers {
        if n == name {
            let v = std::str::from_utf8(v).ok()?;
            match &mut out {
                None => out = Some(v.to_string()),
                Some(o) => {
                    o.push_str(", ");
                    o.push_str(v);
                }
            }
        }
    }
    out
}

/// The filter's own reply, with the stream's CORS headers.
fn send(stream: &Rc<RefCell<Stream>>, reply: &Reply) -> Action {
    let mut s = stream.borrow_mut();
    s.local_reply = true;
    let mut headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    for (n, v) in &s.cors {
        if !headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n)) {
            headers.push((n, v.as_str()));
        }
    }
    let _ = hostcalls::send_http_response(u32::from(reply.status), headers, Some(&reply.body));
    Action::Pause
}

impl Context for Http {
    fn on_done(&mut self) -> bool {
        if let Some(rt) = &self.runtime {
            let mut r = rt.borrow_mut();
            r.streams.remove(&self.id);
            r.coord.forget(self.id);
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
        run(&rt, self.id, &self.stream, &headers)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if cfg!(feature = "bench-skip-response") {
            return Action::Continue;
        }
        let (local, endpoint, cors) = {
            let mut s = self.stream.borrow_mut();
            (s.local_reply, s.endpoint, std::mem::take(&mut s.cors))
        };
        if local {
            return Action::Continue;
        }
        // The names the response keeps: an upstream header the endpoint
        // lets through wins over CORS's, as http-proxy's copy does in
        // Backstage.
        let mut kept: Vec<String> = Vec::new();
        if let (Some(rt), Some(idx)) = (&self.runtime, endpoint) {
            let plan = rt.borrow().plan.clone();
            let headers = self.get_http_response_headers_bytes();
            let remove =
                decision::response_removals(&plan, idx, headers.iter().map(|(n, _)| n.as_str()));
            let set = match plan.gateway.rate_limit_service {
                Some(_) => rate_limit_service_reply(rt, &plan, idx, &headers),
                None => Vec::new(),
            };
            edit_map(MapType::HttpResponseHeaders, &headers, &remove, &set);
            if !cors.is_empty() {
                kept = headers
                    .iter()
                    .map(|(n, _)| n)
                    .filter(|n| !remove.iter().any(|r| r.as_ref() == n.as_str()))
                    .cloned()
                    .collect();
            }
        } else if !cors.is_empty() {
            kept = self
                .get_http_response_headers_bytes()
                .into_iter()
                .map(|(n, _)| n)
                .collect();
        }
        for (name, value) in &cors {
            if !kept.iter().any(|k| k == name) {
                let _ = hostcalls::add_map_value(MapType::HttpResponseHeaders, name, value);
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
