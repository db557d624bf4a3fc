//! Pausing a request: for a key set the worker fetches, or for an answer
//! from Backstage's permission backend. The core's coordinator and asker
//! decide whether it may wait; the stream's scheduler is its doorbell
//! while it does ([`crate::callout`]); what is due is sent at once.

use std::sync::Arc;

use backstage_proxy_core::auth::jwks::fetch::Park;
use backstage_proxy_core::auth::jwks::store::Source;
use backstage_proxy_core::decision::Asking;

use crate::abi::MainThread;
use crate::callout::EVENT_MAIL;
use crate::filter::{Filter, Host};
use crate::worker::{self, Wake};

/// What a request waits for.
pub enum Need<'a> {
    KeySet(&'a Source),
    Permission(Asking),
}

/// What became of it.
pub enum Parked {
    /// Decide it again now (the set or answer is here already).
    Again,
    Paused,
    /// Refuse it: decided too often, too many wait, the call could not
    /// go out, or no way to wake it.
    KeySetUnavailable,
    PermissionUnavailable(Asking),
}

impl Need<'_> {
    fn refused(self) -> Parked {
        match self {
            Need::KeySet(_) => Parked::KeySetUnavailable,
            Need::Permission(asking) => Parked::PermissionUnavailable(asking),
        }
    }
}

/// Parks the stream for what it needs and starts what is due.
pub fn pause(f: &mut Filter, host: &mut impl Host, need: Need<'_>, now: u64) -> Parked {
    let config = Arc::clone(&f.config);
    let (id, worker) = (f.id, worker::id());
    let park = crate::config::with_worker(&config, |w| match &need {
        Need::KeySet(source) => w.coord.park(id, source),
        Need::Permission(asking) => w.asker.park(id, asking.question.clone()),
    });
    if park != Some(Park::Wait) {
        return need.refused();
    }
    if !config.mailroom.is_registered(worker, id) {
        let Some(bell) = host.scheduler() else {
            crate::filter::unpause(f);
            return need.refused();
        };
        config.mailroom.register(worker, id, bell);
    }
    f.paused = true;
    let wake = crate::config::with_worker(&config, |w| {
        let mut wake = Wake {
            redo: w.pump(&config, Some(id), now),
            refuse: false,
        };
        wake |= w.pump_asks(&config, Some(id), now);
        wake
    })
    .unwrap_or(Wake {
        redo: false,
        refuse: true,
    });
    if let Need::Permission(asking) = need {
        if wake.refuse {
            return Parked::PermissionUnavailable(asking);
        }
        f.asking = Some(asking);
    }
    if wake.redo {
        return Parked::Again;
    }
    // Mail that came while no stream of this worker was paused.
    if config.mailroom.has_mail(worker) {
        config.mailroom.ring::<MainThread>(worker, id, EVENT_MAIL);
    }
    Parked::Paused
}
