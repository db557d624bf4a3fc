//! The root context: loads the configuration, owns the per-VM runtime that
//! every HTTP context of the VM shares, and carries out the key-set fetch
//! coordinator's commands (fetches go out from the root, so their answers
//! come back to it).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use backstage_proxy_core::auth::jwks::fetch::{Command, Coordinator, Response};
use backstage_proxy_core::auth::AuthState;
use backstage_proxy_core::config::{self, Plan};
use backstage_proxy_core::decision;
use backstage_proxy_core::fasthash;
use backstage_proxy_core::permission::ask::{self, Asker};
use backstage_proxy_core::ratelimit;
use backstage_proxy_core::vm_slot::{self, Slot};
use log::{debug, error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType};

use crate::asks;
use crate::http::{self, Http};
use crate::metrics::Metrics;
use crate::runtime::{now_ms, Runtime, Shared};
use crate::shared_data::HostShared;

/// How often the root looks at key sets (refresh, shared data, lost fetches).
const TICK: Duration = Duration::from_millis(100);

pub struct Root {
    id: u32,
    runtime: Option<Shared>,
}

impl Root {
    pub fn new(id: u32) -> Root {
        Root { id, runtime: None }
    }
}

/// The name part of an instance's gauge and queue: its slot, or (all 64
/// taken) a number of its own.
fn instance_tag(slot: Option<Slot>, owner: u64) -> String {
    match slot {
        Some(s) => format!("w{}", s.index),
        None => format!("{owner:016x}"),
    }
}

/// Claims this instance's slot at its first tick, then renews it about
/// once a second; if another instance took it meanwhile, claims another
/// and renames the gauge and queue.
fn renew_slot(rt: &Shared) {
    let mut r = rt.borrow_mut();
    let first = r.ticks == 0;
    r.ticks = r.ticks.wrapping_add(1);
    if !first && !r.ticks.is_multiple_of(10) {
        return;
    }
    let now = now_ms();
    if r.slot.is_some_and(|s| s.renew(&mut HostShared, now)) {
        return;
    }
    let slot = vm_slot::claim(&mut HostShared, r.owner, now);
    if !first && slot.is_none() && r.slot.is_none() {
        return;
    }
    r.slot = slot;
    let tag = instance_tag(slot, r.owner);
    r.metrics.rename_vm_memory(&tag);
    r.queue = hostcalls::register_shared_queue(&format!("backstage_proxy.wake.{tag}")).ok();
}

impl Context for Root {
    fn on_done(&mut self) -> bool {
        // The instance goes away: its slot (and so its names) is free.
        if let Some(slot) = self.runtime.as_ref().and_then(|rt| rt.borrow().slot) {
            slot.release(&mut HostShared);
            debug!(
                "backstage-proxy-wasm: instance done, slot w{} released",
                slot.index
            );
        }
        true
    }

    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(rt) = &self.runtime else {
            return;
        };
        if rt.borrow().asker.owns(token) {
            let response = call_response(body_size, ask::MAX_ANSWER_BYTES);
            let cmds = {
                let mut r = rt.borrow_mut();
                let r = &mut *r;
                r.asker
                    .answered(&mut r.auth.permissions, token, response, now_ms())
            };
            asks::execute_asks(rt, cmds);
            return;
        }
        let max = rt.borrow().plan.gateway.jwks_max_bytes;
        let response = call_response(body_size, max);
        let cmds = {
            let mut r = rt.borrow_mut();
            let r = &mut *r;
            r.coord.answered(
                &mut r.auth.keys,
                &mut HostShared,
                token,
                response,
                max,
                now_ms(),
            )
        };
        execute(rt, cmds);
    }
}

