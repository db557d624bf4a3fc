//! HTTP callouts that outlive a stream, made from Envoy's main thread.
//!
//! A key set is fetched for a worker, not for the one request that found
//! it missing: the request may go away (the client hangs up) while the
//! fetch is in flight, and the background refresh has no request at all.
//! So a worker hands the callout to the configuration's [`Mailroom`];
//! Envoy's main thread sends it through the cluster it names (the ABI's
//! configuration-level callout, whose answer comes back to the main
//! thread), and the answer is put in the worker's mailbox. The worker
//! reads its mail in the hook of one of its paused streams, which the
//! main thread wakes through that stream's scheduler (its *doorbell*), or
//! else at its next request.
//!
//! The callout itself is generic (method, path, authority, headers, an
//! optional body, a timeout → status and body), for every callout the
//! module makes. Nothing here calls Envoy: the main thread's sending and
//! the ringing go through [`Post`].

use std::sync::{Mutex, MutexGuard, PoisonError};

use backstage_proxy_core::auth::jwks::fetch;
use backstage_proxy_core::fasthash::{self, FastMap, FastSet};
use backstage_proxy_core::permission::ask;

/// One HTTP request the module makes. Its `Debug` names the headers but
/// prints none of their values (a permission question carries the user's
/// token), and only the body's size.
#[derive(Clone, PartialEq, Eq)]
pub struct Callout {
    /// The Envoy cluster it goes through.
    pub cluster: String,
    pub method: String,
    /// Path and query.
    pub path: String,
    pub authority: String,
    /// Further request headers.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u64,
    /// The body is kept only up to this size (the answer's `size` says
    /// how large it was).
    pub max_body: usize,
}

impl std::fmt::Debug for Callout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Callout")
            .field("cluster", &self.cluster)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("authority", &self.authority)
            .field("headers (values redacted)", &names)
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .field("timeout_ms", &self.timeout_ms)
            .field("max_body", &self.max_body)
            .finish()
    }
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A response: its status, its body when within the callout's
    /// `max_body`, and the body's size.
    Answered {
        status: u16,
        body: Option<Vec<u8>>,
        size: usize,
    },
    /// No response: not sent (an unknown cluster, say), timed out, reset,
    /// or larger than Envoy's buffer.
    Lost(String),
}

/// What Envoy handed the callout-done hook, read: the result code
/// (`http_callout_result`: 0 success, 1 reset or timeout, 2 larger than
/// Envoy's buffer), the response's `:status` (the first; one that is not
/// three digits from 100 to 999 is no response) and its body, kept only
/// within `max_body`. The glue's only parsing of what Envoy hands it.
pub fn answer_from(
    result: i32,
    headers: &[(&[u8], &[u8])],
    chunks: &[&[u8]],
    max_body: usize,
) -> Answer {
    match result {
        0 => {}
        1 => return Answer::Lost("reset or timed out".to_string()),
        2 => return Answer::Lost("response larger than Envoy's buffer".to_string()),
        n => return Answer::Lost(format!("callout failed ({n})")),
    }
    let status = headers
        .iter()
        .find(|(k, _)| *k == b":status")
        // three digits (RFC 9110 §15), no sign, no padding
        .filter(|(_, v)| v.len() == 3 && v.iter().all(u8::is_ascii_digit))
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<u16>().ok())
        .filter(|s| (100..=999).contains(s));
    let Some(status) = status else {
        return Answer::Lost("no valid :status in the response".to_string());
    };
    let size = chunks.iter().fold(0usize, |n, c| n.saturating_add(c.len()));
    let body = (size <= max_body).then(|| chunks.concat());
    Answer::Answered { status, body, size }
}

/// A worker thread, as the mailroom knows it.
pub type WorkerId = u64;

/// A stream, as its worker numbers it.
pub type StreamId = u32;

/// What the mailroom needs of Envoy.
pub trait Post {
    /// A stream's doorbell: rings it (Envoy then calls the stream's
    /// scheduled hook on its worker), from any thread.
    type Bell: Send;
    /// Sends a callout (main thread only): Envoy's id for it.
    fn send(&mut self, callout: &Callout) -> Result<u64, String>;
    /// Rings a doorbell.
    fn ring(bell: &Self::Bell, event: u64);
}

