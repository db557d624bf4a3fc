//! A worker thread's state for one configuration, and its side of key-set
//! fetching: the core's [`Coordinator`] decides when to fetch and whom to
//! wake, as it does for the Wasm filter; this carries out its commands.
//!
//! - A fetch goes to the configuration's mailroom, which Envoy's main
//!   thread sends ([`crate::callout`]); the answer comes back as mail.
//! - Mail is read in the hook of a paused stream whose doorbell the main
//!   thread rang, and at most every [`TICK_MS`] at a request, with the
//!   coordinator's periodic look (background refresh, sets another worker
//!   published, fetches lost).
//! - A stream to decide again is rung with [`EVENT_REDECIDE`]: it decides
//!   in its own hook.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use backstage_proxy_core::auth::jwks::fetch::{Command, Coordinator, Counter, Response};
use backstage_proxy_core::auth::jwks::store::Source;
use backstage_proxy_core::auth::AuthState;
use backstage_proxy_core::config::Plan;

use crate::abi::{log, Level, MainThread};
use crate::callout::{Answer, Callout, StreamId, WorkerId, EVENT_REDECIDE, EVENT_TICK};
use crate::config::Config;
use crate::shared::ProcessShared;

/// How often a worker looks at its key sets (as the Wasm filter's tick).
pub const TICK_MS: u64 = 100;

static NEXT_WORKER: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static WORKER_ID: WorkerId = NEXT_WORKER.fetch_add(1, Ordering::Relaxed);
    static NEXT_STREAM: Cell<StreamId> = const { Cell::new(1) };
}

/// This thread's number.
pub fn id() -> WorkerId {
    WORKER_ID.with(|id| *id)
}

/// A number for a new stream of this thread.
pub fn next_stream() -> StreamId {
    NEXT_STREAM.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1).max(1));
        id
    })
}

pub struct Worker {
    pub auth: AuthState,
    pub coord: Coordinator,
    next_token: u32,
    last_tick: u64,
    /// Fetch outcomes not yet counted.
    counted: Vec<Counter>,
    /// The verification cache's hits and misses already counted.
    hits_seen: u64,
    misses_seen: u64,
}

/// What the worker's state counted and the counters do not show yet.
#[derive(Debug, Default)]
pub struct Counts {
    pub hits: u64,
    pub misses: u64,
    pub fetch: Vec<Counter>,
}

impl Worker {
    pub fn new(plan: &Plan) -> Worker {
        Worker {
            auth: AuthState::new(plan),
            coord: Coordinator::default(),
            next_token: 1,
            last_tick: 0,
            counted: Vec::new(),
            hits_seen: 0,
            misses_seen: 0,
        }
    }

    /// What was counted since the last call.
    pub fn take_counts(&mut self) -> Counts {
        let (hits, misses) = (self.auth.cache_hits, self.auth.cache_misses);
        let counts = Counts {
            hits: hits.saturating_sub(self.hits_seen),
            misses: misses.saturating_sub(self.misses_seen),
            fetch: std::mem::take(&mut self.counted),
        };
        self.hits_seen = hits;
        self.misses_seen = misses;
        counts
    }

    /// At most every [`TICK_MS`] (at once for `me`, whose worker was
    /// rung to look): the mail, then the coordinator's periodic look.
    /// `true` when `me` is to be decided again.
    pub fn tick(&mut self, config: &Config, me: Option<StreamId>, now: u64) -> bool {
        if me.is_none() && now.saturating_sub(self.last_tick) < TICK_MS {
            return false;
        }
        self.last_tick = now;
        let mut redo = self.read_mail(config, me, now);
        let cmds = self
            .coord
            .tick(&mut self.auth.keys, &mut ProcessShared, now);
        redo |= self.execute(config, cmds, me, now);
        redo
    }

    /// The answers the main thread left for this worker.
    pub fn read_mail(&mut self, config: &Config, me: Option<StreamId>, now: u64) -> bool {
        let max = config.plan.gateway.jwks_max_bytes;
        let mut redo = false;
        let mut answered = false;
        for (token, answer) in config.mailroom.take_mail(id()) {
            let response = match answer {
                Answer::Answered { status, body, size } => {
                    Response::Answered { status, body, size }
                }
                Answer::Lost(why) => {
                    log(
                        Level::Debug,
                        &format!("backstage-proxy-native: key-set callout lost: {why}"),
                    );
                    Response::Lost
                }
            };
            let cmds = self.coord.answered(
                &mut self.auth.keys,
                &mut ProcessShared,
                token,
                response,
                max,
                now,
            );
            redo |= self.execute(config, cmds, me, now);
            answered = true;
        }
        if answered {
            // A set this worker fetched is in shared data now: the other
            // workers' paused streams may take it (or fetch themselves,
            // the lease being free again).
            config.mailroom.ring_others::<MainThread>(id(), EVENT_TICK);
        }
        redo
    }

    /// Starts the fetches now due (after a stream parked).
    pub fn pump(&mut self, config: &Config, me: Option<StreamId>, now: u64) -> bool {
        let cmds = self
            .coord
            .pump(&mut self.auth.keys, &mut ProcessShared, now);
        self.execute(config, cmds, me, now)
    }

    /// Carries out the coordinator's commands, and those their results
    /// bring. `true` when `me` is among the streams to decide again (the
    /// caller does it: it is in `me`'s hook already).
    fn execute(
        &mut self,
        config: &Config,
        cmds: Vec<Command>,
        me: Option<StreamId>,
        now: u64,
    ) -> bool {
        let mut todo = VecDeque::from(cmds);
        let mut redo = false;
        while let Some(cmd) = todo.pop_front() {
            match cmd {
                Command::Fetch { source, timeout_ms } => {
                    let token = self.next_token;
                    self.next_token = self.next_token.wrapping_add(1);
                    let call = submit(config, token, &source, timeout_ms);
                    todo.extend(self.coord.dispatched(
                        &mut self.auth.keys,
                        &mut ProcessShared,
                        source,
                        call,
                        now,
                    ));
                }
                Command::Redecide(ids) => {
                    for stream in ids {
                        if Some(stream) == me {
                            redo = true;
                        } else if !config
                            .mailroom
                            .ring::<MainThread>(id(), stream, EVENT_REDECIDE)
                        {
                            self.coord.forget(stream);
                        }
                    }
                }
                Command::Count(c) => self.counted.push(c),
            }
        }
        redo
    }
}

/// The GET of a key set, handed to the main thread; `Err` when there is
/// no main thread to send it (outside Envoy).
fn submit(config: &Config, token: u32, source: &Source, timeout_ms: u64) -> Result<u32, String> {
    let Some(main) = &config.main else {
        return Err("Envoy gave the module no main-thread scheduler".to_string());
    };
    let callout = Callout {
        cluster: source.cluster.clone(),
        method: "GET".to_string(),
        path: source.path.clone(),
        authority: source.authority.clone(),
        headers: vec![("accept".to_string(), "application/json".to_string())],
        body: None,
        timeout_ms,
        max_body: config.plan.gateway.jwks_max_bytes,
    };
    config.mailroom.submit(id(), token, callout);
    main.commit(0);
    Ok(token)
}
