//! Counter ids, defined once per VM; Envoy shows them as
//! `wasmcustom.backstage_proxy.<…>`.

use std::collections::HashMap;

use backstage_proxy_core::audit::Outcome;
use backstage_proxy_core::auth::jwks::fetch::Counter;
use backstage_proxy_core::config::Plan;
use backstage_proxy_core::fasthash::{self, FastMap};
use backstage_proxy_core::permission::ask::Counter as AskCounter;
use backstage_proxy_core::reply::Reason;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

pub struct Metrics {
    allowed: Option<u32>,
    passthrough: Option<u32>,
    own_jwks: Option<u32>,
    /// CORS preflights the filter answered (`backend.cors`).
    cors_preflight: Option<u32>,
    denied: HashMap<Reason, u32>,
    fetch: HashMap<Counter, u32>,
    pub cache_hit: Option<u32>,
    pub cache_miss: Option<u32>,
    /// Questions to the permission backend, by outcome.
    permission: HashMap<AskCounter, u32>,
    pub permission_cache_hit: Option<u32>,
    pub permission_cache_miss: Option<u32>,
    /// This VM's linear memory in bytes (a gauge, one per VM).
    pub vm_memory: Option<u32>,
    /// Per endpoint (by index) and outcome (0: allowed, 1 + position in
    /// [`Reason::ALL`]: denied), defined on first use.
    per_endpoint: FastMap<(usize, usize), u32>,
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
            permission: [
                (AskCounter::Asked, "asked"),
                (AskCounter::Allow, "allow"),
                (AskCounter::Deny, "deny"),
                (AskCounter::Failed, "failed"),
            ]
            .iter()
            .filter_map(|(c, name)| {
                counter(&format!("backstage_proxy.permission.{name}")).map(|id| (*c, id))
            })
            .collect(),
            permission_cache_hit: counter("backstage_proxy.permission_cache.hit"),
            permission_cache_miss: counter("backstage_proxy.permission_cache.miss"),
            vm_memory: None,
            per_endpoint: fasthash::map(),
        }
    }

    /// Counts a request to an endpoint: `backstage_proxy.endpoint.<name>.allowed`
    /// (`None`) or `….denied.<reason>`. Each is defined the first time it
    /// counts, so the number of counters is bounded by the configuration
    /// (endpoints × outcomes) and only the outcomes that happened exist.
    pub fn endpoint(&mut self, plan: &Plan, idx: usize, reason: Option<Reason>) {
        if cfg!(feature = "bench-skip-metrics") {
            return;
        }
        let outcome = match reason {
            None => 0,
            Some(r) => 1 + Reason::ALL.iter().position(|x| *x == r).unwrap_or(0),
        };
        let id = match self.per_endpoint.get(&(idx, outcome)) {
            Some(id) => Some(*id),
            None => {
                let Some(e) = plan.endpoints.get(idx) else {
                    return;
                };
                let name = match reason {
                    None => format!("backstage_proxy.endpoint.{}.allowed", e.stat_name),
                    Some(r) => format!(
                        "backstage_proxy.endpoint.{}.denied.{}",
                        e.stat_name,
                        r.code()
                    ),
                };
                let id = hostcalls::define_metric(MetricType::Counter, &name).ok();
                if let Some(id) = id {
                    self.per_endpoint.insert((idx, outcome), id);
                }
                id
            }
        };
        Metrics::bump(id, 1);
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

    /// Counts a denial, and for a request that had found its endpoint the
    /// same per endpoint.
    pub fn deny(&mut self, plan: &Plan, reason: Reason, endpoint: Option<usize>) {
        Metrics::bump(self.denied.get(&reason).copied(), 1);
        if let Some(i) = endpoint {
            self.endpoint(plan, i, Some(reason));
        }
    }

    /// Counts what the filter did with a request; for an endpoint, the
    /// same per endpoint.
    pub fn count(&mut self, plan: &Plan, outcome: Outcome, endpoint: Option<usize>) {
        match outcome {
            Outcome::Allowed => {
                Metrics::bump(self.allowed, 1);
                if let Some(i) = endpoint {
                    self.endpoint(plan, i, None);
                }
            }
            Outcome::Denied(reason) => self.deny(plan, reason, endpoint),
            Outcome::OwnJwks => Metrics::bump(self.own_jwks, 1),
            Outcome::CorsPreflight => Metrics::bump(self.cors_preflight, 1),
            Outcome::PassThrough => Metrics::bump(self.passthrough, 1),
        }
    }

    pub fn fetch(&self, c: Counter) {
        Metrics::bump(self.fetch.get(&c).copied(), 1);
    }

    pub fn ask(&self, c: AskCounter) {
        Metrics::bump(self.permission.get(&c).copied(), 1);
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
