use super::*;
use crate::auth::jwks::store::{Timing, LEARNT_BURST};
use crate::shared_data::InMemory;

const ED: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}"#;
const USER: &str = "http://b/api/auth/.well-known/jwks.json";

fn src(url: &str) -> Source {
    Source {
        url: url.into(),
        cluster: "c".into(),
        authority: "b".into(),
        path: "/".into(),
    }
}

/// One worker VM: its store and its coordinator.
struct Worker {
    keys: KeyStore,
    coord: Coordinator,
}

fn worker() -> Worker {
    Worker {
        keys: KeyStore::new(
            Timing {
                refresh_ms: 600_000,
                cooldown_ms: 30_000,
                fetch_timeout_ms: 5000,
                retry_after_failure_ms: 1000,
            },
            [src(USER)],
        ),
        coord: Coordinator::default(),
    }
}

fn fetches(cmds: &[Command]) -> Vec<Source> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Fetch { source, .. } => Some(source.clone()),
            _ => None,
        })
        .collect()
}

fn redecided(cmds: &[Command]) -> Vec<u32> {
    cmds.iter()
        .flat_map(|c| match c {
            Command::Redecide(ids) => ids.clone(),
            _ => Vec::new(),
        })
        .collect()
}

fn ok(body: &str) -> Response {
    Response::Answered {
        status: 200,
        body: Some(body.as_bytes().to_vec()),
        size: body.len(),
    }
}

impl Worker {
    /// A request for `url` whose decision needs the set: look it up as the
    /// decision does, then park it.
    fn needs(&mut self, stream: u32, url: &str, now: u64) -> Park {
        let _ = self.keys.lookup(&src(url), now);
        self.coord.park(stream, &src(url))
    }
    fn pump(&mut self, shared: &mut InMemory, now: u64) -> Vec<Command> {
        self.coord.pump(&mut self.keys, shared, now)
    }
    fn tick(&mut self, shared: &mut InMemory, now: u64) -> Vec<Command> {
        self.coord.tick(&mut self.keys, shared, now)
    }
    fn dispatch(&mut self, shared: &mut InMemory, source: Source, token: u32, now: u64) {
        let out = self
            .coord
            .dispatched(&mut self.keys, shared, source, Ok(token), now);
        assert!(out.is_empty());
    }
    fn answer(&mut self, shared: &mut InMemory, token: u32, r: Response, now: u64) -> Vec<Command> {
        self.coord
            .answered(&mut self.keys, shared, token, r, 64 * 1024, now)
    }
}

#[test]
fn a_cold_start_on_two_workers_costs_one_fetch_and_wakes_everyone() {
    let mut shared = InMemory::default();
    let (mut a, mut b) = (worker(), worker());
    assert_eq!(a.needs(1, USER, 0), Park::Wait);
    assert_eq!(a.needs(2, USER, 0), Park::Wait);
    assert_eq!(b.needs(7, USER, 0), Park::Wait);
    let fa = fetches(&a.pump(&mut shared, 0));
    assert_eq!(fa, vec![src(USER)]);
    assert!(
        fetches(&b.pump(&mut shared, 1)).is_empty(),
        "the other worker holds the lease"
    );
    a.dispatch(&mut shared, fa[0].clone(), 42, 1);
    assert!(fetches(&a.tick(&mut shared, 100)).is_empty(), "in flight");
    assert!(fetches(&b.tick(&mut shared, 100)).is_empty(), "leased");
    let out = a.answer(&mut shared, 42, ok(ED), 150);
    assert_eq!(redecided(&out), vec![1, 2]);
    assert!(out.contains(&Command::Count(Counter::FetchSuccess)));
    let out = b.tick(&mut shared, 200);
    assert_eq!(redecided(&out), vec![7], "adopted from shared data");
    assert!(out.contains(&Command::Count(Counter::SharedAdopted)));
    assert!(fetches(&out).is_empty());
    assert!(b.keys.has_set(USER));
}

#[test]
fn a_refresh_in_flight_is_never_dispatched_twice() {
    let mut shared = InMemory::default();
    let mut a = worker();
    a.needs(1, USER, 0);
    let f = fetches(&a.pump(&mut shared, 0));
    a.dispatch(&mut shared, f[0].clone(), 1, 0);
    a.answer(&mut shared, 1, ok(ED), 10);
    let f = fetches(&a.tick(&mut shared, 600_010));
    assert_eq!(f, vec![src(USER)], "due for refresh");
    a.dispatch(&mut shared, f[0].clone(), 2, 600_010);
    // Ticks and new requests (an unknown kid) while the refresh is out.
    for t in (600_100..605_000).step_by(100) {
        let _ = a.keys.unknown_kid(&src(USER), t);
        assert!(fetches(&a.tick(&mut shared, t)).is_empty(), "at {t}");
        assert!(fetches(&a.pump(&mut shared, t)).is_empty(), "at {t}");
    }
}

#[test]
fn a_lease_whose_holder_never_answers_expires() {
    let mut shared = InMemory::default();
    let (mut a, mut b) = (worker(), worker());
    a.needs(1, USER, 0);
    b.needs(2, USER, 0);
    let f = fetches(&a.pump(&mut shared, 0));
    a.dispatch(&mut shared, f[0].clone(), 9, 0);
    assert!(fetches(&b.pump(&mut shared, 5_000)).is_empty());
    assert_eq!(
        fetches(&b.pump(&mut shared, 5_501)),
        vec![src(USER)],
        "after the fetch timeout and margin, another worker takes over"
    );
}

