//! A filter configuration: the same JSON the Wasm filter reads, parsed
//! into the core's immutable plan once (on Envoy's main thread), and the
//! per-worker state every stream of that worker shares.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use backstage_proxy_core::config::{self, Plan};
use backstage_proxy_core::decision;
use backstage_proxy_core::ratelimit;
use backstage_proxy_core::shared_data::SharedData;

use crate::abi::{log, ConfigScheduler, Level, StreamScheduler};
use crate::callout::Mailroom;
use crate::metrics::Metrics;
use crate::shared::ProcessShared;
use crate::worker::Worker;

pub struct Config {
    pub plan: Plan,
    /// Some endpoint has `xfwd`: only then is the client address read.
    pub needs_client: bool,
    /// Asks Envoy's main thread to send the queued callouts (`None` only
    /// outside Envoy, or if Envoy gave no scheduler: callouts then fail).
    pub main: Option<ConfigScheduler>,
    /// Callouts on their way and answers not yet read.
    pub mailroom: Mailroom<StreamScheduler>,
    /// The counters (none outside Envoy).
    pub metrics: Metrics,
}

thread_local! {
    /// This worker's state (key sets, verified-token cache, key-set fetch
    /// coordination) for each live configuration, made at its first
    /// request. The core's state is single-threaded (`Rc`), so it never
    /// leaves the worker thread that made it; a configuration's entry goes
    /// at the next request after the configuration is gone.
    static WORKER: RefCell<Vec<(Weak<Config>, Worker)>> = const { RefCell::new(Vec::new()) };
}

impl Config {
    /// Parses the configuration (environment references from Envoy's
    /// process environment). `None` after logging every error: Envoy then
    /// refuses the configuration.
    pub fn new(bytes: &[u8]) -> Option<Config> {
        let plan = match config::parse(bytes, &|name| std::env::var(name).ok()) {
            Ok(plan) => plan,
            Err(errors) => {
                for e in &errors {
                    log(
                        Level::Error,
                        &format!("backstage-proxy-native: invalid configuration: {e}"),
                    );
                }
                return None;
            }
        };
        for w in &plan.warnings {
            log(Level::Warn, &format!("backstage-proxy-native: {w}"));
        }
        log(
            Level::Info,
            &format!(
                "backstage-proxy-native: loaded {} endpoint(s) under {}",
                plan.endpoints.len(),
                plan.gateway.prefix
            ),
        );
        create_rate_limit_counters(&plan, &mut ProcessShared);
        Some(Config {
            needs_client: plan.endpoints.iter().any(|e| e.xfwd),
            plan,
            main: None,
            mailroom: Mailroom::default(),
            metrics: Metrics::default(),
        })
    }
}

/// Runs `f` with this worker's state for `config`. `None` only if the
/// state is already in use on this thread (never: a worker runs one hook
/// at a time, and `f` calls nothing that comes back here).
pub fn with_worker<R>(config: &Arc<Config>, f: impl FnOnce(&mut Worker) -> R) -> Option<R> {
    WORKER.with(|cell| {
        let mut states = cell.try_borrow_mut().ok()?;
        states.retain(|(w, _)| w.strong_count() > 0);
        let found = states
            .iter()
            .position(|(w, _)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(config)));
        let i = match found {
            Some(i) => i,
            None => {
                states.push((Arc::downgrade(config), Worker::new(&config.plan)));
                states.len().saturating_sub(1)
            }
        };
        let (_, auth) = states.get_mut(i)?;
        Some(f(auth))
    })
}

/// The budget counters the filter's own budgets need, where absent, and
/// their hash key: requests only update counters that exist.
fn create_rate_limit_counters(plan: &Plan, shared: &mut dyn SharedData) {
    let keys = decision::counter_keys(plan);
    if keys.is_empty() {
        return;
    }
    if !ratelimit::ensure_secret(shared, &random_bytes()) {
        log(
            Level::Warn,
            "backstage-proxy-native: the budgets' hash key could not be stored: per-principal budgets refuse until it is",
        );
    }
    for key in keys {
        if shared.get(&key).0.is_none() {
            shared.set(&key, ratelimit::NEW_COUNTER, None);
        }
    }
}

/// 32 random bytes, from the operating system's randomness (through the
/// standard library's hash keys).
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

// A configuration is made on Envoy's main thread and read by every worker.
const _: () = {
    const fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<Config>();
};
