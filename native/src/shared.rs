//! The store every worker shares: process memory behind a lock, as the
//! core's [`SharedData`] (the Wasm filter's is Envoy's shared data). The
//! same compare-and-swap rules ([`InMemory`]); each call holds the lock
//! only for its own read or write, as Envoy's shared data does. It lives
//! as long as the process, so budgets and their hash key outlive a
//! configuration push, as they do in Envoy's shared data.

use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use backstage_proxy_core::shared_data::{InMemory, SharedData};

static STORE: LazyLock<Mutex<InMemory>> = LazyLock::new(|| Mutex::new(InMemory::default()));

/// A handle on the process-wide store.
pub struct ProcessShared;

/// The store, also after a panic elsewhere held its lock: each write is
/// one map insert, which a panic cannot leave half done.
fn store() -> MutexGuard<'static, InMemory> {
    STORE.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SharedData for ProcessShared {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        store().get(key)
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        store().set(key, value, cas)
    }
}
