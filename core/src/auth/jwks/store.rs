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

    /// Something served by the Backstage backend, at `<backend><path>`
    /// (key sets; the permission backend's `authorize`).
    pub fn backend(plan: &Plan, path: &str) -> Option<Source> {
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

/// Most key sets a VM keeps that it learnt from requests (plugin key sets:
/// plugin ids come from tokens, which anyone can mint). The sets the
/// configuration names (the user-token set, each `jwks` entry) are kept
/// apart and never displaced.
pub const MAX_LEARNT: usize = 128;

/// Fetches of learnt sets a VM may start in a burst, and how often one more
/// is allowed after that: a flood of forged plugin tokens, each naming a new
/// plugin, costs the Backstage backend at most
/// `LEARNT_BURST + elapsed / LEARNT_REFILL_MS` fetches per worker. A set
/// another worker already published in shared data costs nothing.
pub const LEARNT_BURST: u32 = 8;
pub const LEARNT_REFILL_MS: u64 = 1000;

#[derive(Debug, Clone)]
struct Entry {
    source: Source,
    /// Named by the configuration: never evicted, never rationed.
    pinned: bool,
    set: Option<Rc<KeySet>>,
    /// Incremented whenever `set` is replaced.
    generation: u64,
    fetched_at: Option<u64>,
    in_flight: Option<u64>,
    failed_at: Option<u64>,
    /// The last "failure" was the fetch bucket running out, not the source
    /// answering badly: retried after the short delay, not the cooldown.
    rationed: bool,
    kid_refetch_at: Option<u64>,
    /// Last time a request asked for this set (eviction order).
    used_at: u64,
    /// A fetch is wanted as soon as possible (cold start, unknown kid).
    wanted: bool,
}

impl Entry {
    fn new(source: Source, pinned: bool, now: u64) -> Entry {
        Entry {
            source,
            pinned,
            set: None,
            generation: 0,
            fetched_at: None,
            in_flight: None,
            failed_at: None,
            rationed: false,
            kid_refetch_at: None,
            used_at: now,
            wanted: false,
        }
    }

    /// After a failure, how long before this source is fetched again for a
    /// request: briefly for configured sets, a whole cooldown for learnt
    /// ones (a plugin the backend does not know answers 404 every time).
    fn backoff_ms(&self, t: &Timing) -> u64 {
        if self.pinned || self.rationed {
            t.retry_after_failure_ms
        } else {
            t.retry_after_failure_ms.max(t.cooldown_ms)
        }
    }

    /// Never gave a usable key: the first to go when room is needed.
    fn never_usable(&self) -> bool {
        self.set.as_ref().is_none_or(|s| s.keys.is_empty())
    }
}

#[derive(Debug, Clone)]
pub enum Lookup {
    Ready(Rc<KeySet>, u64),
    /// No set yet; a fetch is wanted or under way: wait for it.
    Wait,
    /// No set and the last fetch failed moments ago (or was not allowed by
    /// the fetch bucket), or every learnt slot is being fetched.
    Unavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KidRefetch {
    /// A refetch is wanted or under way: wait for it.
    Wait,
    /// Within the cooldown: the kid is unknown, refuse.
    Refused,
}

/// A token bucket for cold fetches of learnt sets.
#[derive(Debug, Clone, Copy)]
struct FetchBucket {
    tokens: u32,
    refilled_at: u64,
}

impl FetchBucket {
    fn take(&mut self, now: u64) -> bool {
        let earned = now.saturating_sub(self.refilled_at) / LEARNT_REFILL_MS;
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            self.tokens = self.tokens.saturating_add(earned).min(LEARNT_BURST);
            self.refilled_at = now;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

#[derive(Debug, Clone)]
pub struct KeyStore {
    timing: Timing,
    entries: FastMap<String, Entry>,
    learnt: usize,
    fetch_bucket: FetchBucket,
}

impl KeyStore {
    /// `pinned`: the sources the configuration names.
    pub fn new(timing: Timing, pinned: impl IntoIterator<Item = Source>) -> KeyStore {
        let mut entries = fasthash::map();
        for source in pinned {
            entries.insert(source.url.clone(), Entry::new(source, true, 0));
        }
        KeyStore {
            timing,
            entries,
            learnt: 0,
            fetch_bucket: FetchBucket {
                tokens: LEARNT_BURST,
                refilled_at: 0,
            },
        }
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// The entry for `source`, made room for if it is new. `None` when every
    /// learnt slot is busy with a fetch.
    fn entry(&mut self, source: &Source, now: u64) -> Option<&mut Entry> {
        if !self.entries.contains_key(&source.url) {
            if self.learnt >= MAX_LEARNT && !self.evict_one() {
                return None;
            }
            self.entries
                .insert(source.url.clone(), Entry::new(source.clone(), false, now));
            self.learnt += 1;
        }
        let e = self.entries.get_mut(&source.url)?;
        e.used_at = e.used_at.max(now);
        Some(e)
    }

    /// Drops one learnt set that is not being fetched: one that never gave
    /// a usable key if there is any, else the least recently used.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .entries
            .values()
            .filter(|e| !e.pinned && e.in_flight.is_none())
            .min_by_key(|e| (!e.never_usable(), e.used_at))
            .map(|e| e.source.url.clone());
        match victim {
            Some(url) => {
                self.entries.remove(&url);
                self.learnt -= 1;
                true
            }
            None => false,
        }
    }

    pub fn lookup(&mut self, source: &Source, now: u64) -> Lookup {
        let timing = self.timing;
        let Some(e) = self.entry(source, now) else {
            return Lookup::Unavailable;
        };
        if let Some(set) = &e.set {
            return Lookup::Ready(set.clone(), e.generation);
        }
        if e.in_flight.is_some() {
            return Lookup::Wait;
        }
        if e.failed_at
            .is_some_and(|t| now.saturating_sub(t) < e.backoff_ms(&timing))
        {
            return Lookup::Unavailable;
        }
        e.wanted = true;
        Lookup::Wait
    }

    /// A token names a `kid` the current set lacks.
    pub fn unknown_kid(&mut self, source: &Source, now: u64) -> KidRefetch {
        let cooldown = self.timing.cooldown_ms;
        let Some(e) = self.entries.get_mut(&source.url) else {
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
                let refresh_due = e.set.is_some()
                    && e.fetched_at
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

    /// Whether this VM may fetch `url` now: always for the sets the
    /// configuration names, within the fetch bucket for learnt ones. When not,
    /// the source counts as failed for the short retry delay, so that the
    /// requests waiting for it are answered at once.
    pub fn may_fetch(&mut self, url: &str, now: u64) -> bool {
        let Some(e) = self.entries.get_mut(url) else {
            return false;
        };
        if e.pinned || self.fetch_bucket.take(now) {
            return true;
        }
        e.wanted = false;
        e.failed_at = Some(now);
        e.rationed = true;
        false
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
            e.rationed = false;
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
            e.rationed = false;
        }
    }

    /// When this VM last saw a fresh set for `url` (to compare with shared data).
    pub fn fetched_at(&self, url: &str) -> Option<u64> {
        self.entries.get(url).and_then(|e| e.fetched_at)
    }

    pub fn has_set(&self, url: &str) -> bool {
        self.entries.get(url).is_some_and(|e| e.set.is_some())
    }

    /// Whether the configuration names this source.
    pub fn is_pinned(&self, url: &str) -> bool {
        self.entries.get(url).is_some_and(|e| e.pinned)
    }

    /// Sets learnt from requests currently kept.
    pub fn learnt(&self) -> usize {
        self.learnt
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests;
