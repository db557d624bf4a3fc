//! The Wasm filter's `backstage_proxy.*` counters, under the same names.
//! Envoy lets a dynamic module define its counters only while it creates
//! the configuration, so every counter is defined then, the per-endpoint
//! ones for every outcome (endpoints × (1 + every denial reason), each 0 until it counts: the
//! Wasm filter defines those on first use). With the rendered
//! `metrics_namespace: wasmcustom` Envoy names them exactly as the Wasm
//! filter's (`wasmcustom.backstage_proxy.…`), so one set of dashboards and
//! alerts serves both artifacts.

use backstage_proxy_core::audit::Outcome;
use backstage_proxy_core::auth::jwks::fetch::Counter;
use backstage_proxy_core::permission::ask::Counter as AskCounter;
use backstage_proxy_core::reply::Reason;

use backstage_proxy_core::config::Plan;

/// Counter ids (Envoy's), `None` where Envoy refused the definition.
#[derive(Debug, Default)]
pub struct Metrics {
    allowed: Option<usize>,
    passthrough: Option<usize>,
    own_jwks: Option<usize>,
    cors_preflight: Option<usize>,
    /// By position in [`Reason::ALL`].
    denied: Vec<Option<usize>>,
    /// By position in [`FETCH`].
    fetch: Vec<Option<usize>>,
    pub cache_hit: Option<usize>,
    pub cache_miss: Option<usize>,
    /// By position in [`ASKED`].
    asked: Vec<Option<usize>>,
    pub permission_cache_hit: Option<usize>,
    pub permission_cache_miss: Option<usize>,
    /// Per endpoint (by index): allowed, then denied by position in
    /// [`Reason::ALL`].
    per_endpoint: Vec<Vec<Option<usize>>>,
}

const FETCH: [(Counter, &str); 4] = [
    (Counter::FetchSuccess, "fetch_success"),
    (Counter::FetchFailure, "fetch_failure"),
    (Counter::FetchRationed, "fetch_rationed"),
    (Counter::SharedAdopted, "shared_adopted"),
];

const ASKED: [(AskCounter, &str); 4] = [
    (AskCounter::Asked, "asked"),
    (AskCounter::Allow, "allow"),
    (AskCounter::Deny, "deny"),
    (AskCounter::Failed, "failed"),
];

fn position(reason: Reason) -> Option<usize> {
    Reason::ALL.iter().position(|r| *r == reason)
}

impl Metrics {
    /// Every counter, through `define` (Envoy's, at configuration time).
    pub fn define(plan: &Plan, define: &mut dyn FnMut(&str) -> Option<usize>) -> Metrics {
        let mut c = |name: String| define(&format!("backstage_proxy.{name}"));
        Metrics {
            allowed: c("allowed".into()),
            passthrough: c("passthrough".into()),
            own_jwks: c("own_jwks_served".into()),
            cors_preflight: c("cors_preflight".into()),
            denied: Reason::ALL
                .iter()
                .map(|r| c(format!("denied.{}", r.code())))
                .collect(),
            fetch: FETCH
                .iter()
                .map(|(_, name)| c(format!("keyset.{name}")))
                .collect(),
            cache_hit: c("token_cache.hit".into()),
            cache_miss: c("token_cache.miss".into()),
            asked: ASKED
                .iter()
                .map(|(_, name)| c(format!("permission.{name}")))
                .collect(),
            permission_cache_hit: c("permission_cache.hit".into()),
            permission_cache_miss: c("permission_cache.miss".into()),
            per_endpoint: plan
                .endpoints
                .iter()
                .map(|e| {
                    let mut ids = vec![c(format!("endpoint.{}.allowed", e.stat_name))];
                    ids.extend(
                        Reason::ALL
                            .iter()
                            .map(|r| c(format!("endpoint.{}.denied.{}", e.stat_name, r.code()))),
                    );
                    ids
                })
                .collect(),
        }
    }

    /// The counters an outcome adds one to (for an endpoint, also its own).
    pub fn outcome(
        &self,
        outcome: Outcome,
        endpoint: Option<usize>,
    ) -> impl Iterator<Item = usize> {
        let per = |slot: Option<usize>| {
            endpoint
                .zip(slot)
                .and_then(|(i, s)| self.per_endpoint.get(i)?.get(s).copied().flatten())
        };
        let ids = match outcome {
            Outcome::Allowed => [self.allowed, per(Some(0))],
            Outcome::Denied(reason) => {
                let p = position(reason);
                [
                    p.and_then(|p| self.denied.get(p).copied().flatten()),
                    per(p.map(|p| p + 1)),
                ]
            }
            Outcome::OwnJwks => [self.own_jwks, None],
            Outcome::CorsPreflight => [self.cors_preflight, None],
            Outcome::PassThrough => [self.passthrough, None],
        };
        ids.into_iter().flatten()
    }

    /// A permission question's outcome's counter.
    pub fn asked(&self, c: AskCounter) -> Option<usize> {
        let p = ASKED.iter().position(|(x, _)| *x == c)?;
        self.asked.get(p).copied().flatten()
    }

    /// A key-set fetch outcome's counter.
    pub fn fetch(&self, c: Counter) -> Option<usize> {
        let p = FETCH.iter().position(|(x, _)| *x == c)?;
        self.fetch.get(p).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backstage_proxy_core::config;

    #[test]
    fn every_counter_is_defined_once_with_the_wasm_filters_names() {
        let plan = config::parse(
            br#"{"proxy":{"endpoints":{"/a":"http://a.internal","/b":"http://b.internal"}}}"#,
            &|_| None,
        )
        .unwrap();
        let mut names = Vec::new();
        let m = Metrics::define(&plan, &mut |n| {
            names.push(n.to_string());
            Some(names.len())
        });
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        let reasons = Reason::ALL.len();
        assert_eq!(names.len(), 4 + reasons + 4 + 2 + 4 + 2 + 2 * (1 + reasons));
        assert!(names.iter().all(|n| n.starts_with("backstage_proxy.")));
        let id = |n: &str| names.iter().position(|x| x == n).unwrap() + 1;
        let a = &plan.endpoints[0].stat_name;
        assert_eq!(
            m.outcome(Outcome::Allowed, Some(0)).collect::<Vec<_>>(),
            vec![
                id("backstage_proxy.allowed"),
                id(&format!("backstage_proxy.endpoint.{a}.allowed"))
            ]
        );
        assert_eq!(
            m.outcome(Outcome::Denied(Reason::RateLimited), Some(0))
                .collect::<Vec<_>>(),
            vec![
                id("backstage_proxy.denied.rate_limited"),
                id(&format!("backstage_proxy.endpoint.{a}.denied.rate_limited"))
            ]
        );
        // no endpoint, or one past the configuration: only the totals
        assert_eq!(
            m.outcome(Outcome::Denied(Reason::NotFound), None)
                .collect::<Vec<_>>(),
            vec![id("backstage_proxy.denied.not_found")]
        );
        assert_eq!(m.outcome(Outcome::Allowed, Some(9)).count(), 1);
        assert_eq!(
            m.fetch(Counter::SharedAdopted),
            Some(id("backstage_proxy.keyset.shared_adopted"))
        );
        // a counter Envoy refused is never incremented
        let none = Metrics::define(&plan, &mut |_| None);
        assert_eq!(none.outcome(Outcome::Allowed, Some(0)).count(), 0);
    }
}
