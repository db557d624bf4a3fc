//! The HTTP context: reads a request's headers, asks the core what to do
//! ([`decision::handle`]), and applies the answer through the host (header
//! edits, a local reply, or a pause for a key set); the response's headers
//! likewise ([`decision::response`]). No policy lives here.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use backstage_proxy_core::audit::{self, Outcome};
use backstage_proxy_core::auth::jwks::fetch::Park;
use backstage_proxy_core::config::Plan;
use backstage_proxy_core::decision::{
    self, response, Answer, Asking, Header, Record, Request, Verdict,
};
use backstage_proxy_core::fasthash;
use backstage_proxy_core::reply::{self, Reply};
use log::debug;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};

use crate::metrics::Metrics;
use crate::runtime::{now_ms, Shared, Stream};
use crate::shared_data::HostShared;

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

/// The pseudo-headers a request is decided by, borrowed from the header
/// list (a copy only for bytes that are not UTF-8): no allocation per
/// request.
struct Pseudo<'h> {
    method: Cow<'h, str>,
    path: Option<Cow<'h, str>>,
    authority: Cow<'h, str>,
    client: Option<String>,
    downstream_tls: bool,
}

impl<'h> Pseudo<'h> {
    fn read(rt: &Shared, headers: &'h [(String, Vec<u8>)]) -> Pseudo<'h> {
        let text = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8_lossy(v))
        };
        let (client, downstream_tls) = connection(rt);
        Pseudo {
            method: text(":method").unwrap_or_default(),
            path: text(":path"),
            authority: text(":authority").unwrap_or_default(),
            client,
            downstream_tls,
        }
    }

    fn request<'a>(&'a self, headers: &'a [Header<'a>]) -> Request<'a> {
        Request {
            method: &self.method,
            path: self.path.as_deref(),
            authority: &self.authority,
            downstream_tls: self.downstream_tls,
            headers,
            client_address: self.client.as_deref(),
            now_ms: now_ms(),
        }
    }
}

/// Handles a stream's request headers: from the first callback, and again
/// from the root when a key set or a permission answer it waited for
/// arrived. `Pause` means the stream was answered locally or waits.
pub fn on_request(
    rt: &Shared,
    id: u32,
    stream: &Rc<RefCell<Stream>>,
    headers: &[(String, Vec<u8>)],
) -> Action {
    let plan = rt.borrow().plan.clone();
    let pseudo = Pseudo::read(rt, headers);
    let view = decision::header_view(headers);
    let request = pseudo.request(&view);
    let verdict = {
        let mut r = rt.borrow_mut();
        let v = decision::handle(&plan, &mut r.auth, &mut HostShared, &request);
        let (hits, misses) = (r.auth.cache_hits, r.auth.cache_misses);
        Metrics::bump(r.metrics.cache_hit, hits - r.hits_seen);
        Metrics::bump(r.metrics.cache_miss, misses - r.misses_seen);
        r.hits_seen = hits;
        r.misses_seen = misses;
        let (hits, misses) = (r.auth.permissions.hits, r.auth.permissions.misses);
        Metrics::bump(
            r.metrics.permission_cache_hit,
            hits - r.permission_hits_seen,
        );
        Metrics::bump(
            r.metrics.permission_cache_miss,
            misses - r.permission_misses_seen,
        );
        r.permission_hits_seen = hits;
        r.permission_misses_seen = misses;
        v
    };
    match verdict {
        Verdict::Continue(c) => {
            record(rt, &plan, &c.record);
            if let Some(url) = c.request_url {
                let _ = hostcalls::set_property(vec![audit::REQUEST_URL_KEY], Some(url.as_bytes()));
            }
            if c.record.outcome == Outcome::PassThrough {
                // Only headers the request has are removed.
                let present: Vec<Cow<'_, str>> = c
                    .remove
                    .into_iter()
                    .filter(|name| view.iter().any(|(n, _)| *n == name))
                    .collect();
                edit_map(MapType::HttpRequestHeaders, &view, &present, &c.set);
            } else {
                apply_request_edits(&view, &c.remove, &c.set);
            }
            stream.borrow_mut().after = c.after;
            Action::Continue
        }
        Verdict::Answer(answer) => answer_locally(rt, &plan, stream, answer),
        Verdict::Wait(source) => {
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
                    let answer = decision::key_set_unavailable(&plan, &request);
                    answer_locally(rt, &plan, stream, answer)
                }
            }
        }
        Verdict::Ask(asking) => ask(rt, &plan, id, stream, &request, asking),
    }
}

/// Pauses a stream until the permission backend answers its question
/// (asked from the root context), or refuses it when too many wait.
fn ask(
    rt: &Shared,
    plan: &Plan,
    id: u32,
    stream: &Rc<RefCell<Stream>>,
    request: &Request<'_>,
    asking: Asking,
) -> Action {
    let mut r = rt.borrow_mut();
    match r.asker.park(id, asking.question.clone()) {
        Park::Wait => {
            stream.borrow_mut().asking = Some(asking);
            r.streams.insert(id, stream.clone());
            if let Some(q) = r.queue {
                let _ = hostcalls::enqueue_shared_queue(q, Some(b"1"));
            }
            Action::Pause
        }
        Park::Refuse => {
            drop(r);
            let answer = decision::permission_unavailable(plan, request, &asking);
            answer_locally(rt, plan, stream, answer)
        }
    }
}

