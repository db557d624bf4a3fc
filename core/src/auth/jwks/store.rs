//! Remote key sets, per VM: what is known, what is being fetched, and when
//! to fetch again. Pure state with the clock passed in; the filter does the
//! fetching and reports back.
//!
//! - A request waits only when no set was ever fetched for its URL.
//! - Sets are refreshed in the background before they expire.
//! - An unknown `kid` triggers one refetch, at most once per cooldown.
//! - A failed or unusable fetch keeps the last good set (stale-if-error).

use crate::fasthash::{self, FastMap};
use std::rc::Rc;

use super::set::KeySet;
use crate::config::{Gateway, Plan};

/// Where a key set comes from and how Envoy reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    pub url: String,
    pub cluster: String,
    pub authority: String,
    /// Path and query to request.
    pub path: String,
}

impl Source {
    fn from_url(url: &crate::url::Url, cluster: &str) -> Source {
        let path = match &url.query {
            Some(q) => format!("{}?{q}", url.path),
            None => url.path.clone(),
        };
        Source {
            url: format!("{}://{}{}", url.scheme, url.authority(), path),
            cluster: cluster.to_string(),
            authority: url.authority(),
            path,
        }
    }

    /// A key set served by the Backstage backend, at `<backend><path>`.
    fn backend(plan: &Plan, path: &str) -> Option<Source> {
        let b = plan.backend.as_ref()?;
        let mut url = b.url.clone();
        url.path = format!("{}{path}", url.path.trim_end_matches('/'));
        url.query = None;
        Some(Source::from_url(&url, &b.cluster))
    }

    /// Backstage's user-token key set: `<backend>/api/auth/.well-known/jwks.json`.
    pub fn user(plan: &Plan) -> Option<Source> {
        Source::backend(plan, "/api/auth/.well-known/jwks.json")
    }

    /// A plugin's key set: `<backend>/api/<plugin>/.backstage/auth/v1/jwks.json`.
    /// `plugin` must already match `^[a-z0-9_-]+$`.
    pub fn plugin(plan: &Plan, plugin: &str) -> Option<Source> {
        Source::backend(plan, &format!("/api/{plugin}/.backstage/auth/v1/jwks.json"))
    }

    /// An external `jwks` entry's key set.
    pub fn external(provider: &crate::config::JwksProvider) -> Source {
        Source::from_url(&provider.url, &provider.cluster)
    }
}

/// How long things take, from the gateway configuration.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub refresh_ms: u64,
    pub cooldown_ms: u64,
    pub fetch_timeout_ms: u64,
    /// After a failed fetch with no set to fall back on, requests are refused
    /// at once for this long instead of waiting for yet another fetch.
    pub retry_after_failure_ms: u64,
}

impl Timing {
    pub fn from(g: &Gateway) -> Timing {
        Timing {
            refresh_ms: g.jwks_cache_seconds * 1000,
            cooldown_ms: g.jwks_refetch_cooldown_seconds * 1000,
            fetch_timeout_ms: g.jwks_fetch_timeout_ms,
            retry_after_failure_ms: 1000,
        }
    }
}

/// Most distinct key-set URLs a VM tracks (the user set, each calling
/// plugin's set, external entries). Plugin ids come from tokens, so this
/// bounds what a stream of forged plugin tokens can make the VM remember.
pub const MAX_SOURCES: usize = 128;

#[derive(Debug, Clone)]
struct Entry {
    source: Source,
    set: Option<Rc<KeySet>>,
    /// Incremented whenever `set` is replaced.
    generation: u64,
    fetched_at: Option<u64>,
    in_flight: Option<u64>,
    failed_at: Option<u64>,
    kid_refetch_at: Option<u64>,
    /// A fetch is wanted as soon as possible (cold start, unknown kid).
    wanted: bool,
}

