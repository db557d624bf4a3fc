//! One stream: reads the request's headers, asks the core what to do
//! ([`decision::handle`]), and applies the answer through the host (header
//! edits, a local reply, the audit trail's filter state); the response's
//! headers likewise ([`response`]). No policy lives here, and no `unsafe`:
//! the host is [`Host`], which [`crate::abi::Stream`] implements over
//! Envoy's callbacks.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use backstage_proxy_core::audit::{self, Outcome};
use backstage_proxy_core::config::Plan;
use backstage_proxy_core::decision::{
    self, response, After, Answer, Asking, Header, Record, Request, Verdict,
};
use backstage_proxy_core::reply::Reply;

use crate::abi::{log, Attribute, Level, Map, StreamScheduler};
use crate::callout::{StreamId, EVENT_MAIL, EVENT_REDECIDE, EVENT_REFUSE, EVENT_TICK};
use crate::config::Config;
use crate::headers::HeaderMap;
use crate::pause::{pause, Need, Parked};
use crate::shared::ProcessShared;
use crate::worker::{self, Counts};

/// What the filter needs of Envoy for one stream.
pub trait Host {
    /// A copy of every entry of the map (names lower-cased by Envoy, raw
    /// values).
    fn headers(&mut self, map: Map) -> HeaderMap;
    /// Replaces every value of `name`; `None` removes it. `false` when
    /// Envoy did not make the edit.
    fn set(&mut self, map: Map, name: &str, value: Option<&[u8]>) -> bool;
    /// Adds a value to `name`; `false` when Envoy did not.
    fn add(&mut self, map: Map, name: &str, value: &[u8]) -> bool;
    /// Answers the request locally.
    fn send(&mut self, status: u16, headers: &[(String, String)], body: &[u8]);
    /// Keeps `value` as the stream's filter state under `key`.
    fn set_filter_state(&mut self, key: &str, value: &[u8]);
    /// A string attribute of the stream.
    fn attribute(&mut self, id: Attribute) -> Option<Vec<u8>>;
    /// The route is picked again (the destination header changed).
    fn clear_route_cache(&mut self);
    /// A scheduler for this stream (its doorbell while it is paused).
    fn scheduler(&mut self) -> Option<StreamScheduler>;
    /// Resumes the paused request.
    fn continue_decoding(&mut self);
    /// Adds `by` to a counter the configuration defined.
    fn count(&mut self, id: usize, by: u64);
}

/// What a hook is to do once it let go of the filter: the filter never
/// calls what can end the stream (a local reply, resuming it) itself, as
/// Envoy may then call back into the module and destroy the filter before
/// the call returns (`docs/native.md#one-stream`).
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// The request goes on (from the scheduled hook: resume it).
    Continue,
    /// Answer locally with this reply: the request goes no further.
    Reply(Reply),
    /// Paused for a key set or an answer, decided again when it is here
    /// (from the scheduled hook: nothing to do now).
    Pause,
}

impl Flow {
    /// Carries the decision out; after this the stream may be gone.
    pub fn perform(self, host: &mut impl Host) {
        match self {
            Flow::Continue => host.continue_decoding(),
            Flow::Reply(r) => host.send(r.status, &r.headers, &r.body),
            Flow::Pause => {}
        }
    }
}

/// A stream's own state, between its request and its response.
pub struct Filter {
    pub(crate) config: Arc<Config>,
    /// Its number on its worker (the key-set coordinator's stream id).
    pub(crate) id: StreamId,
    /// What the response of a request that went on needs.
    after: After,
    /// The filter answered: its own reply is not filtered.
    local_reply: bool,
    /// Paused for a key set or a permission answer.
    pub(crate) paused: bool,
    /// The permission question it waits for.
    pub(crate) asking: Option<Asking>,
}

impl Filter {
    pub fn new(config: Arc<Config>) -> Filter {
        Filter {
            config,
            id: worker::next_stream(),
            after: After::default(),
            local_reply: false,
            paused: false,
            asking: None,
        }
    }

    /// Paused for a key set: its body and trailers are held back.
    pub fn is_paused(&self) -> bool {
        self.paused
    }
}

/// The answer when the module itself failed (a caught panic, or state it
/// could not reach): 500, nothing else said.
pub fn internal_error() -> Reply {
    Reply {
        status: 500,
        headers: Vec::new(),
        body: Vec::new(),
        reason: None,
    }
}

