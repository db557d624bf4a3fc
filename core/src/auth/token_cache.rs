//! Verified-token cache, per VM: a repeated token costs a lookup, not a
//! signature check. Bounded (least recently used evicted), entries dropped
//! at the token's `exp` or when a key set they were verified with is
//! replaced. Only valid tokens are cached.

use std::num::NonZeroUsize;

use lru::LruCache;

use crate::fasthash::Seeded;

use super::jwks::store::KeyStore;
use crate::identity::{Ownership, Principal};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub principal: Principal,
    /// Access restrictions of the external-access entry that verified it.
    pub restrictions: crate::config::Restrictions,
    /// A full user token's `ent` claim (the user's ownership references,
    /// its groups among them), lower-cased; `None` for every other token.
    pub ownership: Ownership,
    /// A plugin token acting for a user (`obo`): its principal is the
    /// user, but it holds no token the permission backend accepts.
    pub on_behalf: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    verified: Verified,
    /// Unix seconds; the entry is valid while `exp > now - skew`.
    exp: f64,
    /// (key-set URL, generation) pairs the verification used.
    deps: Vec<(String, u64)>,
}

/// A hit, an insertion and an eviction each cost O(1) (the `lru` crate's
/// linked hash map), whatever `tokenCacheSize` is.
pub struct TokenCache {
    /// `None` when the configured size is 0 (no caching).
    entries: Option<LruCache<String, Entry, Seeded>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            entries: NonZeroUsize::new(capacity)
                .map(|c| LruCache::with_hasher(c, Seeded::default())),
        }
    }

    pub fn get(&mut self, token: &str, now: u64, skew: u64, keys: &KeyStore) -> Option<Verified> {
        let entries = self.entries.as_mut()?;
        // One lookup (one hash of the token) on the hit path.
        let e = entries.get(token)?;
        let valid = e.exp > now as f64 - skew as f64
            && e.deps.iter().all(|(url, gen)| keys.generation(url) == *gen);
        if valid {
            return Some(e.verified.clone());
        }
        entries.pop(token);
        None
    }

    pub fn insert(&mut self, token: &str, verified: Verified, exp: f64, deps: Vec<(String, u64)>) {
        if let Some(entries) = self.entries.as_mut() {
            entries.put(
                token.to_string(),
                Entry {
                    verified,
                    exp,
                    deps,
                },
            );
        }
    }

    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, LruCache::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