/// The event a doorbell is rung with: read your mail.
pub const EVENT_MAIL: u64 = 1;
/// The event a doorbell is rung with: decide your request again.
pub const EVENT_REDECIDE: u64 = 2;
/// The event a doorbell is rung with: your worker should look at its key
/// sets now (another worker published one).
pub const EVENT_TICK: u64 = 3;
/// The event a doorbell is rung with: your permission question got no
/// usable answer: refuse the request.
pub const EVENT_REFUSE: u64 = 4;

struct Job {
    worker: WorkerId,
    /// The worker's own reference for it.
    token: u32,
    callout: Callout,
}

struct Inner<B> {
    /// Waiting for the main thread.
    queue: Vec<Job>,
    /// Sent, by Envoy's callout id.
    flying: FastMap<u64, Job>,
    mail: FastMap<WorkerId, Vec<(u32, Answer)>>,
    /// Workers rung to look at their key sets that have not yet.
    look: FastSet<WorkerId>,
    doorbells: FastMap<WorkerId, Vec<(StreamId, B)>>,
}

/// Callouts on their way and answers not yet read, for one configuration.
pub struct Mailroom<B> {
    inner: Mutex<Inner<B>>,
}

impl<B> Default for Mailroom<B> {
    fn default() -> Self {
        Mailroom {
            inner: Mutex::new(Inner {
                queue: Vec::new(),
                flying: fasthash::map(),
                mail: fasthash::map(),
                look: fasthash::set(),
                doorbells: fasthash::map(),
            }),
        }
    }
}

/// Most answers a worker's mailbox holds; past it the oldest go (their
/// fetches are then expired by the worker as lost ones are). Each answer
/// is one callout of the worker that it has not read yet, and the core
/// bounds those: a question per paused stream (at most
/// [`ask::MAX_PAUSED`]), a fetch per key source, and the worker reads its
/// mail at least at every look. The bound is well above that sum, so an
/// answer to a callout in flight is never dropped; it only stops a
/// worker that never reads its mail from growing it without end.
const MAX_MAIL: usize = 4 * (ask::MAX_PAUSED + fetch::MAX_PAUSED);

const _: () = assert!(MAX_MAIL > ask::MAX_PAUSED + fetch::MAX_PAUSED + 256);

impl<B> Mailroom<B> {
    /// The state, also after a panic elsewhere held the lock: every change
    /// is one push or remove, which a panic cannot leave half done.
    fn lock(&self) -> MutexGuard<'_, Inner<B>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A worker's callout, queued for the main thread (the caller then
    /// asks the main thread to [`Mailroom::send_queued`]).
    pub fn submit(&self, worker: WorkerId, token: u32, callout: Callout) {
        self.lock().queue.push(Job {
            worker,
            token,
            callout,
        });
    }

    /// Whether `worker` has answers to read.
    pub fn has_mail(&self, worker: WorkerId) -> bool {
        self.lock().mail.get(&worker).is_some_and(|m| !m.is_empty())
    }

    /// Whether `worker` has answers to read or was rung to look at its key
    /// sets, and has not yet.
    pub fn has_pending(&self, worker: WorkerId) -> bool {
        let inner = self.lock();
        inner.look.contains(&worker) || inner.mail.get(&worker).is_some_and(|m| !m.is_empty())
    }

    /// `worker` looks at its key sets now.
    pub fn looked(&self, worker: WorkerId) {
        self.lock().look.remove(&worker);
    }

    /// The answers for `worker`, oldest first, as `(token, answer)`.
    pub fn take_mail(&self, worker: WorkerId) -> Vec<(u32, Answer)> {
        self.lock().mail.remove(&worker).unwrap_or_default()
    }

    /// A paused stream's doorbell, kept until [`Mailroom::unregister`].
    pub fn register(&self, worker: WorkerId, stream: StreamId, bell: B) {
        let mut inner = self.lock();
        let list = inner.doorbells.entry(worker).or_default();
        list.retain(|(s, _)| *s != stream);
        list.push((stream, bell));
    }

    /// Whether `stream` has a doorbell here.
    pub fn is_registered(&self, worker: WorkerId, stream: StreamId) -> bool {
        self.lock()
            .doorbells
            .get(&worker)
            .is_some_and(|l| l.iter().any(|(s, _)| *s == stream))
    }

    /// The stream resumed, was answered or went away: its doorbell goes
    /// (dropped under the lock, so no other thread rings it meanwhile).
    pub fn unregister(&self, worker: WorkerId, stream: StreamId) {
        let mut inner = self.lock();
        if let Some(list) = inner.doorbells.get_mut(&worker) {
            list.retain(|(s, _)| *s != stream);
            if list.is_empty() {
                inner.doorbells.remove(&worker);
            }
        }
    }
}

impl<B: Send> Mailroom<B> {
    /// Rings `stream`'s doorbell with `event`; `false` if it has none.
    pub fn ring<P: Post<Bell = B>>(&self, worker: WorkerId, stream: StreamId, event: u64) -> bool {
        let inner = self.lock();
        let bell = inner
            .doorbells
            .get(&worker)
            .and_then(|l| l.iter().find(|(s, _)| *s == stream));
        match bell {
            Some((_, b)) => {
                P::ring(b, event);
                true
            }
            None => false,
        }
    }