/// The filter state key the access log reads for an audit key: the Wasm
/// filter's keys (Envoy prefixes its properties with `wasm.`), so one
/// access log format serves both artifacts. The keys every request sets
/// are written out, not formatted per request.
fn state_key(key: &str) -> Cow<'static, str> {
    Cow::Borrowed(match key {
        audit::PRINCIPAL_KEY => "wasm.backstage_proxy.principal",
        audit::ENDPOINT_KEY => "wasm.backstage_proxy.endpoint",
        audit::DECISION_KEY => "wasm.backstage_proxy.decision",
        audit::PERMISSION_KEY => "wasm.backstage_proxy.permission",
        audit::REQUEST_URL_KEY => "wasm.backstage_proxy.request_url",
        other => return Cow::Owned(format!("wasm.{other}")),
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The client's address and whether its connection is TLS, read only when
/// some endpoint needs them (`xfwd`).
fn connection(config: &Config, host: &mut impl Host) -> (Option<String>, bool) {
    if !config.needs_client {
        return (None, false);
    }
    let address = host
        .attribute(Attribute::SourceAddress)
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let tls = host
        .attribute(Attribute::ConnectionTlsVersion)
        .is_some_and(|v| !v.is_empty());
    (address, tls)
}

/// The request's headers: decided and applied.
pub fn on_request(f: &mut Filter, host: &mut impl Host) -> Flow {
    let config = Arc::clone(&f.config);
    let now = now_ms();
    // The worker's periodic look rides on its requests.
    if let Some(counts) = crate::config::with_worker(&config, |w| {
        w.tick(&config, None, false, now);
        w.take_counts()
    }) {
        count_worker(host, &config, counts);
    }
    decide(f, host, false, now)
}

/// Counts what the worker's state counted since: verified-token cache
/// hits and misses, key-set fetch outcomes.
fn count_worker(host: &mut impl Host, config: &Config, counts: Counts) {
    let m = &config.metrics;
    if let (Some(id), true) = (m.cache_hit, counts.hits > 0) {
        host.count(id, counts.hits);
    }
    if let (Some(id), true) = (m.cache_miss, counts.misses > 0) {
        host.count(id, counts.misses);
    }
    for c in counts.fetch {
        if let Some(id) = m.fetch(c) {
            host.count(id, 1);
        }
    }
    for c in counts.asked {
        if let Some(id) = m.asked(c) {
            host.count(id, 1);
        }
    }
    for (id, n) in [
        (m.permission_cache_hit, counts.permission_hits),
        (m.permission_cache_miss, counts.permission_misses),
    ] {
        if let (Some(id), true) = (id, n > 0) {
            host.count(id, n);
        }
    }
}

/// An event for this stream (its doorbell rang): the worker's mail is
/// read and its key sets looked at, and a paused request decided again
/// when what it waits for is in. [`Flow::Continue`]: resume it;
/// [`Flow::Pause`]: nothing to do.
pub fn on_scheduled(f: &mut Filter, host: &mut impl Host, event: u64) -> Flow {
    #[cfg(test)]
    test_panic::in_scheduled();
    let config = Arc::clone(&f.config);
    let me = f.paused.then_some(f.id);
    let (wake, counts) = crate::config::with_worker(&config, |w| {
        let wake = match event {
            // Mail or another worker's key set: the mail and the periodic
            // look, now.
            EVENT_MAIL | EVENT_TICK => w.tick(&config, me, true, now_ms()),
            _ => w.read_mail(&config, me, now_ms()),
        };
        (wake, w.take_counts())
    })
    .unwrap_or_default();
    count_worker(host, &config, counts);
    let refuse = wake.refuse || event == EVENT_REFUSE;
    if !f.paused || !(wake.redo || refuse || event == EVENT_REDECIDE) {
        return Flow::Pause;
    }
    decide(f, host, refuse, now_ms())
}

/// The stream is gone: a paused one is forgotten. If its worker has mail
/// or a look pending (its doorbell may have been this stream's, rung
/// before it went), the worker reads it here, so the worker's other
/// paused streams are not left waiting for the next request.
pub fn on_destroy(f: &mut Filter) {
    if !f.paused {
        return;
    }
    unpause(f);
    let config = Arc::clone(&f.config);
    if config.mailroom.has_pending(worker::id()) {
        let _ = crate::config::with_worker(&config, |w| w.tick(&config, None, true, now_ms()));
    }
}

pub(crate) fn unpause(f: &mut Filter) {
    f.paused = false;
    f.asking = None;
    let config = Arc::clone(&f.config);
    let id = f.id;
    let _ = crate::config::with_worker(&config, |w| {
        w.coord.forget(id);
        w.asker.forget(id);
    });
    config.mailroom.unregister(worker::id(), id);
}

/// Decides the request and applies the decision: from the request hook,
/// and again from the stream's scheduled hook when it was paused.
/// `refuse`: its permission question got no usable answer.
fn decide(f: &mut Filter, host: &mut impl Host, refuse: bool, now_ms: u64) -> Flow {
    let copy = host.headers(Map::Request);
    let headers = copy.view();
    #[cfg(feature = "test-panic")]
    forced_panic(&headers);
    let text = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| String::from_utf8_lossy(v))
    };
    let method = text(":method").unwrap_or_default();
    let path = text(":path");
    let authority = text(":authority").unwrap_or_default();
    let config = Arc::clone(&f.config);
    let plan = &config.plan;
    let (client, downstream_tls) = connection(&config, host);
    let request = Request {
        method: &method,
        path: path.as_deref(),
        authority: &authority,
        downstream_tls,
        headers: &headers,
        client_address: client.as_deref(),
        now_ms,
    };
    if let (true, Some(asking)) = (refuse, f.asking.take()) {
        unpause(f);
        let answer = decision::permission_unavailable(plan, &request, &asking);
        return answer_locally(f, host, plan, answer);
    }
    // A stream woken at once (its set was published meanwhile) decides
    // again here; the coordinator bounds how often (then: refused).
    loop {
        let verdict = crate::config::with_worker(&config, |w| {
            let v = decision::handle(plan, &mut w.auth, &mut ProcessShared, &request);
            (v, w.take_counts())
        });
        let verdict = verdict.map(|(v, counts)| {
            count_worker(host, &config, counts);
            v
        });
        let Some(verdict) = verdict else {
            return send(f, internal_error());
        };
        let parked = match verdict {
            Verdict::Wait(source) => pause(f, host, Need::KeySet(&source), request.now_ms),
            Verdict::Ask(asking) => pause(f, host, Need::Permission(asking), request.now_ms),
            other => {
                if f.paused {
                    unpause(f);
                }
                return apply(f, host, plan, &headers, other);
            }
        };
        let answer = match parked {
            Parked::Again => continue,
            Parked::Paused => return Flow::Pause,
            Parked::KeySetUnavailable => decision::key_set_unavailable(plan, &request),
            Parked::PermissionUnavailable(asking) => {
                decision::permission_unavailable(plan, &request, &asking)
            }
        };
        if f.paused {
            unpause(f);
        }
        return answer_locally(f, host, plan, answer);
    }
}

