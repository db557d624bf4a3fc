//! The per-VM state the root context and every HTTP context of the VM
//! share, and the host's clock.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use backstage_proxy_core::auth::jwks::fetch::Coordinator;
use backstage_proxy_core::auth::AuthState;
use backstage_proxy_core::config::Plan;
use backstage_proxy_core::fasthash::FastMap;
use backstage_proxy_core::vm_slot::Slot;
use proxy_wasm::hostcalls;

use crate::metrics::Metrics;
use backstage_proxy_core::decision::{After, Asking};
use backstage_proxy_core::permission::ask::Asker;

/// Per-VM state shared by the root and every HTTP context of the VM.
pub struct Runtime {
    pub root_id: u32,
    pub plan: Rc<Plan>,
    pub auth: AuthState,
    pub coord: Coordinator,
    /// Questions to the permission backend.
    pub asker: Asker,
    pub metrics: Metrics,
    /// This VM's wake-up queue (HTTP contexts → root).
    pub queue: Option<u32>,
    /// Paused streams, by context id.
    pub streams: FastMap<u32, Rc<RefCell<Stream>>>,
    pub hits_seen: u64,
    pub misses_seen: u64,
    pub permission_hits_seen: u64,
    pub permission_misses_seen: u64,
    /// Some endpoint has `xfwd`: only then is the client address read.
    pub needs_client: bool,
    /// This instance's slot: the stable part of its gauge and queue names.
    pub slot: Option<Slot>,
    /// A random number of this instance's own (its slot leases say it).
    pub owner: u64,
    pub ticks: u32,
}

pub type Shared = Rc<RefCell<Runtime>>;

pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What a stream needs to remember between callbacks.
#[derive(Default)]
pub struct Stream {
    /// What the response of a request that went on needs.
    pub after: After,
    /// Set once the filter answered locally: its own reply is not filtered.
    pub local_reply: bool,
    /// The permission question it waits for, kept for its refusal.
    pub asking: Option<Asking>,
}
