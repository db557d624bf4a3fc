//! Key-set fetch coordination, as a state machine: the filter reports what
//! happened (a request needs a set, a tick, a fetch was dispatched or
//! answered, a stream ended), with the time passed in, and carries out the
//! [`Command`]s it gets back. Nothing here calls the host; the one piece of
//! host state it reads and writes, the shared data every worker VM of the
//! plugin sees, comes in through the
//! [`SharedData`](crate::shared_data::SharedData) trait.
//!
//! What it owns, each written once:
//! - **waiters**: the streams paused for a key set, by source URL, bounded
//!   per VM ([`MAX_PAUSED`]); a stream is decided again at most
//!   [`MAX_ROUNDS`] times.
//! - **fetches in flight**: the host's call token for each source.
//! - **sharing between workers**: a fetched set is published under
//!   `backstage_proxy/jwks/<url>` as `<fetched_at ms>\n<body>`; a worker
//!   that needs a set adopts a fresh published one instead of fetching.
//! - **leases**: `backstage_proxy/lease/<url>` holds the time until which
//!   one worker owns the fetch of `url` (taken by compare-and-swap), so a
//!   cold start of N workers costs one fetch, not N.
//!
//! When to fetch, what to keep and what to refuse is [`KeyStore`]' business.

use log::{debug, warn};

use crate::callout::Waiters;
pub use crate::callout::{Park, Response};

use super::set::parse_key_set;
use super::store::{KeyStore, Source};
use crate::fasthash::FastMap;
use crate::shared_data::{self, SharedData};

/// A paused request is decided again at most this many times.
pub const MAX_ROUNDS: u8 = 4;

/// Most requests a VM holds paused for key sets; past it, a request whose
/// key set is not here yet is refused at once (tokens are minted by anyone,
/// so what they may make the gateway hold is bounded).
pub const MAX_PAUSED: usize = 1024;

/// What the filter must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Dispatch a GET for this source through its cluster, with this
    /// timeout, and report the result with [`Coordinator::dispatched`].
    Fetch { source: Source, timeout_ms: u64 },
    /// Decide these paused streams again, in their own context: their key
    /// set arrived, failed or was found elsewhere.
    Redecide(Vec<u32>),
    /// Count this (the filter's metrics).
    Count(Counter),
}

/// Outcomes worth a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    FetchSuccess,
    FetchFailure,
    /// A learnt set not fetched: the worker's fetch budget was spent.
    FetchRationed,
    /// A set another worker fetched, taken from shared data.
    SharedAdopted,
}

/// Per-VM coordination state.
#[derive(Debug, Default)]
pub struct Coordinator {
    waiters: Waiters,
    /// Fetches in flight: the host's call token → source.
    calls: FastMap<u32, Source>,
    /// Set by [`Coordinator::park`]: something new waits, pump soon.
    pending_pump: bool,
}

/// Where a fetched key set is published for the other workers.
pub fn shared_key(url: &str) -> String {
    shared_data::key("jwks", url)
}

/// Where the lease on fetching `url` is held.
pub fn lease_key(url: &str) -> String {
    shared_data::key("lease", url)
}

impl Coordinator {
    /// A stream's decision needs `source`'s set.
    pub fn park(&mut self, stream: u32, source: &Source) -> Park {
        let park = self
            .waiters
            .park(stream, &source.url, MAX_ROUNDS, MAX_PAUSED);
        if park == Park::Wait {
            self.pending_pump = true;
        }
        park
    }

    /// The stream ended, or was answered or resumed: forget it.
    pub fn forget(&mut self, stream: u32) {
        self.waiters.forget(stream);
    }

    /// Whether a stream is paused here.
    pub fn is_waiting(&self, stream: u32) -> bool {
        self.waiters.is_waiting(stream)
    }

    /// Requests currently paused.
    pub fn paused(&self) -> usize {
        self.waiters.paused()
    }

    /// Whether [`Coordinator::park`] queued work since the last pump.
    pub fn wants_pump(&self) -> bool {
        self.pending_pump
    }

    /// The periodic look: fetches the host lost, sets other workers
    /// published for our waiters, and every fetch now due.
    pub fn tick(
        &mut self,
        keys: &mut KeyStore,
        shared: &mut dyn SharedData,
        now: u64,
    ) -> Vec<Command> {
        let mut out = Vec::new();
        for source in keys.expire_stuck(now) {
            warn!("backstage-proxy-wasm: key-set fetch lost: {}", source.url);
            // A late answer to it must not end the retry's fetch in flight.
            self.calls.retain(|_, s| s.url != source.url);
            self.wake(&source.url, &mut out);
        }
        let waited: Vec<String> = self.waiters.keys().cloned().collect();
        for url in waited {
            if self.adopt(keys, shared, &url, now) {
                out.push(Command::Count(Counter::SharedAdopted));
                self.wake(&url, &mut out);
            }
        }
        out.extend(self.pump(keys, shared, now));
        out
    }

    /// Starts every fetch that is due, unless a fresher set is in shared
    /// data, another worker holds the lease, or the budget says no.
    pub fn pump(
        &mut self,
        keys: &mut KeyStore,
        shared: &mut dyn SharedData,
        now: u64,
    ) -> Vec<Command> {
        self.pending_pump = false;
        let mut out = Vec::new();
        let timing = keys.timing();
        for source in keys.due(now) {
            if self.adopt(keys, shared, &source.url, now) {
                out.push(Command::Count(Counter::SharedAdopted));
                self.wake(&source.url, &mut out);
                continue;
            }
            if !take_lease(shared, &source.url, now, timing.fetch_timeout_ms + 500) {
                continue;
            }
            if !keys.may_fetch(&source.url, now) {
                release_lease(shared, &source.url);
                out.push(Command::Count(Counter::FetchRationed));
                self.wake(&source.url, &mut out);
                continue;
            }
            keys.start(&source.url, now);
            out.push(Command::Fetch {
                source,
                timeout_ms: timing.fetch_timeout_ms,
            });
        }
        out
    }

