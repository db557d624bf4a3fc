//! Asking the permission backend, as a state machine like the key-set
//! coordinator ([`crate::auth::jwks::fetch`]): the filter reports what
//! happened (a request needs an answer, a call went out or came back, a
//! tick), with the time passed in, and carries out the [`Command`]s it gets
//! back. Nothing here calls the host.
//!
//! - Requests with the same question (the same token, permission and
//!   action) wait for one call: a question is asked once at a time.
//! - A request is decided again when its answer arrives (the answer is in
//!   the [`Decisions`] cache by then), and refused with
//!   `permission_unavailable` when no usable answer came: no answer, a
//!   status other than 200, a body that is not the list asked for, a call
//!   the host would not send, or no word within the timeout.
//! - At most [`MAX_PAUSED`] requests wait per VM, each decided again at
//!   most [`MAX_ROUNDS`] times; past that a request is refused at once.
//!
//! Nothing logged names the token: only the permission and what went wrong.

use log::warn;

use super::cache::Decisions;
use super::{parse_answer, Answer, Permission};
use crate::callout::{Park, Response, Waiters};
use crate::fasthash::{FastMap, FastSet};

/// A paused request is decided again at most this many times (a request
/// can need a permission of its rule, of its endpoint, and of each endpoint
/// it lands under: each may be asked in turn).
pub const MAX_ROUNDS: u8 = 8;

/// Most requests a VM holds paused for permission answers; past it a
/// request whose answer is not at hand is refused at once.
pub const MAX_PAUSED: usize = 1024;

/// The largest answer read; a longer one is not a one-item list.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The permission backend's path below the backend's base URL.
pub const AUTHORIZE_PATH: &str = "/api/permission/authorize";

/// One question: may the holder of this user token have this permission?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// [`question_key`]: what the cache and the waiters are keyed by.
    pub key: String,
    /// The user's bearer token, sent as the call's `Authorization`.
    pub token: String,
    pub permission: Permission,
}

impl Question {
    pub fn new(token: &str, permission: &Permission) -> Question {
        Question {
            key: question_key(token, permission),
            token: token.to_string(),
            permission: permission.clone(),
        }
    }
}

/// The cache key of a question: the permission, its action and the token,
/// unambiguously joined (names and tokens hold no newline).
pub fn question_key(token: &str, p: &Permission) -> String {
    let action = p.action.map_or("-", |a| a.as_str());
    let mut k = String::with_capacity(p.name.len() + action.len() + token.len() + 2);
    k.push_str(&p.name);
    k.push('\n');
    k.push_str(action);
    k.push('\n');
    k.push_str(token);
    k
}

/// What the filter must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// POST `body` to the permission backend with the question's token,
    /// with this timeout, and report the host's answer with
    /// [`Asker::dispatched`].
    Ask {
        question: Question,
        /// The id the body asks under, which the answer must echo.
        id: String,
        body: String,
        timeout_ms: u64,
    },
    /// Decide these paused streams again: their answer arrived.
    Redecide(Vec<u32>),
    /// Refuse these paused streams (`permission_unavailable`): no usable
    /// answer came.
    Refuse(Vec<u32>),
    Count(Counter),
}

/// Outcomes worth a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    /// A call sent.
    Asked,
    Allow,
    Deny,
    /// No usable answer.
    Failed,
}

#[derive(Debug)]
struct Call {
    key: String,
    id: String,
    started_ms: u64,
}

/// Per-VM asking state.
#[derive(Debug, Default)]
pub struct Asker {
    waiters: Waiters,
    /// Calls in flight: the host's call token → the call.
    calls: FastMap<u32, Call>,
    /// Questions asked or about to be: never twice at once.
    asking: FastSet<String>,
    queued: Vec<Question>,
    next_id: u64,
}

impl Asker {
    /// A stream's decision needs the answer to `question`.
    pub fn park(&mut self, stream: u32, question: Question) -> Park {
        let park = self
            .waiters
            .park(stream, &question.key, MAX_ROUNDS, MAX_PAUSED);
        if park == Park::Wait && self.asking.insert(question.key.clone()) {
            self.queued.push(question);
        }
        park
    }

    /// Whether [`Asker::park`] queued a question since the last pump.
    pub fn wants_pump(&self) -> bool {
        !self.queued.is_empty()
    }