/// A call's answer as the host reports it: the status, and the body when
/// it is 200 and at most `max` bytes (only what will be parsed is read).
fn call_response(body_size: usize, max: usize) -> Response {
    let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten();
    match status
        .as_deref()
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<u16>().ok())
    {
        Some(status) => Response::Answered {
            status,
            body: (status == 200 && body_size <= max)
                .then(|| {
                    hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                        .ok()
                        .flatten()
                })
                .flatten(),
            size: body_size,
        },
        None => Response::Lost,
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
        // One wake-up queue and memory gauge per instance, named after a
        // slot claimed in shared data at the first tick (instances Envoy
        // only configures, on its main thread, never tick and never claim):
        // names are reused across configuration pushes instead of growing
        // with each. Until then the tick alone starts fetches.
        let owner = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            (self.id, now_ms()),
        ) | 1;
        create_rate_limit_counters(&plan);
        let auth = AuthState::new(&plan);
        let needs_client = plan.endpoints.iter().any(|e| e.xfwd);
        self.runtime = Some(Rc::new(RefCell::new(Runtime {
            root_id: self.id,
            plan: Rc::new(plan),
            auth,
            coord: Coordinator::default(),
            asker: Asker::default(),
            metrics: Metrics::define(),
            queue: None,
            streams: fasthash::map(),
            hits_seen: 0,
            misses_seen: 0,
            permission_hits_seen: 0,
            permission_misses_seen: 0,
            needs_client,
            slot: None,
            owner,
            ticks: 0,
        })));
        let _ = hostcalls::set_tick_period(TICK);
        true
    }

    fn on_tick(&mut self) {
        if let Some(rt) = &self.runtime {
            renew_slot(rt);
            rt.borrow().metrics.record_vm_memory();
            let cmds = {
                let mut r = rt.borrow_mut();
                let r = &mut *r;
                r.coord.tick(&mut r.auth.keys, &mut HostShared, now_ms())
            };
            execute(rt, cmds);
            asks::tick(rt);
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        while let Ok(Some(_)) = hostcalls::dequeue_shared_queue(queue_id) {}
        if let Some(rt) = &self.runtime {
            pump(rt);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(context_id, self.runtime.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Starts what waiting streams need: key-set fetches and questions to the
/// permission backend.
fn pump(rt: &Shared) {
    let cmds = {
        let mut r = rt.borrow_mut();
        let r = &mut *r;
        r.coord.pump(&mut r.auth.keys, &mut HostShared, now_ms())
    };
    execute(rt, cmds);
    asks::pump(rt);
}

/// Carries out the coordinator's commands, and those their results bring.
fn execute(rt: &Shared, cmds: Vec<Command>) {
    let mut todo = VecDeque::from(cmds);
    while let Some(cmd) = todo.pop_front() {
        match cmd {
            Command::Fetch { source, timeout_ms } => {
                let headers = vec![
                    (":method", "GET"),
                    (":path", source.path.as_str()),
                    (":authority", source.authority.as_str()),
                    ("accept", "application/json"),
                ];
                let call = hostcalls::dispatch_http_call(
                    &source.cluster,
                    headers,
                    None,
                    vec![],
                    Duration::from_millis(timeout_ms),
                )
                .map_err(|status| format!("{status:?}"));
                let mut r = rt.borrow_mut();
                let r = &mut *r;
                todo.extend(r.coord.dispatched(
                    &mut r.auth.keys,
                    &mut HostShared,
                    source,
                    call,
                    now_ms(),
                ));
            }
            Command::Redecide(ids) => {
                redecide(rt, ids);
                if rt.borrow().coord.wants_pump() {
                    let mut r = rt.borrow_mut();
                    let r = &mut *r;
                    todo.extend(r.coord.pump(&mut r.auth.keys, &mut HostShared, now_ms()));
                }
                // A stream decided again may now wait for a permission.
                if rt.borrow().asker.wants_pump() {
                    asks::pump(rt);
                }
            }
            Command::Count(c) => rt.borrow().metrics.fetch(c),
        }
    }
}

/// The shared-data counters the filter's own budgets need, where absent
/// (Envoy's shared data has no create-if-absent for requests to rely on).
fn create_rate_limit_counters(plan: &Plan) {
    let keys = decision::counter_keys(plan);
    if keys.is_empty() {
        return;
    }
    if !ratelimit::ensure_secret(&mut HostShared, &random_bytes()) {
        warn!("backstage-proxy-wasm: the budgets' hash key could not be stored: per-principal budgets refuse until it is");
    }
    for key in keys {
        if matches!(hostcalls::get_shared_data(&key), Ok((None, _)) | Err(_)) {
            let _ = hostcalls::set_shared_data(&key, Some(ratelimit::NEW_COUNTER), None);
        }
    }
}

/// Decides each stream again, in its own context, and resumes or answers
/// it; streams that still need a key set or a permission answer are parked
/// again by the decision. Restores the root as the effective context
/// afterwards.
pub fn redecide(rt: &Shared, ids: Vec<u32>) {
    let root_id = rt.borrow().root_id;
    for id in ids {
        let Some(stream) = rt.borrow().streams.get(&id).cloned() else {
            let mut r = rt.borrow_mut();
            r.coord.forget(id);
            r.asker.forget(id);
            continue;
        };
        if hostcalls::set_effective_context(id).is_err() {
            let mut r = rt.borrow_mut();
            r.streams.remove(&id);
            r.coord.forget(id);
            r.asker.forget(id);
            continue;
        }
        let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
        let resumed = matches!(
            http::on_request(rt, id, &stream, &headers),
            Action::Continue
        );
        let waiting = {
            let r = rt.borrow();
            r.coord.is_waiting(id) || r.asker.is_waiting(id)
        };
        if !waiting {
            let mut r = rt.borrow_mut();
            r.streams.remove(&id);
            r.coord.forget(id);
            r.asker.forget(id);
        }
        if resumed {
            let _ = hostcalls::resume_http_request();
        }
    }
    let _ = hostcalls::set_effective_context(root_id);
}

/// 32 random bytes, from the host's randomness (WASI `random_get`, through
/// the standard library's hash keys).
fn random_bytes() -> [u8; 32] {
    use std::hash::BuildHasher;
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let word = std::collections::hash_map::RandomState::new().hash_one(i);
        for (b, w) in chunk.iter_mut().zip(word.to_le_bytes()) {
            *b = w;
        }
    }
    out
}
