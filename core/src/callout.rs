//! What the host reports of a call the filter sends through an Envoy
//! cluster (a key-set fetch, a question to the permission backend), and
//! what becomes of a request that waits for one: shared by the
//! coordinators that drive them ([`crate::auth::jwks::fetch`],
//! [`crate::permission::ask`]).

use crate::fasthash::FastMap;

/// What became of a stream whose decision needs a callout's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Park {
    /// Paused: it is decided again when the answer arrives.
    Wait,
    /// Decided too often, or too many requests are paused: refuse it now.
    Refuse,
}

/// A callout's answer, as the host reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `:status` and the body (read only when the status is 200 and the
    /// size is within the limit).
    Answered {
        status: u16,
        body: Option<Vec<u8>>,
        size: usize,
    },
    /// No response: timeout, reset, or a cluster Envoy does not know.
    Lost,
}

/// Streams paused for a callout's answer, by what they wait for (a key
/// set's URL, a permission question), and how often each was decided: the
/// bookkeeping both coordinators share. A stream is decided again at most
/// `max_rounds` times, and at most `max_paused` streams wait at once.
#[derive(Debug, Default)]
pub struct Waiters {
    by_key: FastMap<String, Vec<u32>>,
    rounds: FastMap<u32, u8>,
}

impl Waiters {
    /// `stream` waits for `key`; `Refuse` (and forgotten) when it was
    /// decided too often, or too many already wait.
    pub fn park(&mut self, stream: u32, key: &str, max_rounds: u8, max_paused: usize) -> Park {
        let rounds = self.rounds.get(&stream).copied().unwrap_or(0);
        if rounds >= max_rounds || (rounds == 0 && self.rounds.len() >= max_paused) {
            self.forget(stream);
            return Park::Refuse;
        }
        self.rounds.insert(stream, rounds + 1);
        let list = self.by_key.entry(key.to_string()).or_default();
        if !list.contains(&stream) {
            list.push(stream);
        }
        Park::Wait
    }

    /// The streams waiting for `key`, to decide again (a stream that parks
    /// again counts another round); `None` when none waits.
    pub fn wake(&mut self, key: &str) -> Option<Vec<u32>> {
        self.by_key.remove(key).filter(|ids| !ids.is_empty())
    }

    /// The streams waiting for `key`, to refuse: forgotten for good.
    pub fn release(&mut self, key: &str) -> Option<Vec<u32>> {
        let ids = self.wake(key)?;
        for id in &ids {
            self.rounds.remove(id);
        }
        Some(ids)
    }

    /// What something waits for.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.by_key.keys()
    }

    /// The stream ended, or was answered or resumed: forget it.
    pub fn forget(&mut self, stream: u32) {
        if self.rounds.remove(&stream).is_some() {
            for list in self.by_key.values_mut() {
                list.retain(|id| *id != stream);
            }
            self.by_key.retain(|_, list| !list.is_empty());
        }
    }

    /// Whether a stream is paused here.
    pub fn is_waiting(&self, stream: u32) -> bool {
        self.by_key.values().any(|list| list.contains(&stream))
    }

    /// Streams currently paused.
    pub fn paused(&self) -> usize {
        self.rounds.len()
    }
}