#[test]
fn failures_wake_the_waiters_and_release_the_lease() {
    for response in [
        Response::Answered {
            status: 404,
            body: None,
            size: 2,
        },
        Response::Answered {
            status: 200,
            body: Some(b"<html>".to_vec()),
            size: 6,
        },
        Response::Answered {
            status: 200,
            body: None,
            size: 64 * 1024 + 1,
        },
        Response::Lost,
    ] {
        let mut shared = InMemory::default();
        let (mut a, mut b) = (worker(), worker());
        a.needs(1, USER, 0);
        let f = fetches(&a.pump(&mut shared, 0));
        a.dispatch(&mut shared, f[0].clone(), 5, 0);
        let out = a.answer(&mut shared, 5, response.clone(), 10);
        assert_eq!(redecided(&out), vec![1], "{response:?}");
        assert!(out.contains(&Command::Count(Counter::FetchFailure)));
        assert!(!a.keys.has_set(USER));
        b.needs(2, USER, 20);
        assert_eq!(
            fetches(&b.pump(&mut shared, 20)),
            vec![src(USER)],
            "the lease went with the failure"
        );
    }
    // The host refusing to dispatch is a failure too.
    let mut shared = InMemory::default();
    let mut a = worker();
    a.needs(1, USER, 0);
    let f = fetches(&a.pump(&mut shared, 0));
    let out = a.coord.dispatched(
        &mut a.keys,
        &mut shared,
        f[0].clone(),
        Err("BadArgument".into()),
        0,
    );
    assert_eq!(redecided(&out), vec![1]);
    assert!(matches!(
        a.keys.lookup(&src(USER), 10),
        crate::auth::jwks::store::Lookup::Unavailable
    ));
}

#[test]
fn a_stream_is_decided_again_at_most_max_rounds_times() {
    let mut a = worker();
    for _ in 0..MAX_ROUNDS {
        assert_eq!(a.needs(1, USER, 0), Park::Wait);
    }
    assert_eq!(a.needs(1, USER, 0), Park::Refuse);
    assert!(!a.coord.is_waiting(1));
    assert_eq!(a.coord.paused(), 0);
}

#[test]
fn paused_requests_are_bounded_per_vm() {
    let mut a = worker();
    for id in 0..MAX_PAUSED as u32 {
        assert_eq!(a.needs(id, USER, 0), Park::Wait);
    }
    assert_eq!(a.needs(999_999, USER, 0), Park::Refuse);
    a.coord.forget(3);
    assert_eq!(a.needs(999_999, USER, 0), Park::Wait, "room again");
}

#[test]
fn a_stream_that_ends_while_waiting_is_not_redecided() {
    let mut shared = InMemory::default();
    let mut a = worker();
    a.needs(1, USER, 0);
    a.needs(2, USER, 0);
    a.coord.forget(1);
    let f = fetches(&a.pump(&mut shared, 0));
    a.dispatch(&mut shared, f[0].clone(), 3, 0);
    assert_eq!(redecided(&a.answer(&mut shared, 3, ok(ED), 5)), vec![2]);
    assert_eq!(
        redecided(&a.answer(&mut shared, 3, ok(ED), 6)),
        Vec::<u32>::new(),
        "an answer for an unknown call is ignored"
    );
}

#[test]
fn stale_or_older_shared_sets_are_not_adopted() {
    let mut shared = InMemory::default();
    let mut b = worker();
    shared.set(&shared_key(USER), format!("0\n{ED}").as_bytes(), None);
    b.needs(1, USER, 600_000);
    let out = b.tick(&mut shared, 600_000);
    assert!(redecided(&out).is_empty(), "published too long ago");
    assert_eq!(fetches(&out), vec![src(USER)]);
    let mut shared = InMemory::default();
    shared.set(&shared_key(USER), b"garbage-without-newline", None);
    let mut c = worker();
    c.needs(1, USER, 10);
    assert_eq!(fetches(&c.tick(&mut shared, 10)), vec![src(USER)]);
}

#[test]
fn learnt_sets_over_the_budget_are_refused_at_once_not_fetched() {
    let mut shared = InMemory::default();
    let mut a = worker();
    let plugin = |i: u32| format!("http://b/api/p{i}/.backstage/auth/v1/jwks.json");
    for i in 0..=LEARNT_BURST {
        a.needs(i, &plugin(i), 0);
    }
    let out = a.pump(&mut shared, 0);
    assert_eq!(fetches(&out).len(), LEARNT_BURST as usize);
    assert!(out.contains(&Command::Count(Counter::FetchRationed)));
    assert_eq!(redecided(&out).len(), 1, "the rationed one's waiter");
}

/// Found by the keyfetch fuzz target: a late answer to a fetch the
/// coordinator had given up on ended the retry's fetch in flight, and the
/// next pump fetched a third time. Late answers of lost fetches are ignored.
#[test]
fn a_late_answer_to_a_lost_fetch_does_not_end_the_retry() {
    let mut shared = InMemory::default();
    let mut a = worker();
    a.needs(1, USER, 0);
    let f = fetches(&a.pump(&mut shared, 0));
    a.dispatch(&mut shared, f[0].clone(), 1, 0);
    // Lost: twice the timeout (1 s at least) without an answer.
    let out = a.tick(&mut shared, 10_001);
    assert_eq!(redecided(&out), vec![1]);
    a.needs(2, USER, 11_100);
    let f = fetches(&a.tick(&mut shared, 11_200));
    assert_eq!(f, vec![src(USER)], "retried");
    a.dispatch(&mut shared, f[0].clone(), 2, 11_200);
    assert!(
        a.answer(&mut shared, 1, ok(ED), 11_300).is_empty(),
        "the late answer is ignored"
    );
    assert!(
        fetches(&a.pump(&mut shared, 11_400)).is_empty(),
        "the retry is still in flight"
    );
    assert_eq!(
        redecided(&a.answer(&mut shared, 2, ok(ED), 11_500)),
        vec![2]
    );
}
