//! The store every worker VM of a gateway shares (Envoy's shared data for
//! the Wasm filter, process memory for a native one), as a trait, with the
//! one key namespace every user of it writes under, and an in-memory
//! implementation with the host's compare-and-swap rules.

use std::collections::HashMap;

/// The host's shared key-value store.
pub trait SharedData {
    /// The value under `key` and its compare-and-swap version.
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Stores `value` under `key`; with `cas`, only if the value is still at
    /// that version (0: any). `false` when the host refused.
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}

/// Every key the filter writes starts with this: key sets
/// (`backstage_proxy/jwks/<url>`), fetch leases (`…/lease/<url>`),
/// instance slots (`…/slot/<n>`) and budget counters
/// (`…/ratelimit/<endpoint>/…`).
pub const NAMESPACE: &str = "backstage_proxy/";

/// `backstage_proxy/<kind>/<rest>`.
pub fn key(kind: &str, rest: &str) -> String {
    let mut k = String::with_capacity(NAMESPACE.len() + kind.len() + 1 + rest.len());
    k.push_str(NAMESPACE);
    k.push_str(kind);
    k.push('/');
    k.push_str(rest);
    k
}

/// Envoy's shared data, in memory: a version per key, bumped on each
/// write; a write with a version other than 0 must match it. Envoy's
/// compare-and-swap does not cover a key that does not exist yet (a write
/// with a version to an absent key succeeds), and neither does this.
#[derive(Default, Debug)]
pub struct InMemory {
    map: HashMap<String, (Vec<u8>, u32)>,
}

impl InMemory {
    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl SharedData for InMemory {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.map.get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let current = self.map.get(key).map(|(_, c)| *c).unwrap_or(0);
        if let Some(c) = cas {
            if c != 0 && c != current {
                return false;
            }
        }
        self.map
            .insert(key.to_string(), (value.to_vec(), current.wrapping_add(1)));
        true
    }
}
