//! A small number for each live plugin instance (one per worker VM and
//! configuration), claimed in the shared data all of them see, so that
//! per-instance names (the memory gauge, the wake-up queue) are reused
//! instead of growing with every configuration push: Envoy never forgets a
//! stat name, and a gateway configured often would otherwise define new
//! ones forever.
//!
//! A slot is leased: its owner renews it from its ticks and releases it
//! when it goes away; an owner that dies without releasing it loses it
//! when the lease runs out. Envoy's compare-and-swap does not cover a key
//! that does not exist yet, so two instances starting at once may both
//! write the same free slot; the later write wins, and the other finds out
//! at its next renewal and claims another.

use crate::shared_data::{self, SharedData};

/// Slots there are; past them an instance gets no slot (and its caller
/// falls back to a name of its own).
pub const SLOTS: u32 = 64;
/// How long a claim lasts without renewal.
pub const LEASE_MS: u64 = 10_000;

fn key(index: u32) -> String {
    shared_data::key("slot", &index.to_string())
}

/// `<owner>:<until ms>`.
fn parse(value: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(value).ok()?;
    let (owner, until) = text.split_once(':')?;
    Some((owner.parse().ok()?, until.parse().ok()?))
}

/// A claimed slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub index: u32,
    owner: u64,
}

/// Claims the lowest free slot for `owner` (a random number of the
/// instance's own, not 0).
pub fn claim(shared: &mut dyn SharedData, owner: u64, now: u64) -> Option<Slot> {
    (0..SLOTS).find_map(|index| {
        let (value, cas) = shared.get(&key(index));
        let free = value
            .as_deref()
            .and_then(parse)
            .is_none_or(|(_, until)| until <= now);
        let lease = format!("{owner}:{}", now + LEASE_MS);
        let slot = Slot { index, owner };
        (free
            && shared.set(&key(index), lease.as_bytes(), Some(cas.unwrap_or(0)))
            && slot.held(shared))
        .then_some(slot)
    })
}

impl Slot {
    fn held(&self, shared: &dyn SharedData) -> bool {
        let (value, _) = shared.get(&key(self.index));
        value
            .as_deref()
            .and_then(parse)
            .is_some_and(|(owner, _)| owner == self.owner)
    }

    /// Extends the lease; `false` when another instance holds the slot now.
    pub fn renew(&self, shared: &mut dyn SharedData, now: u64) -> bool {
        let (value, cas) = shared.get(&key(self.index));
        let ours = value
            .as_deref()
            .and_then(parse)
            .is_some_and(|(owner, _)| owner == self.owner);
        let lease = format!("{}:{}", self.owner, now + LEASE_MS);
        ours && shared.set(&key(self.index), lease.as_bytes(), cas) && self.held(shared)
    }

    /// Frees the slot, if it is still ours.
    pub fn release(&self, shared: &mut dyn SharedData) {
        let (value, cas) = shared.get(&key(self.index));
        if value
            .as_deref()
            .and_then(parse)
            .is_some_and(|(owner, _)| owner == self.owner)
        {
            shared.set(&key(self.index), b"0:0", cas);
        }
    }
}

#[cfg(test)]
mod tests;
