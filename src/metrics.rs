//! Counter ids, defined once per VM; Envoy shows them as
//! `wasmcustom.backstage_proxy.<…>`.

use std::collections::HashMap;

use backstage_proxy_core::auth::jwks::fetch::Counter;
use backstage_proxy_core::reply::Reason;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

pub struct Metrics {
    pub allowed: Option<u32>,
    pub passthrough: Option<u32>,
    pub own_jwks: Option<u32>,
    /// CORS preflights the filter answered (`backend.cors`).
    pub cors_preflight: Option<u32>,
    pub denied: HashMap<Reason, u32>,
    fetch: HashMap<Counter, u32>,
    pub cache_hit: Option<u32>,
    pub cache_miss: Option<u32>,
    /// This VM's linear memory in bytes (a gauge, one per VM).
    pub vm_memory: Option<u32>,
}

impl Metrics {
    /// The counters; the memory gauge comes with the instance's slot
    /// ([`Metrics::rename_vm_memory`]).
    pub fn define() -> Metrics {
        let counter = |name: &str| hostcalls::define_metric(MetricType::Counter, name).ok();
        let fetch = [
            (Counter::FetchSuccess, "fetch_success"),
            (Counter::FetchFailure, "fetch_failure"),
            (Counter::FetchRationed, "fetch_rationed"),
            (Counter::SharedAdopted, "shared_adopted"),
        ];
        Metrics {
            allowed: counter("backstage_proxy.allowed"),
            passthrough: counter("backstage_proxy.passthrough"),
            own_jwks: counter("backstage_proxy.own_jwks_served"),
            cors_preflight: counter("backstage_proxy.cors_preflight"),
            denied: Reason::ALL
                .iter()
                .filter_map(|r| {
                    counter(&format!("backstage_proxy.denied.{}", r.code())).map(|id| (*r, id))
                })
                .collect(),
            fetch: fetch
                .iter()
                .filter_map(|(c, name)| {
                    counter(&format!("backstage_proxy.keyset.{name}")).map(|id| (*c, id))
                })
                .collect(),
            cache_hit: counter("backstage_proxy.token_cache.hit"),
            cache_miss: counter("backstage_proxy.token_cache.miss"),
            vm_memory: None,
        }
    }

    pub fn bump(id: Option<u32>, by: u64) {
        if cfg!(feature = "bench-skip-metrics") {
            return;
        }
        if let (Some(id), Ok(by)) = (id, i64::try_from(by)) {
            if by > 0 {
                let _ = hostcalls::increment_metric(id, by);
            }
        }
    }

    pub fn deny(&self, reason: Reason) {
        Metrics::bump(self.denied.get(&reason).copied(), 1);
    }

    pub fn fetch(&self, c: Counter) {
        Metrics::bump(self.fetch.get(&c).copied(), 1);
    }

    /// Names this instance's memory gauge anew (its slot changed).
    pub fn rename_vm_memory(&mut self, vm_tag: &str) {
        self.vm_memory = hostcalls::define_metric(
            MetricType::Gauge,
            &format!("backstage_proxy.vm_memory_bytes.{vm_tag}"),
        )
        .ok();
    }

    pub fn record_vm_memory(&self) {
        if let Some(id) = self.vm_memory {
            let _ = hostcalls::record_metric(id, vm_memory_bytes());
        }
    }
}

/// This VM's linear memory in bytes (0 when built natively, for checks).
fn vm_memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    return core::arch::wasm32::memory_size(0) as u64 * 65536;
    #[cfg(not(target_arch = "wasm32"))]
    return 0;
}
