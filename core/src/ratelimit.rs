//! Request budgets per endpoint (`gateway.rateLimits`): per principal and
//! in total, over fixed windows, counted in the host's shared data so that
//! every worker VM of a gateway draws on one budget.
//!
//! The bounds, stated and tested (here, and `tests/e2e_ratelimit.rs`):
//! - On one gateway a principal gets at most `requests` per window whatever
//!   the number of workers (counters updated by compare-and-swap; a request
//!   whose update loses the race [`CAS_ATTEMPTS`] times is refused, never
//!   let through uncounted). Like every fixed window, up to twice the
//!   budget can pass around a window's edge.
//! - A request spends budgets only when every budget that applies admits
//!   it: one refused by its own per-principal budget spends nothing of the
//!   endpoint's total, so no caller can lock the others out by going over.
//! - Per-principal counters are exact: each of an endpoint's
//!   [`COUNTERS_PER_ENDPOINT`] counters holds one principal's count for the
//!   current window, with the principal itself, so no principal ever
//!   spends another's budget. A principal looks for its counter at
//!   [`PROBES`] places chosen by a keyed hash (HMAC-SHA-256 under a random
//!   key the filter keeps in shared data, [`SECRET_KEY`], so nobody outside
//!   the gateway can tell where a principal's counter is), and takes the
//!   first one free in this window. When all of them hold other
//!   principals' counts it is refused until the window ends: a full table
//!   can only refuse a newcomer, never let anyone past a budget. State is
//!   bounded by the configuration (per endpoint, 1,024 counters of at most
//!   [`MAX_PRINCIPAL_BYTES`] bytes of principal each), never by how many
//!   principals an identity provider mints.
//! - The same user under two spellings (`user:default/Jane`,
//!   `user:default/jane`) is one principal ([`budget_principal`]), as
//!   entity references compare in Backstage.
//! - Fleets of gateways multiply the budget by their replica count: for
//!   those, Envoy's global rate limit service is the tool
//!   (`docs/rate-limits.md`).

use crate::identity::Principal;
use crate::shared_data::{self, SharedData};

/// Counters per endpoint for per-principal budgets (a power of two): the
/// most principals one endpoint counts in one window.
pub const COUNTERS_PER_ENDPOINT: u64 = 1024;
/// Places a principal's counter may be among them (a power of two, so
/// that an odd step visits distinct counters).
pub const PROBES: u64 = 64;
/// A principal longer than this is refused where a per-principal budget
/// applies (its counter carries it whole).
pub const MAX_PRINCIPAL_BYTES: usize = 1024;
/// Where the key of the hash that places principals' counters is kept
/// (32 random bytes, written by the filter when it loads).
pub const SECRET_KEY: &str = "backstage_proxy/ratelimit/secret";
/// Window lengths Envoy's rate limit service speaks (its units: second,
/// minute, hour, day), for `gateway.rateLimitService`.
pub const SERVICE_WINDOWS: [(u64, &str); 4] = [
    (1, "second"),
    (60, "minute"),
    (3600, "hour"),
    (86_400, "day"),
];
/// Request headers the filter sets for Envoy's rate limit filter
/// (`gateway.rateLimitService`): the endpoint key and the principal. The
/// routes `render` writes turn them into descriptors and remove them
/// before the upstream; a client's own copies never get through.
pub const ENDPOINT_HEADER: &str = "x-backstage-proxy-ratelimit-endpoint";
pub const PRINCIPAL_HEADER: &str = "x-backstage-proxy-ratelimit-principal";
/// Descriptor keys of those values, as the rate limit service's
/// configuration names them.
pub const ENDPOINT_DESCRIPTOR: &str = "backstage_proxy_endpoint";
pub const PRINCIPAL_DESCRIPTOR: &str = "backstage_proxy_principal";
/// `gateway.rateLimitService.domain` unless set.
pub const DEFAULT_DOMAIN: &str = "backstage_proxy";
/// A counter's value when the filter creates it: `<window>:<count>`.
pub const NEW_COUNTER: &[u8] = b"0:0";
/// Compare-and-swap attempts before a request is refused.
pub const CAS_ATTEMPTS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub requests: u64,
    pub window_ms: u64,
}

