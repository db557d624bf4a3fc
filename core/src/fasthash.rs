//! The hash for the maps a request looks up (verified tokens, key sets,
//! endpoint keys, header allow-lists): foldhash, which takes eight bytes a
//! step where std's SipHash-1-3 costs about five instructions a byte, and
//! the token cache hashes a user token of several hundred bytes on every
//! request.
//!
//! Each map gets its own random seed (foldhash's `RandomState`), so bucket
//! positions differ between maps, VMs and restarts. It is not a keyed PRF
//! like SipHash: acceptable because every map a client can add keys to is
//! bounded (the verified-token cache holds verified tokens only; learnt
//! plugin key sets are capped at `MAX_LEARNT`), so no client can grow a
//! colliding chain beyond a configured size.

use std::collections::{HashMap, HashSet};

pub use foldhash::fast::RandomState as Seeded;

pub type FastMap<K, V> = HashMap<K, V, Seeded>;
pub type FastSet<K> = HashSet<K, Seeded>;

pub fn map<K, V>() -> FastMap<K, V> {
    HashMap::with_hasher(Seeded::default())
}

pub fn set<K>() -> FastSet<K> {
    HashSet::with_hasher(Seeded::default())
}
