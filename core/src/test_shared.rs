//! Test-only: Envoy's shared data in memory, with its compare-and-swap
//! rules, for the code that coordinates worker VMs through it.

use std::collections::HashMap;

use crate::auth::jwks::fetch::SharedData;

/// Envoy's shared data, in memory: a version per key, bumped on each
/// write; a write with a version other than 0 must match it.
#[derive(Default)]
pub(crate) struct Memory {
    map: HashMap<String, (Vec<u8>, u32)>,
}

impl Memory {
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

impl SharedData for Memory {
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
            .insert(key.to_string(), (value.to_vec(), current + 1));
        true
    }
}