/// An endpoint's budgets; both `None` where the configuration says it has
/// none of its own (`{}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub per_principal: Option<Budget>,
    pub total: Option<Budget>,
}

impl RateLimit {
    /// No budget of its own.
    pub fn is_empty(&self) -> bool {
        self.per_principal.is_none() && self.total.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Over budget: try again in this many seconds.
    No {
        retry_after_s: u64,
    },
}

fn total_key(scope: &str) -> String {
    shared_data::key("ratelimit", &format!("{scope}/total"))
}

fn principal_key(scope: &str, counter: u64) -> String {
    shared_data::key("ratelimit", &format!("{scope}/p{counter}"))
}

/// The shared-data keys of an endpoint's budgets. Envoy's shared data has
/// no create-if-absent (a write with version 0 is unconditional), so the
/// filter creates every counter when it loads its configuration (where
/// absent) and requests only ever update them by compare-and-swap.
pub fn keys(scope: &str, limit: &RateLimit) -> Vec<String> {
    let mut out = Vec::new();
    if limit.total.is_some() {
        out.push(total_key(scope));
    }
    if limit.per_principal.is_some() {
        out.extend((0..COUNTERS_PER_ENDPOINT).map(|i| principal_key(scope, i)));
    }
    out
}

/// A principal as budgets count it: its kind first, so that no external
/// subject (a static token's `user:default/jane`) ever counts in the
/// budget of the user or plugin it names; then entity references (users,
/// plugins) without regard to case, as Backstage compares them, and an
/// external caller's subject as given.
pub fn budget_principal(p: &Principal) -> String {
    let (kind, name, fold) = match p {
        Principal::User(r) => ("user|", r, true),
        Principal::Plugin(r) => ("plugin|", r, true),
        Principal::External(s) => ("external|", s, false),
    };
    let mut out = String::with_capacity(kind.len() + name.len());
    out.push_str(kind);
    if fold {
        out.extend(name.chars().map(|c| c.to_ascii_lowercase()));
    } else {
        out.push_str(name);
    }
    out
}

/// The key of the hash that places principals' counters, written when
/// absent (`fresh`: 32 random bytes of the caller's) and then read back,
/// so every worker uses the one that was stored.
pub fn ensure_secret(shared: &mut dyn SharedData, fresh: &[u8; 32]) -> bool {
    if read_secret(shared).is_some() {
        return true;
    }
    let _ = shared.set(SECRET_KEY, fresh, None);
    read_secret(shared).is_some()
}

fn read_secret(shared: &dyn SharedData) -> Option<Vec<u8>> {
    shared.get(SECRET_KEY).0.filter(|k| k.len() == 32)
}

/// A budget's window at `now_ms`, and the seconds until the next one.
#[derive(Debug, Clone, Copy)]
struct Window {
    index: u64,
    retry_after_s: u64,
}

impl Budget {
    fn window(&self, now_ms: u64) -> Window {
        let window_ms = self.window_ms.max(1);
        let index = now_ms / window_ms;
        let retry_after_s = ((index + 1) * window_ms - now_ms).div_ceil(1000).max(1);
        Window {
            index,
            retry_after_s,
        }
    }
}

/// A counter as read: its key, its compare-and-swap version and its count
/// in the current window.
#[derive(Debug, Clone)]
struct Read {
    key: String,
    cas: u32,
    count: u64,
}

/// `<window>:<count>` (total) or `<window>:<count>:<principal>` (one
/// principal's): the count in `window`, and whose it is; a count of an
/// older window is spent (the counter is free). `None` when the counter is
/// already in a newer window than the request's (another worker's clock
/// ran ahead at a window's edge): the request is refused, never allowed to
/// overwrite, and so reset, the newer window's count.
fn parse_counter(value: &[u8], window: u64) -> Option<(u64, Option<&str>)> {
    let Ok(text) = std::str::from_utf8(value) else {
        return Some((0, None));
    };
    let mut parts = text.splitn(3, ':');
    let w = parts.next().and_then(|w| w.parse::<u64>().ok());
    let count = parts
        .next()
        .and_then(|c| c.parse::<u64>().ok())
        .unwrap_or(0);
    let owner = parts.next();
    match w {
        Some(w) if w == window => Some((count, owner)),
        Some(w) if w > window => None,
        _ => Some((0, None)),
    }
}

/// The endpoint's total counter now; `None` when it was never created.
fn read_total(shared: &dyn SharedData, scope: &str, window: u64) -> Option<Read> {
    let key = total_key(scope);
    let (value, cas) = shared.get(&key);
    let cas = cas.filter(|c| *c != 0)?;
    let (count, _) = parse_counter(value.as_deref().unwrap_or_default(), window)?;
    Some(Read { key, cas, count })
}

/// Where a principal's count is.
enum Place {
    Found(Read),
    /// Every place holds another principal's count in this window.
    Full,
    /// A counter, or the hash's key, was never created, or a counter is
    /// already in a newer window: refused.
    Missing,
}

/// The principal's counter in this window: the one that holds its count,
/// else the first free one among its places. Within a window a counter
/// once taken stays taken (all of an endpoint's counters share the
/// window), so a principal's own counter never lies after a free one on
/// its way: the search stops at the first free counter.
fn find_counter(shared: &dyn SharedData, scope: &str, principal: &str, window: u64) -> Place {
    let Some(secret) = read_secret(shared) else {
        return Place::Missing;
    };
    let mac = hmac_sha256::HMAC::mac(principal.as_bytes(), &secret);
    let word = |at: usize| {
        let mut w = [0u8; 8];
        for (b, m) in w.iter_mut().zip(mac.iter().skip(at)) {
            *b = *m;
        }
        u64::from_le_bytes(w)
    };
    // Double hashing: an odd step visits every counter of the
    // power-of-two table, and two principals that share a first place
    // part ways after it.
    let (start, step) = (word(0), word(8) | 1);
    for i in 0..PROBES {
        let index = start.wrapping_add(i.wrapping_mul(step)) % COUNTERS_PER_ENDPOINT;
        let key = principal_key(scope, index);
        let (value, cas) = shared.get(&key);
        let Some(cas) = cas.filter(|c| *c != 0) else {
            return Place::Missing;
        };
        match parse_counter(value.as_deref().unwrap_or_default(), window) {
            None => return Place::Missing,
            Some((count, Some(owner))) if owner == principal => {
                return Place::Found(Read { key, cas, count })
            }
            Some((_, Some(_))) => {}
            Some((_, None)) => return Place::Found(Read { key, cas, count: 0 }),
        }
    }
    Place::Full
}

/// Takes one request from the endpoint's budgets (`scope` names the
/// endpoint in shared data; its counters exist: [`keys`]), only when every
/// budget that applies admits it.
pub fn admit(
    shared: &mut dyn SharedData,
    scope: &str,
    principal: Option<&str>,
    limit: &RateLimit,
    now_ms: u64,
) -> Admit {
    admit_all(shared, &[(scope, limit)], principal, now_ms)
}

/// A counter one request is about to spend.
#[derive(Debug, Clone)]
enum Spend<'p> {
    Total {
        read: Read,
        window: Window,
        requests: u64,
        scope: &'p str,
    },
    Principal {
        read: Read,
        window: Window,
        principal: &'p str,
    },
}