    /// Asks every worker but `worker` to look at its key sets: one paused
    /// stream of each is rung with `event`, and the worker is marked so
    /// that, should that stream go before its hook runs, the worker looks
    /// when it goes ([`Mailroom::has_pending`]).
    pub fn ring_others<P: Post<Bell = B>>(&self, worker: WorkerId, event: u64) {
        let mut inner = self.lock();
        let mut rung = Vec::new();
        for (w, list) in &inner.doorbells {
            if *w != worker {
                if let Some((_, bell)) = list.first() {
                    P::ring(bell, event);
                    rung.push(*w);
                }
            }
        }
        inner.look.extend(rung);
    }

    /// Main thread: sends every queued callout, one at a time. One that
    /// cannot be sent is answered [`Answer::Lost`] at once; so is one whose
    /// sending panicked (the rest stay queued for the next call).
    pub fn send_queued<P: Post<Bell = B>>(&self, post: &mut P) {
        loop {
            let job = {
                let mut inner = self.lock();
                if inner.queue.is_empty() {
                    return;
                }
                inner.queue.remove(0)
            };
            let mut sending = Sending {
                room: self,
                job: Some(job),
                lost: P::ring,
            };
            let Some(job) = sending.job.as_ref() else {
                return;
            };
            let sent = post.send(&job.callout);
            let Some(job) = sending.job.take() else {
                return;
            };
            match sent {
                Ok(id) => {
                    self.lock().flying.insert(id, job);
                }
                Err(why) => self.deliver::<P>(job.worker, job.token, Answer::Lost(why)),
            }
        }
    }

    /// Whether callouts wait for the main thread.
    pub fn has_queued(&self) -> bool {
        !self.lock().queue.is_empty()
    }

    /// Main thread: Envoy answered callout `id`.
    /// `answer` reads it (what it keeps of the body depends on the
    /// callout's `max_body`).
    pub fn answered<P: Post<Bell = B>>(&self, id: u64, answer: impl FnOnce(&Callout) -> Answer) {
        let job = self.lock().flying.remove(&id);
        if let Some(job) = job {
            let answer = answer(&job.callout);
            self.deliver::<P>(job.worker, job.token, answer);
        }
    }

    /// Puts an answer in the worker's mailbox and rings one of its paused
    /// streams, if it has any (else the worker reads it at its next
    /// request; should that stream go before its hook runs, the worker
    /// reads it when it goes).
    fn deliver<P: Post<Bell = B>>(&self, worker: WorkerId, token: u32, answer: Answer) {
        deliver_with(self, worker, token, answer, P::ring);
    }
}

fn deliver_with<B>(
    room: &Mailroom<B>,
    worker: WorkerId,
    token: u32,
    answer: Answer,
    ring: fn(&B, u64),
) {
    let mut inner = room.lock();
    let mail = inner.mail.entry(worker).or_default();
    if mail.len() >= MAX_MAIL {
        mail.remove(0);
    }
    mail.push((token, answer));
    if let Some((_, bell)) = inner.doorbells.get(&worker).and_then(|l| l.first()) {
        ring(bell, EVENT_MAIL);
    }
}

/// A job being sent: if sending it panics, it is answered lost as the
/// panic unwinds, so its worker does not wait for it until it expires.
struct Sending<'a, B> {
    room: &'a Mailroom<B>,
    job: Option<Job>,
    lost: fn(&B, u64),
}

impl<B> Drop for Sending<'_, B> {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            let why = Answer::Lost("sending it failed".to_string());
            deliver_with(self.room, job.worker, job.token, why, self.lost);
        }
    }
}

#[cfg(test)]
mod tests;
