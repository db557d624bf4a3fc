//! The permission backend's answers, kept per VM for
//! `gateway.permissionCacheSeconds` (5 by default, the time Backstage keeps
//! a user's identity) and bounded by `gateway.permissionCacheSize`
//! (least recently used evicted). Keyed by the user's token, the
//! permission and its action, so one user's answer is never another's and a
//! new token asks again. An `ALLOW` and a `DENY` are kept alike; a failure
//! is never kept. The cache belongs to the VM's configuration: a new
//! configuration starts with none. The stated time is at least a second: a
//! paused request is decided again from the answer its question brought,
//! which must still be here.

use std::num::NonZeroUsize;

use lru::LruCache;

use super::Answer;
use crate::fasthash::Seeded;

pub struct Decisions {
    /// `None` when nothing is kept (`permissionCacheSeconds: 0`).
    entries: LruCache<String, (Answer, u64), Seeded>,
    ttl_ms: u64,
    pub hits: u64,
    pub misses: u64,
}

impl std::fmt::Debug for Decisions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decisions")
            .field("len", &self.len())
            .field("ttl_ms", &self.ttl_ms)
            .finish_non_exhaustive()
    }
}

impl Decisions {
    pub fn new(capacity: usize, ttl_seconds: u64) -> Decisions {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Decisions {
            entries: LruCache::with_hasher(capacity, Seeded::default()),
            ttl_ms: ttl_seconds.max(1).saturating_mul(1000),
            hits: 0,
            misses: 0,
        }
    }

    /// The kept answer to `key` ([`super::ask::question_key`]), if it is
    /// younger than the stated time at `now_ms`.
    pub fn get(&mut self, key: &str, now_ms: u64) -> Option<Answer> {
        let found = match self.entries.get(key) {
            Some(&(answer, until)) if now_ms < until => Some(answer),
            Some(_) => {
                self.entries.pop(key);
                None
            }
            None => None,
        };
        match found {
            Some(_) => self.hits += 1,
            None => self.misses += 1,
        }
        found
    }

    /// Keeps an answer received at `now_ms`.
    pub fn insert(&mut self, key: String, answer: Answer, now_ms: u64) {
        let until = now_ms.saturating_add(self.ttl_ms);
        self.entries.put(key, (answer, until));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