/// Why a spend did not happen.
enum Missed {
    /// Another worker wrote first: read everything again.
    Race,
    /// The counter is spent.
    Refused(Window),
}

/// Takes one request from the budgets of every endpoint it counts
/// against (the endpoints under whose targets it lands), only when every
/// one of them admits it: nothing is spent for a refused request.
pub fn admit_all(
    shared: &mut dyn SharedData,
    budgets: &[(&str, &RateLimit)],
    principal: Option<&str>,
    now_ms: u64,
) -> Admit {
    'attempt: for _ in 0..CAS_ATTEMPTS {
        let spends = match read_all(shared, budgets, principal, now_ms) {
            Ok(spends) => spends,
            Err(w) => return refused(w),
        };
        for (done, spend) in spends.iter().enumerate() {
            match spend_one(shared, spend) {
                Ok(()) => {}
                Err(missed) => {
                    for earlier in spends.iter().take(done) {
                        give_back(shared, earlier);
                    }
                    match missed {
                        Missed::Race => continue 'attempt,
                        Missed::Refused(w) => return refused(w),
                    }
                }
            }
        }
        return Admit::Yes;
    }
    Admit::No { retry_after_s: 1 }
}

/// Every counter the request would spend, per-principal ones first; `Err`
/// (the window to wait for) when one of them is spent already.
fn read_all<'p>(
    shared: &dyn SharedData,
    budgets: &[(&'p str, &RateLimit)],
    principal: Option<&'p str>,
    now_ms: u64,
) -> Result<Vec<Spend<'p>>, Window> {
    let mut spends = Vec::with_capacity(budgets.len() * 2);
    for (scope, limit) in budgets {
        if let (Some(b), Some(p)) = (&limit.per_principal, principal) {
            let w = b.window(now_ms);
            if p.len() > MAX_PRINCIPAL_BYTES {
                return Err(w);
            }
            match find_counter(shared, scope, p, w.index) {
                Place::Found(read) if read.count < b.requests => spends.push(Spend::Principal {
                    read,
                    window: w,
                    principal: p,
                }),
                Place::Found(_) | Place::Full | Place::Missing => return Err(w),
            }
        }
    }
    for (scope, limit) in budgets {
        if let Some(b) = &limit.total {
            let w = b.window(now_ms);
            match read_total(shared, scope, w.index) {
                Some(read) if read.count < b.requests => spends.push(Spend::Total {
                    read,
                    window: w,
                    requests: b.requests,
                    scope,
                }),
                _ => return Err(w),
            }
        }
    }
    Ok(spends)
}