    /// The host's answer to a [`Command::Fetch`]: the call's token, or the
    /// refusal to dispatch it (an unknown cluster, say).
    pub fn dispatched(
        &mut self,
        keys: &mut KeyStore,
        shared: &mut dyn SharedData,
        source: Source,
        call: Result<u32, String>,
        now: u64,
    ) -> Vec<Command> {
        match call {
            Ok(token) => {
                self.calls.insert(token, source);
                Vec::new()
            }
            Err(why) => {
                warn!(
                    "backstage-proxy-wasm: cannot fetch key set {} through cluster {}: {why}",
                    source.url, source.cluster
                );
                release_lease(shared, &source.url);
                keys.failed(&source.url, now);
                let mut out = vec![Command::Count(Counter::FetchFailure)];
                self.wake(&source.url, &mut out);
                out
            }
        }
    }

    /// A fetch ended: keep the set if it is usable, else keep the last good
    /// one; publish it for the other workers; wake its waiters.
    pub fn answered(
        &mut self,
        keys: &mut KeyStore,
        shared: &mut dyn SharedData,
        token: u32,
        response: Response,
        max_bytes: usize,
        now: u64,
    ) -> Vec<Command> {
        let Some(source) = self.calls.remove(&token) else {
            return Vec::new();
        };
        let outcome = match response {
            Response::Answered {
                status: 200,
                body: Some(body),
                size,
            } if size <= max_bytes => parse_key_set(&body)
                .map(|set| (set, body))
                .map_err(|e| e.describe().to_string()),
            Response::Answered { status: 200, .. } => {
                Err(format!("response larger than {max_bytes} bytes"))
            }
            Response::Answered { status, .. } => Err(format!("status {status}")),
            Response::Lost => Err("no response (timeout, reset or unknown cluster)".to_string()),
        };
        release_lease(shared, &source.url);
        let mut out = Vec::new();
        match outcome {
            Ok((set, body)) => {
                if set.ignored > 0 {
                    debug!(
                        "backstage-proxy-wasm: key set {}: {} unusable key(s) ignored",
                        source.url, set.ignored
                    );
                }
                keys.succeeded(&source.url, set, now);
                out.push(Command::Count(Counter::FetchSuccess));
                let mut value = now.to_string().into_bytes();
                value.push(b'\n');
                value.extend_from_slice(&body);
                shared.set(&shared_key(&source.url), &value, None);
            }
            Err(why) => {
                warn!("backstage-proxy-wasm: key-set fetch failed for {}: {why}; keeping the last good set, if any", source.url);
                keys.failed(&source.url, now);
                out.push(Command::Count(Counter::FetchFailure));
            }
        }
        self.wake(&source.url, &mut out);
        out
    }

    /// Takes a set another worker published for `url`, if it is newer than
    /// ours and still fresh.
    fn adopt(
        &mut self,
        keys: &mut KeyStore,
        shared: &mut dyn SharedData,
        url: &str,
        now: u64,
    ) -> bool {
        let known = keys.fetched_at(url);
        let max_age = keys.timing().refresh_ms;
        let Some((fetched_at, body)) = read_shared_set(shared, url) else {
            return false;
        };
        if known.is_some_and(|t| fetched_at <= t) || now.saturating_sub(fetched_at) >= max_age {
            return false;
        }
        match parse_key_set(&body) {
            Ok(set) => {
                keys.succeeded(url, set, fetched_at);
                true
            }
            Err(_) => false,
        }
    }

    /// Moves `url`'s waiters into a [`Command::Redecide`]. They park again
    /// (and count another round) if they still need a set.
    fn wake(&mut self, url: &str, out: &mut Vec<Command>) {
        if let Some(ids) = self.waiters.wake(url) {
            out.push(Command::Redecide(ids));
        }
    }
}

/// A published set: `<fetched_at>\n<body>`.
fn read_shared_set(shared: &dyn SharedData, url: &str) -> Option<(u64, Vec<u8>)> {
    let (Some(bytes), _) = shared.get(&shared_key(url)) else {
        return None;
    };
    let split = bytes.iter().position(|&b| b == b'\n')?;
    let fetched_at: u64 = std::str::from_utf8(bytes.get(..split)?)
        .ok()?
        .parse()
        .ok()?;
    Some((fetched_at, bytes.get(split + 1..)?.to_vec()))
}

/// Takes this worker's lease on fetching `url`; `false` when another worker
/// holds an unexpired one (it will publish the set in shared data).
fn take_lease(shared: &mut dyn SharedData, url: &str, now: u64, hold_ms: u64) -> bool {
    let key = lease_key(url);
    let (value, cas) = shared.get(&key);
    let until: u64 = value
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if until > now {
        return false;
    }
    let new = (now + hold_ms).to_string();
    // Without a previous value there is no version to compare; 0 means "any".
    shared.set(&key, new.as_bytes(), Some(cas.unwrap_or(0)))
}

fn release_lease(shared: &mut dyn SharedData, url: &str) {
    shared.set(&lease_key(url), b"0", None);
}

#[cfg(test)]
mod tests;