/// A decision other than waiting, applied.
fn apply(
    f: &mut Filter,
    host: &mut impl Host,
    plan: &Plan,
    headers: &[Header<'_>],
    verdict: Verdict<'_>,
) -> Flow {
    let c = match verdict {
        Verdict::Continue(c) => c,
        Verdict::Answer(answer) => return answer_locally(f, host, plan, answer),
        Verdict::Wait(_) | Verdict::Ask(_) => return send(f, internal_error()),
    };
    let config = Arc::clone(&f.config);
    record(host, &config, &c.record);
    if let Some(url) = c.request_url {
        host.set_filter_state(&state_key(audit::REQUEST_URL_KEY), url.as_bytes());
    }
    // Only headers the request has are removed.
    let remove = c
        .remove
        .iter()
        .filter(|name| headers.iter().any(|(n, _)| *n == name.as_ref()));
    let mut edited = false;
    let mut failed = false;
    for name in remove {
        failed |= !host.set(Map::Request, name, None);
        edited = true;
    }
    for (name, value) in &c.set {
        failed |= !host.set(Map::Request, name, Some(value.as_bytes()));
        edited = true;
    }
    if failed {
        // A credential left in, or a header not injected: never forwarded.
        log(
            Level::Error,
            "backstage-proxy-native: Envoy refused a request header edit; answered 500",
        );
        return send(f, internal_error());
    }
    if edited {
        host.clear_route_cache();
    }
    f.after = c.after;
    Flow::Continue
}

/// Writes what happened for the access log.
fn record(host: &mut impl Host, config: &Config, rec: &Record) {
    for id in config.metrics.outcome(rec.outcome, rec.endpoint) {
        host.count(id, 1);
    }
    let plan = &config.plan;
    if plan.gateway.audit_trail && rec.logged() {
        for (key, value) in rec
            .filter_state(plan)
            .into_iter()
            .chain(rec.permission_state())
        {
            host.set_filter_state(&state_key(key), value.as_bytes());
        }
    }
}

/// The filter's own reply: recorded, a refusal logged at debug, then sent.
fn answer_locally(f: &mut Filter, host: &mut impl Host, plan: &Plan, answer: Answer) -> Flow {
    let config = Arc::clone(&f.config);
    record(host, &config, &answer.record);
    if let Outcome::Denied(reason) = answer.record.outcome {
        log(
            Level::Debug,
            &format!(
                "backstage-proxy-native: denied status={} reason={} endpoint={}",
                answer.reply.status,
                reason.code(),
                answer.record.endpoint_key(plan)
            ),
        );
    }
    send(f, answer.reply)
}

/// The filter's own reply, for the hook to send once it let go of the
/// filter (its response is then not filtered).
fn send(f: &mut Filter, reply: Reply) -> Flow {
    f.local_reply = true;
    Flow::Reply(reply)
}

/// The response's headers of a request that went on: what the endpoint
/// lets through, CORS's headers, a refusal by Envoy's rate limit filter.
/// A reply for the hook to send instead when Envoy refused an edit (a
/// header the endpoint does not let through must not reach the client).
pub fn on_response(f: &mut Filter, host: &mut impl Host) -> Option<Reply> {
    let after = std::mem::take(&mut f.after);
    if f.local_reply || (after.endpoint.is_none() && after.cors.is_empty()) {
        return None;
    }
    let config = Arc::clone(&f.config);
    let plan = &config.plan;
    let copy = host.headers(Map::Response);
    let headers = copy.view();
    let details = response::may_be_rate_limit_service(plan, &headers)
        .then(|| host.attribute(Attribute::ResponseCodeDetails))
        .flatten();
    let endpoint = after.endpoint;
    let edits = response::edits(plan, after, &headers, details.as_deref());
    if let Some(outcome) = edits.refused {
        // The principal was written when the request went on.
        for id in config.metrics.outcome(outcome, endpoint) {
            host.count(id, 1);
        }
        if plan.gateway.audit_trail {
            host.set_filter_state(&state_key(audit::DECISION_KEY), outcome.code().as_bytes());
        }
        log(
            Level::Debug,
            &format!(
                "backstage-proxy-native: denied by the rate limit service reason={} endpoint={}",
                outcome.code(),
                endpoint
                    .and_then(|i| plan.endpoints.get(i))
                    .map_or(audit::ABSENT, |e| e.raw_key.as_str())
            ),
        );
    }
    let mut failed = false;
    for name in &edits.remove {
        failed |= !host.set(Map::Response, name, None);
    }
    for (name, value) in &edits.set {
        failed |= !host.set(Map::Response, name, Some(value.as_bytes()));
    }
    for (name, value) in &edits.add {
        failed |= !host.add(Map::Response, name, value.as_bytes());
    }
    if !failed {
        return None;
    }
    log(
        Level::Error,
        "backstage-proxy-native: Envoy refused a response header edit; answered 500",
    );
    f.local_reply = true;
    Some(internal_error())
}

/// Test-only (feature `test-panic`): a request with this header panics
/// inside the hook, which must catch it. The message quotes the request's
/// credentials, as a careless one could: none of it may reach Envoy's log
/// (the module's panic hook prints a fixed line only; tests/e2e_native.rs).
#[cfg(feature = "test-panic")]
#[allow(clippy::panic)]
fn forced_panic(headers: &[Header<'_>]) {
    if headers
        .iter()
        .any(|(n, _)| *n == "x-backstage-proxy-test-panic")
    {
        let credentials = headers
            .iter()
            .find(|(n, _)| *n == "authorization")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        panic!("test-panic: forced by x-backstage-proxy-test-panic, with {credentials}");
    }
}

/// Unit tests only: a panic in the scheduled hook, on demand.
#[cfg(test)]
pub(crate) mod test_panic {
    use std::cell::Cell;

    thread_local! {
        pub static SCHEDULED: Cell<bool> = const { Cell::new(false) };
    }

    #[allow(clippy::panic)]
    pub fn in_scheduled() {
        if SCHEDULED.with(Cell::get) {
            panic!("test: a panic in the scheduled hook");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_out_state_keys_are_the_wasm_filters_keys() {
        for key in [
            audit::PRINCIPAL_KEY,
            audit::ENDPOINT_KEY,
            audit::DECISION_KEY,
            audit::PERMISSION_KEY,
            audit::REQUEST_URL_KEY,
            "backstage_proxy.other",
        ] {
            assert_eq!(state_key(key), format!("wasm.{key}"));
        }
    }
}
