//! Verified-token cache, per VM: a repeated token costs a lookup, not a
//! signature check. Bounded (least recently used evicted), entries dropped
//! at the token's `exp` or when a key set they were verified with is
//! replaced. Only valid tokens are cached.

use std::num::NonZeroUsize;

use lru::LruCache;

use crate::fasthash::Seeded;

use super::jwks::store::KeyStore;
use super::Principal;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub principal: Principal,
    /// Access restrictions of the external-access entry that verified it.
    pub restrictions: Option<Vec<String>>,
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
mod tests {
    use super::*;
    use crate::auth::jwks::set::parse_key_set;
    use crate::auth::jwks::store::{Source, Timing};

    const ED: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}"#;

    fn v(s: &str) -> Verified {
        Verified {
            principal: Principal::User(s.into()),
            restrictions: None,
        }
    }

    fn keys() -> KeyStore {
        KeyStore::new(
            Timing {
                refresh_ms: 1000,
                cooldown_ms: 1000,
                fetch_timeout_ms: 1000,
                retry_after_failure_ms: 1000,
            },
            [],
        )
    }

    #[test]
    fn hit_until_exp() {
        let k = keys();
        let mut c = TokenCache::new(4);
        c.insert("t", v("a"), 100.0, vec![]);
        assert_eq!(c.get("t", 99, 0, &k), Some(v("a")));
        assert_eq!(c.get("t", 100, 0, &k), None, "exp = now is expired");
        assert!(c.is_empty(), "expired entries are dropped");
        c.insert("t", v("a"), 100.0, vec![]);
        assert_eq!(c.get("t", 104, 5, &k), Some(v("a")));
    }

    #[test]
    fn bounded_lru() {
        let k = keys();
        let mut c = TokenCache::new(2);
        c.insert("a", v("a"), 1e12, vec![]);
        c.insert("b", v("b"), 1e12, vec![]);
        assert!(c.get("a", 0, 0, &k).is_some());
        c.insert("c", v("c"), 1e12, vec![]);
        assert_eq!(c.len(), 2);
        assert!(
            c.get("b", 0, 0, &k).is_none(),
            "least recently used evicted"
        );
        assert!(c.get("a", 0, 0, &k).is_some() && c.get("c", 0, 0, &k).is_some());
        let mut off = TokenCache::new(0);
        off.insert("a", v("a"), 1e12, vec![]);
        assert!(off.is_empty());
    }

    #[test]
    fn replaced_key_set_invalidates() {
        let mut k = keys();
        let s = Source {
            url: "u".into(),
            cluster: "c".into(),
            authority: "h".into(),
            path: "/".into(),
        };
        k.lookup(&s, 0);
        k.start("u", 0);
        k.succeeded("u", parse_key_set(ED.as_bytes()).unwrap(), 0);
        let mut c = TokenCache::new(4);
        c.insert("t", v("a"), 1e12, vec![("u".into(), k.generation("u"))]);
        assert!(c.get("t", 0, 0, &k).is_some());
        k.start("u", 1);
        k.succeeded("u", parse_key_set(ED.as_bytes()).unwrap(), 1);
        assert!(c.get("t", 0, 0, &k).is_none());
    }
}