    /// The calls to send now.
    pub fn pump(&mut self, timeout_ms: u64) -> Vec<Command> {
        std::mem::take(&mut self.queued)
            .into_iter()
            .map(|question| {
                self.next_id = self.next_id.wrapping_add(1);
                let id = format!("backstage-proxy-{}", self.next_id);
                let body = question.permission.request_body(&id);
                Command::Ask {
                    question,
                    id,
                    body,
                    timeout_ms,
                }
            })
            .collect()
    }

    /// The host's answer to a [`Command::Ask`]: the call's token, or the
    /// refusal to send it; `id` is the one the command carried.
    pub fn dispatched(
        &mut self,
        question: &Question,
        id: String,
        call: Result<u32, String>,
        now_ms: u64,
    ) -> Vec<Command> {
        match call {
            Ok(token) => {
                self.calls.insert(
                    token,
                    Call {
                        key: question.key.clone(),
                        id,
                        started_ms: now_ms,
                    },
                );
                vec![Command::Count(Counter::Asked)]
            }
            Err(why) => {
                warn!(
                    "backstage-proxy-wasm: cannot ask the permission backend about {}: {why}",
                    question.permission.label()
                );
                self.fail(&question.key)
            }
        }
    }

    /// Whether a call with this host token is one of ours.
    pub fn owns(&self, token: u32) -> bool {
        self.calls.contains_key(&token)
    }

    /// A call ended: keep a usable answer and decide its waiters again, or
    /// refuse them.
    pub fn answered(
        &mut self,
        cache: &mut Decisions,
        token: u32,
        response: Response,
        now_ms: u64,
    ) -> Vec<Command> {
        let Some(call) = self.calls.remove(&token) else {
            return Vec::new();
        };
        let answer = match response {
            Response::Answered {
                status: 200,
                body: Some(body),
                size,
            } if size <= MAX_ANSWER_BYTES => parse_answer(&body, &call.id),
            Response::Answered { status: 200, .. } => Err("the answer is too large"),
            Response::Answered { .. } => Err("the answer's status is not 200"),
            Response::Lost => Err("no answer (timeout, reset or unknown cluster)"),
        };
        match answer {
            Ok(answer) => {
                self.asking.remove(&call.key);
                cache.insert(call.key.clone(), answer, now_ms);
                let counter = match answer {
                    Answer::Allow => Counter::Allow,
                    Answer::Deny => Counter::Deny,
                };
                let mut out = vec![Command::Count(counter)];
                if let Some(ids) = self.waiters.wake(&call.key) {
                    out.push(Command::Redecide(ids));
                }
                out
            }
            Err(why) => {
                warn!(
                    "backstage-proxy-wasm: the permission backend gave no usable answer about {}: {why}; refusing (fail closed)",
                    permission_of(&call.key)
                );
                self.fail(&call.key)
            }
        }
    }

    /// Calls the host never answered within `timeout_ms` (and a second's
    /// grace): their waiters are refused.
    pub fn tick(&mut self, now_ms: u64, timeout_ms: u64) -> Vec<Command> {
        let stuck: Vec<u32> = self
            .calls
            .iter()
            .filter(|(_, c)| now_ms.saturating_sub(c.started_ms) > timeout_ms + 1000)
            .map(|(t, _)| *t)
            .collect();
        let mut out = Vec::new();
        for token in stuck {
            if let Some(call) = self.calls.remove(&token) {
                out.extend(self.fail(&call.key));
            }
        }
        out
    }

    /// The stream ended, was answered or resumed: forget it.
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

    fn fail(&mut self, key: &str) -> Vec<Command> {
        self.asking.remove(key);
        let mut out = vec![Command::Count(Counter::Failed)];
        if let Some(ids) = self.waiters.release(key) {
            out.push(Command::Refuse(ids));
        }
        out
    }
}

/// The permission part of a question key (never the token), for logs.
fn permission_of(key: &str) -> String {
    let mut parts = key.splitn(3, '\n');
    let name = parts.next().unwrap_or_default();
    match parts.next() {
        Some("-") | None => name.to_string(),
        Some(action) => format!("{name}:{action}"),
    }
}

#[cfg(test)]
mod tests;
