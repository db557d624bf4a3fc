//! A filter configuration: the same JSON the Wasm filter reads, parsed
//! into the core's immutable plan once (on Envoy's main thread), and the
//! per-worker state every stream of that worker shares.

use std::sync::{Mutex, MutexGuard, OnceLock};

use backstage_proxy_core::auth::AuthState;
use backstage_proxy_core::config::{self, Plan};
use backstage_proxy_core::decision;
use backstage_proxy_core::ratelimit;
use backstage_proxy_core::shared_data::SharedData;

use crate::abi::{log, Level};
use crate::shared::ProcessShared;

/// Worker slots: a worker uses slot `index % WORKER_SLOTS`, so two workers
/// share one only above this many (still correct, behind its lock).
const WORKER_SLOTS: usize = 64;

pub struct Config {
    pub plan: Plan,
    /// Some endpoint has `xfwd`: only then is the client address read.
    pub needs_client: bool,
    /// Each worker's token verification state (key sets, verified-token
    /// cache), made at its first request. Uncontended: a worker runs one
    /// hook at a time.
    workers: Box<[OnceLock<Mutex<AuthState>>]>,
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
            workers: (0..WORKER_SLOTS).map(|_| OnceLock::new()).collect(),
        })
    }

    /// Worker `index`'s verification state (`None` never happens: there
    /// is always a slot). After a panic held it, it starts afresh (its
    /// caches may be half written; emptying them only costs verifications).
    pub fn auth(&self, index: usize) -> Option<MutexGuard<'_, AuthState>> {
        let lock = self
            .workers
            .get(index % WORKER_SLOTS)?
            .get_or_init(|| Mutex::new(AuthState::new(&self.plan)));
        Some(lock.lock().unwrap_or_else(|poisoned| {
            let mut guard = poisoned.into_inner();
            *guard = AuthState::new(&self.plan);
            lock.clear_poison();
            guard
        }))
    }
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