/// Refuses a stream whose permission question got no usable answer
/// (`permission_unavailable`), in its own context.
pub fn refuse_unanswered(rt: &Shared, stream: &Rc<RefCell<Stream>>, headers: &[(String, Vec<u8>)]) {
    let plan = rt.borrow().plan.clone();
    let Some(asking) = stream.borrow_mut().asking.take() else {
        return;
    };
    let pseudo = Pseudo::read(rt, headers);
    let view = decision::header_view(headers);
    let request = pseudo.request(&view);
    let answer = decision::permission_unavailable(&plan, &request, &asking);
    answer_locally(rt, &plan, stream, answer);
}

/// Counts what happened and writes it for the access log.
fn record(rt: &Shared, plan: &Plan, rec: &Record) {
    rt.borrow_mut()
        .metrics
        .count(plan, rec.outcome, rec.endpoint);
    if plan.gateway.audit_trail && rec.logged() {
        for (key, value) in rec
            .filter_state(plan)
            .into_iter()
            .chain(rec.permission_state())
        {
            let _ = hostcalls::set_property(vec![key], Some(value.as_bytes()));
        }
    }
}

/// The filter's own reply: recorded, a refusal logged at debug, then sent.
fn answer_locally(
    rt: &Shared,
    plan: &Plan,
    stream: &Rc<RefCell<Stream>>,
    answer: Answer,
) -> Action {
    record(rt, plan, &answer.record);
    if let Outcome::Denied(reason) = answer.record.outcome {
        debug!(
            "backstage-proxy-wasm: denied status={} reason={} endpoint={}",
            answer.reply.status,
            reason.code(),
            answer.record.endpoint_key(plan)
        );
    }
    send(stream, &answer.reply)
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
    headers: &[Header<'_>],
    remove: &[Cow<'_, str>],
    set: &[(Cow<'_, str>, Cow<'_, str>)],
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
    headers: &[Header<'_>],
    remove: &[Cow<'_, str>],
    set: &[(Cow<'_, str>, Cow<'_, str>)],
) {
    if remove.len() > REPLACE_MAP_ABOVE {
        let mut gone = fasthash::set();
        gone.extend(remove.iter().map(|r| r.as_ref()));
        gone.extend(set.iter().map(|(n, _)| n.as_ref()));
        let mut map: Vec<(&str, &[u8])> = headers
            .iter()
            .filter(|(n, _)| !gone.contains(n))
            .copied()
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

/// Sends the filter's own reply.
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

impl Context for Http {
    fn on_done(&mut self) -> bool {
        if let Some(rt) = &self.runtime {
            let mut r = rt.borrow_mut();
            r.streams.remove(&self.id);
            r.coord.forget(self.id);
            r.asker.forget(self.id);
        }
        true
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(rt) = self.runtime.clone() else {
            return send(&self.stream, &reply::unconfigured());
        };
        #[cfg(feature = "test-panic")]
        forced_panic(self);
        let headers = self.get_http_request_headers_bytes();
        on_request(&rt, self.id, &self.stream, &headers)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if cfg!(feature = "bench-skip-response") {
            return Action::Continue;
        }
        let (local, after) = {
            let mut s = self.stream.borrow_mut();
            (s.local_reply, std::mem::take(&mut s.after))
        };
        let Some(rt) = &self.runtime else {
            return Action::Continue;
        };
        if local || (after.endpoint.is_none() && after.cors.is_empty()) {
            return Action::Continue;
        }
        let plan = rt.borrow().plan.clone();
        let owned = self.get_http_response_headers_bytes();
        let headers = decision::header_view(&owned);
        let details = response::may_be_rate_limit_service(&plan, &headers)
            .then(|| {
                hostcalls::get_property(vec!["response", "code_details"])
                    .ok()
                    .flatten()
            })
            .flatten();
        let endpoint = after.endpoint;
        let edits = response::edits(&plan, after, &headers, details.as_deref());
        if let Some(outcome) = edits.refused {
            // The principal was written when the request went on.
            rt.borrow_mut().metrics.count(&plan, outcome, endpoint);
            if plan.gateway.audit_trail {
                let _ = hostcalls::set_property(
                    vec![audit::DECISION_KEY],
                    Some(outcome.code().as_bytes()),
                );
            }
            debug!(
                "backstage-proxy-wasm: denied by the rate limit service reason={} endpoint={}",
                outcome.code(),
                endpoint
                    .and_then(|i| plan.endpoints.get(i))
                    .map_or(audit::ABSENT, |e| e.raw_key.as_str())
            );
        }
        if !edits.remove.is_empty() || !edits.set.is_empty() {
            edit_map(
                MapType::HttpResponseHeaders,
                &headers,
                &edits.remove,
                &edits.set,
            );
        }
        for (name, value) in &edits.add {
            let _ = hostcalls::add_map_value(MapType::HttpResponseHeaders, name, value);
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