#[derive(Debug, Clone)]
pub enum Lookup {
    Ready(Rc<KeySet>, u64),
    /// No set yet; a fetch is wanted or under way: wait for it.
    Wait,
    /// No set and the last fetch failed moments ago.
    Unavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KidRefetch {
    /// A refetch is wanted or under way: wait for it.
    Wait,
    /// Within the cooldown: the kid is unknown, refuse.
    Refused,
}

#[derive(Debug, Clone)]
pub struct KeySets {
    timing: Timing,
    entries: FastMap<String, Entry>,
}

impl KeySets {
    pub fn new(timing: Timing) -> KeySets {
        KeySets {
            timing,
            entries: fasthash::map(),
        }
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    fn entry(&mut self, source: &Source) -> Option<&mut Entry> {
        if !self.entries.contains_key(&source.url) {
            if self.entries.len() >= MAX_SOURCES {
                return None;
            }
            self.entries.insert(
                source.url.clone(),
                Entry {
                    source: source.clone(),
                    set: None,
                    generation: 0,
                    fetched_at: None,
                    in_flight: None,
                    failed_at: None,
                    kid_refetch_at: None,
                    wanted: false,
                },
            );
        }
        self.entries.get_mut(&source.url)
    }

    pub fn lookup(&mut self, source: &Source, now: u64) -> Lookup {
        let retry = self.timing.retry_after_failure_ms;
        let Some(e) = self.entry(source) else {
            return Lookup::Unavailable;
        };
        if let Some(set) = &e.set {
            return Lookup::Ready(set.clone(), e.generation);
        }
        if e.in_flight.is_some() {
            return Lookup::Wait;
        }
        if e.failed_at.is_some_and(|t| now.saturating_sub(t) < retry) {
            return Lookup::Unavailable;
        }
        e.wanted = true;
        Lookup::Wait
    }

    /// A token names a `kid` the current set lacks.
    pub fn unknown_kid(&mut self, source: &Source, now: u64) -> KidRefetch {
        let cooldown = self.timing.cooldown_ms;
        let Some(e) = self.entry(source) else {
            return KidRefetch::Refused;
        };
        if e.in_flight.is_some() {
            return KidRefetch::Wait;
        }
        let recent = |t: Option<u64>| t.is_some_and(|t| now.saturating_sub(t) < cooldown);
        if recent(e.kid_refetch_at) {
            return KidRefetch::Refused;
        }
        e.kid_refetch_at = Some(now);
        e.wanted = true;
        KidRefetch::Wait
    }

    /// Current generation of a source's set (0 when none).
    pub fn generation(&self, url: &str) -> u64 {
        self.entries.get(url).map(|e| e.generation).unwrap_or(0)
    }

    /// Sources to fetch now: wanted ones, and sets due for refresh.
    pub fn due(&self, now: u64) -> Vec<Source> {
        let t = self.timing;
        self.entries
            .values()
            .filter(|e| e.in_flight.is_none())
            .filter(|e| {
                let refresh_due = e
                    .fetched_at
                    .is_some_and(|f| now.saturating_sub(f) >= t.refresh_ms);
                // after a failed refresh, the last good set serves until the next try
                let failed_recently = e.failed_at.is_some_and(|f| {
                    now.saturating_sub(f) < t.retry_after_failure_ms.max(t.cooldown_ms)
                });
                e.wanted || (refresh_due && !failed_recently)
            })
            .map(|e| e.source.clone())
            .collect()
    }

    /// Whether a source has a fetch under way past the timeout (the host
    /// lost it); such fetches are forgotten so they can be retried.
    pub fn expire_stuck(&mut self, now: u64) -> Vec<Source> {
        let limit = self.timing.fetch_timeout_ms.saturating_mul(2).max(1000);
        let mut out = Vec::new();
        for e in self.entries.values_mut() {
            if e.in_flight.is_some_and(|t| now.saturating_sub(t) > limit) {
                e.in_flight = None;
                e.failed_at = Some(now);
                out.push(e.source.clone());
            }
        }
        out
    }

    pub fn in_flight(&self, url: &str) -> bool {
        self.entries.get(url).is_some_and(|e| e.in_flight.is_some())
    }

    pub fn start(&mut self, url: &str, now: u64) {
        if let Some(e) = self.entries.get_mut(url) {
            e.in_flight = Some(now);
            e.wanted = false;
        }
    }

    /// A fetch (here or, through shared data, in another worker) produced a
    /// usable set, fetched at `fetched_at`.
    pub fn succeeded(&mut self, url: &str, set: KeySet, fetched_at: u64) {
        if let Some(e) = self.entries.get_mut(url) {
            e.in_flight = None;
            e.wanted = false;
            e.failed_at = None;
            e.fetched_at = Some(fetched_at);
            e.set = Some(Rc::new(set));
            e.generation += 1;
        }
    }

    /// The fetch failed: the last good set, if any, stays.
    pub fn failed(&mut self, url: &str, now: u64) {
        if let Some(e) = self.entries.get_mut(url) {
            e.in_flight = None;
            e.wanted = false;
            e.failed_at = Some(now);
        }
    }

    /// When this VM last saw a fresh set for `url` (to compare with shared data).
    pub fn fetched_at(&self, url: &str) -> Option<u64> {
        self.entries.get(url).and_then(|e| e.fetched_at)
    }

    pub fn has_set(&self, url: &str) -> bool {
        self.entries.get(url).is_some_and(|e| e.set.is_some())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwks::set::parse_key_set;

    const ED: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}"#;

    fn src(url: &str) -> Source {
        Source {
            url: url.into(),
            cluster: "c".into(),
            authority: "h".into(),
            path: "/".into(),
        }
    }

    fn sets() -> KeySets {
        KeySets::new(Timing {
            refresh_ms: 600_000,
            cooldown_ms: 30_000,
            fetch_timeout_ms: 5000,
            retry_after_failure_ms: 1000,
        })
    }

    #[test]
    fn cold_start_waits_for_one_fetch() {
        let mut k = sets();
        let s = src("http://a/jwks");
        assert!(matches!(k.lookup(&s, 0), Lookup::Wait));
        assert_eq!(k.due(0), vec![s.clone()]);
        k.start(&s.url, 0);
        assert!(
            k.due(1).is_empty(),
            "never two fetches in flight for one URL"
        );
        assert!(matches!(k.lookup(&s, 1), Lookup::Wait));
        k.succeeded(&s.url, parse_key_set(ED.as_bytes()).unwrap(), 2);
        assert!(matches!(k.lookup(&s, 3), Lookup::Ready(_, 1)));
    }

    #[test]
    fn failure_without_a_set_refuses_then_retries() {
        let mut k = sets();
        let s = src("http://a/jwks");
        k.lookup(&s, 0);
        k.start(&s.url, 0);
        k.failed(&s.url, 10);
        assert!(matches!(k.lookup(&s, 500), Lookup::Unavailable));
        assert!(k.due(500).is_empty());
        assert!(matches!(k.lookup(&s, 1200), Lookup::Wait));
        assert_eq!(k.due(1200), vec![s]);
    }

    #[test]
    fn stale_if_error_and_background_refresh() {
        let mut k = sets();
        let s = src("http://a/jwks");
        k.lookup(&s, 0);
        k.start(&s.url, 0);
        k.succeeded(&s.url, parse_key_set(ED.as_bytes()).unwrap(), 0);
        assert!(k.due(599_999).is_empty());
        assert_eq!(k.due(600_000), vec![s.clone()]);
        k.start(&s.url, 600_000);
        k.failed(&s.url, 600_010);
        assert!(
            matches!(k.lookup(&s, 600_020), Lookup::Ready(_, 1)),
            "the last good set stays"
        );
        assert!(k.due(600_020).is_empty());
        assert_eq!(
            k.due(630_010),
            vec![s.clone()],
            "retried after the cooldown"
        );
    }

    #[test]
    fn unknown_kid_refetches_once_per_cooldown() {
        let mut k = sets();
        let s = src("http://a/jwks");
        k.lookup(&s, 0);
        k.start(&s.url, 0);
        k.succeeded(&s.url, parse_key_set(ED.as_bytes()).unwrap(), 0);
        assert_eq!(k.unknown_kid(&s, 100), KidRefetch::Wait);
        assert_eq!(k.due(100), vec![s.clone()]);
        k.start(&s.url, 100);
        assert_eq!(
            k.unknown_kid(&s, 101),
            KidRefetch::Wait,
            "a refetch under way: wait for it"
        );
        k.succeeded(&s.url, parse_key_set(ED.as_bytes()).unwrap(), 150);
        for t in [200, 10_000, 30_099] {
            assert_eq!(k.unknown_kid(&s, t), KidRefetch::Refused);
        }
        assert!(k.due(30_099).is_empty());
        assert_eq!(k.unknown_kid(&s, 30_100), KidRefetch::Wait);
        assert_eq!(k.generation(&s.url), 2);
    }

    #[test]
    fn sources_are_bounded() {
        let mut k = sets();
        for i in 0..MAX_SOURCES {
            assert!(matches!(
                k.lookup(&src(&format!("http://a/{i}")), 0),
                Lookup::Wait
            ));
        }
        assert!(matches!(
            k.lookup(&src("http://a/one-too-many"), 0),
            Lookup::Unavailable
        ));
        assert_eq!(k.len(), MAX_SOURCES);
    }

    #[test]
    fn lost_fetches_are_expired() {
        let mut k = sets();
        let s = src("http://a/jwks");
        k.lookup(&s, 0);
        k.start(&s.url, 0);
        assert!(k.expire_stuck(9_000).is_empty());
        assert_eq!(k.expire_stuck(10_001), vec![s.clone()]);
        assert!(!k.in_flight(&s.url));
    }
}
