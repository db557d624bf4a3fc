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

use backstage_proxy_core::auth::jwks::fetch::{Command, Coordinator, Counter};
use backstage_proxy_core::auth::jwks::store::Source;
use backstage_proxy_core::auth::AuthState;
use backstage_proxy_core::callout::Response;
use backstage_proxy_core::config::Plan;
use backstage_proxy_core::decision;
use backstage_proxy_core::permission::ask::{self, Asker, Question};

use crate::abi::{log, Level, MainThread};
use crate::callout::{
    Answer, Callout, StreamId, WorkerId, EVENT_REDECIDE, EVENT_REFUSE, EVENT_TICK,
};
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

/// What the worker's events mean for the stream whose hook runs them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Wake {
    /// Decide its request again (its key set or answer is in).
    pub redo: bool,
    /// Refuse it: its permission question got no usable answer.
    pub refuse: bool,
}

impl std::ops::BitOrAssign for Wake {
    fn bitor_assign(&mut self, o: Wake) {
        self.redo |= o.redo;
        self.refuse |= o.refuse;
    }
}

pub struct Worker {
    pub auth: AuthState,
    pub coord: Coordinator,
    /// Questions to Backstage's permission backend (`docs/permissions.md`).
    pub asker: Asker,
    next_token: u32,
    last_tick: u64,
    /// Fetch outcomes not yet counted.
    counted: Vec<Counter>,
    /// Permission question outcomes not yet counted.
    asked: Vec<ask::Counter>,
    permission_hits_seen: u64,
    permission_misses_seen: u64,
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
    pub permission_hits: u64,
    pub permission_misses: u64,
    pub asked: Vec<ask::Counter>,
}

impl Worker {
    pub fn new(plan: &Plan) -> Worker {
        Worker {
            auth: AuthState::new(plan),
            coord: Coordinator::default(),
            asker: Asker::default(),
            next_token: 1,
            last_tick: 0,
            counted: Vec::new(),
            asked: Vec::new(),
            hits_seen: 0,
            misses_seen: 0,
            permission_hits_seen: 0,
            permission_misses_seen: 0,
        }
    }

    /// What was counted since the last call.
    pub fn take_counts(&mut self) -> Counts {
        let (hits, misses) = (self.auth.cache_hits, self.auth.cache_misses);
        let p = &self.auth.permissions;
        let (p_hits, p_misses) = (p.hits, p.misses);
        let counts = Counts {
            hits: hits.saturating_sub(self.hits_seen),
            misses: misses.saturating_sub(self.misses_seen),
            fetch: std::mem::take(&mut self.counted),
            permission_hits: p_hits.saturating_sub(self.permission_hits_seen),
            permission_misses: p_misses.saturating_sub(self.permission_misses_seen),
            asked: std::mem::take(&mut self.asked),
        };
        self.hits_seen = hits;
        self.misses_seen = misses;
        self.permission_hits_seen = p_hits;
        self.permission_misses_seen = p_misses;
        counts
    }

    /// At most every [`TICK_MS`] (at once when `force`d: the worker was
    /// rung to look, or the stream it was rung through went away): the
    /// mail, then the coordinator's periodic look. What it means for `me`.
    pub fn tick(&mut self, config: &Config, me: Option<StreamId>, force: bool, now: u64) -> Wake {
        if !force && now.saturating_sub(self.last_tick) < TICK_MS {
            return Wake::default();
        }
        self.last_tick = now;
        config.mailroom.looked(id());
        let mut wake = self.read_mail(config, me, now);
        let cmds = self
            .coord
            .tick(&mut self.auth.keys, &mut ProcessShared, now);
        wake.redo |= self.execute(config, cmds, me, now);
        let cmds = self
            .asker
            .tick(now, config.plan.gateway.permission_timeout_ms);
        wake |= self.execute_asks(config, cmds, me, now);
        wake
    }