fn spend_one(shared: &mut dyn SharedData, spend: &Spend<'_>) -> Result<(), Missed> {
    match spend {
        Spend::Principal {
            read,
            window,
            principal,
        } => {
            let next = format!("{}:{}:{principal}", window.index, read.count + 1);
            if shared.set(&read.key, next.as_bytes(), Some(read.cas)) {
                Ok(())
            } else {
                Err(Missed::Race)
            }
        }
        Spend::Total {
            read,
            window,
            requests,
            scope,
        } => {
            if spend_total(shared, scope, read.clone(), *window, *requests) {
                Ok(())
            } else {
                Err(Missed::Refused(*window))
            }
        }
    }
}

fn refused(w: Window) -> Admit {
    Admit::No {
        retry_after_s: w.retry_after_s,
    }
}
/// One from the total, read again after a lost race: `false` when it is
/// spent (or the race was lost every time).
fn spend_total(
    shared: &mut dyn SharedData,
    scope: &str,
    mut read: Read,
    w: Window,
    requests: u64,
) -> bool {
    for _ in 0..CAS_ATTEMPTS {
        if read.count >= requests {
            return false;
        }
        let next = format!("{}:{}", w.index, read.count + 1);
        if shared.set(&read.key, next.as_bytes(), Some(read.cas)) {
            return true;
        }
        match read_total(shared, scope, w.index) {
            Some(r) => read = r,
            None => return false,
        }
    }
    false
}

/// Returns one request to a counter it was taken from, if the count is
/// still this window's (and, for a principal's, still its own). A
/// give-back that loses every race leaves the budget one short: never one
/// over.
fn give_back(shared: &mut dyn SharedData, spend: &Spend<'_>) {
    let (key, window, principal) = match spend {
        Spend::Total { read, window, .. } => (&read.key, window.index, None),
        Spend::Principal {
            read,
            window,
            principal,
        } => (&read.key, window.index, Some(*principal)),
    };
    for _ in 0..CAS_ATTEMPTS {
        let (value, cas) = shared.get(key);
        let Some(cas) = cas.filter(|c| *c != 0) else {
            return;
        };
        let value = value.unwrap_or_default();
        let Some((count, owner)) = parse_counter(&value, window) else {
            return;
        };
        if owner != principal || count == 0 {
            return;
        }
        let next = match principal {
            Some(p) => format!("{window}:{}:{p}", count - 1),
            None => format!("{window}:{}", count - 1),
        };
        if shared.set(key, next.as_bytes(), Some(cas)) {
            return;
        }
    }
}

/// A descriptor value as a header can carry it: bytes outside visible
/// ASCII, and `%` itself, percent-encoded, so that distinct principals stay
/// distinct and no value can break the header (a token's `sub` is the
/// issuer's to choose).
pub fn descriptor_value(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii_graphic() && b != b'%') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(char::from(b));
        } else {
            use std::fmt::Write;
            let _ = write!(out, "%{b:02X}");
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod window_tests;