    /// The answers the main thread left for this worker.
    pub fn read_mail(&mut self, config: &Config, me: Option<StreamId>, now: u64) -> Wake {
        let max = config.plan.gateway.jwks_max_bytes;
        let mut wake = Wake::default();
        let mut answered = false;
        for (token, answer) in config.mailroom.take_mail(id()) {
            if self.asker.owns(token) {
                let cmds = self.asker.answered(
                    &mut self.auth.permissions,
                    token,
                    response_of(answer),
                    now,
                );
                wake |= self.execute_asks(config, cmds, me, now);
                continue;
            }
            let cmds = self.coord.answered(
                &mut self.auth.keys,
                &mut ProcessShared,
                token,
                response_of(answer),
                max,
                now,
            );
            wake.redo |= self.execute(config, cmds, me, now);
            answered = true;
        }
        if answered {
            // A set this worker fetched is in shared data now: the other
            // workers' paused streams may take it (or fetch themselves,
            // the lease being free again).
            config.mailroom.ring_others::<MainThread>(id(), EVENT_TICK);
        }
        wake
    }

    /// Sends the permission questions now queued (after a stream parked).
    pub fn pump_asks(&mut self, config: &Config, me: Option<StreamId>, now: u64) -> Wake {
        let cmds = self.asker.pump(config.plan.gateway.permission_timeout_ms);
        self.execute_asks(config, cmds, me, now)
    }

    /// Carries out the permission asker's commands, and those their
    /// results bring.
    fn execute_asks(
        &mut self,
        config: &Config,
        cmds: Vec<ask::Command>,
        me: Option<StreamId>,
        now: u64,
    ) -> Wake {
        let mut todo = VecDeque::from(cmds);
        let mut wake = Wake::default();
        while let Some(cmd) = todo.pop_front() {
            match cmd {
                ask::Command::Ask {
                    question,
                    id: ask_id,
                    body,
                    timeout_ms,
                } => {
                    let token = self.next_token;
                    self.next_token = self.next_token.wrapping_add(1);
                    let call = submit_ask(config, token, &question, body, timeout_ms);
                    todo.extend(self.asker.dispatched(&question, ask_id, call, now));
                }
                ask::Command::Redecide(ids) => {
                    wake.redo |= self.ring_all(config, ids, me, EVENT_REDECIDE);
                }
                ask::Command::Refuse(ids) => {
                    wake.refuse |= self.ring_all(config, ids, me, EVENT_REFUSE);
                }
                ask::Command::Count(c) => self.asked.push(c),
            }
        }
        wake
    }

    /// Rings each stream but `me` with `event`; `true` when `me` is among
    /// them. A stream no longer there is forgotten.
    fn ring_all(
        &mut self,
        config: &Config,
        ids: Vec<StreamId>,
        me: Option<StreamId>,
        event: u64,
    ) -> bool {
        let mut mine = false;
        for stream in ids {
            if Some(stream) == me {
                mine = true;
            } else if !config.mailroom.ring::<MainThread>(id(), stream, event) {
                self.coord.forget(stream);
                self.asker.forget(stream);
            }
        }
        mine
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
                    redo |= self.ring_all(config, ids, me, EVENT_REDECIDE);
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

/// A callout's answer as the core's state machines take it (a lost one is
/// logged at debug, with the reason, which names no token).
fn response_of(answer: Answer) -> Response {
    match answer {
        Answer::Answered { status, body, size } => Response::Answered { status, body, size },
        Answer::Lost(why) => {
            log(
                Level::Debug,
                &format!("backstage-proxy-native: callout lost: {why}"),
            );
            Response::Lost
        }
    }
}

/// A question POSTed to the permission backend, with the user's own token
/// (only in the call's `Authorization`, never in a log), handed to the
/// main thread.
fn submit_ask(
    config: &Config,
    token: u32,
    question: &Question,
    body: String,
    timeout_ms: u64,
) -> Result<u32, String> {
    let Some(main) = &config.main else {
        return Err("Envoy gave the module no main-thread scheduler".to_string());
    };
    let Some(target) = decision::permission_target(&config.plan) else {
        return Err("no Backstage backend is configured".to_string());
    };
    let callout = Callout {
        cluster: target.cluster,
        method: "POST".to_string(),
        path: target.path,
        authority: target.authority,
        headers: vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("accept".to_string(), "application/json".to_string()),
            (
                "authorization".to_string(),
                format!("Bearer {}", question.token),
            ),
        ],
        body: Some(body.into_bytes()),
        timeout_ms,
        max_body: ask::MAX_ANSWER_BYTES,
    };
    config.mailroom.submit(id(), token, callout);
    main.commit(0);
    Ok(token)
}
