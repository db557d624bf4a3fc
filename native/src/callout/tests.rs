//! The mailroom: callouts queued by workers, sent by the main thread,
//! answers delivered to the right worker, which is woken through one of
//! its paused streams.

use std::sync::Mutex;

use super::*;

/// A fake Envoy: what was sent and rung.
#[derive(Default)]
struct Fake {
    sent: Vec<Callout>,
    refuse: bool,
}

static RUNG: Mutex<Vec<(u32, u64)>> = Mutex::new(Vec::new());

impl Post for Fake {
    type Bell = u32;
    fn send(&mut self, c: &Callout) -> Result<u64, String> {
        if self.refuse {
            return Err("no such cluster".into());
        }
        self.sent.push(c.clone());
        Ok(100 + self.sent.len() as u64)
    }
    fn ring(bell: &u32, event: u64) {
        RUNG.lock().unwrap().push((*bell, event));
    }
}

fn callout(path: &str) -> Callout {
    Callout {
        cluster: "backstage".into(),
        method: "GET".into(),
        path: path.into(),
        authority: "backstage.internal".into(),
        headers: vec![],
        body: None,
        timeout_ms: 500,
        max_body: 10,
    }
}

fn ok(status: u16) -> Answer {
    Answer::Answered {
        status,
        body: Some(b"{}".to_vec()),
        size: 2,
    }
}

// One test: the bells are a process-wide list.
#[test]
fn answers_reach_the_worker_that_asked_and_wake_one_of_its_paused_streams() {
    let room: Mailroom<u32> = Mailroom::default();
    room.register(1, 7, 700);
    room.register(1, 8, 800);
    room.register(2, 9, 900);
    room.submit(1, 11, callout("/a"));
    room.submit(2, 22, callout("/b"));
    let mut fake = Fake::default();
    room.send_queued(&mut fake);
    assert_eq!(fake.sent.len(), 2);
    // sending again sends nothing twice
    room.send_queued(&mut fake);
    assert_eq!(fake.sent.len(), 2);

    room.answered::<Fake>(102, |c| {
        assert_eq!(c.path, "/b");
        ok(200)
    });
    assert_eq!(*RUNG.lock().unwrap(), vec![(900, EVENT_MAIL)]);
    assert!(!room.has_mail(1));
    assert_eq!(room.take_mail(2), vec![(22, ok(200))]);
    assert!(room.take_mail(2).is_empty());

    // an answer to an unknown or already answered callout is dropped
    room.answered::<Fake>(102, |_| ok(500));
    room.answered::<Fake>(999, |_| ok(500));
    assert!(!room.has_mail(2));

    // a worker whose paused streams are gone keeps its mail for later
    room.unregister(1, 7);
    room.unregister(1, 8);
    assert!(!room.is_registered(1, 7));
    RUNG.lock().unwrap().clear();
    room.answered::<Fake>(101, |_| ok(404));
    assert!(RUNG.lock().unwrap().is_empty());
    assert_eq!(room.take_mail(1), vec![(11, ok(404))]);

    // a callout Envoy will not send is answered lost at once, and rings
    room.register(1, 7, 700);
    room.submit(1, 33, callout("/c"));
    room.send_queued(&mut Fake {
        refuse: true,
        ..Fake::default()
    });
    assert_eq!(*RUNG.lock().unwrap(), vec![(700, EVENT_MAIL)]);
    assert_eq!(
        room.take_mail(1),
        vec![(33, Answer::Lost("no such cluster".into()))]
    );

    // ringing a stream: only one that is registered
    assert!(room.ring::<Fake>(1, 7, EVENT_REDECIDE));
    assert!(!room.ring::<Fake>(1, 8, EVENT_REDECIDE));

    // the mailbox is bounded: the oldest answers go
    room.unregister(1, 7);
    for i in 0..(MAX_MAIL as u32 + 5) {
        room.submit(1, i, callout("/d"));
    }
    let mut fake = Fake::default();
    room.send_queued(&mut fake);
    for id in 101..=(100 + fake.sent.len() as u64) {
        room.answered::<Fake>(id, |_| ok(200));
    }
    let mail = room.take_mail(1);
    assert_eq!(mail.len(), MAX_MAIL);
    assert_eq!(mail[0].0, 5);
}

#[test]
fn answers_are_read_from_what_envoy_hands_over_and_bad_ones_are_lost() {
    let ok: &[(&[u8], &[u8])] = &[(b":status", b"200"), (b"content-type", b"x")];
    assert_eq!(
        answer_from(0, ok, &[b"ab", b"", b"cd"], 4),
        Answer::Answered {
            status: 200,
            body: Some(b"abcd".to_vec()),
            size: 4
        }
    );
    // one byte over: the size is known, the body is not kept
    assert_eq!(
        answer_from(0, ok, &[b"ab", b"cde"], 4),
        Answer::Answered {
            status: 200,
            body: None,
            size: 5
        }
    );
    // the first :status counts
    let two: &[(&[u8], &[u8])] = &[(b":status", b"404"), (b":status", b"200")];
    assert!(matches!(
        answer_from(0, two, &[], 10),
        Answer::Answered { status: 404, .. }
    ));
    for bad in [
        &b""[..],
        b"2OO",
        b"-200",
        b"+200",
        b" 200",
        b"99",
        b"1000",
        b"65536",
        b"0200",
        b"099",
        b"\xff\xfe",
    ] {
        let h: &[(&[u8], &[u8])] = &[(b":status", bad)];
        assert!(
            matches!(answer_from(0, h, &[b"x"], 10), Answer::Lost(_)),
            "{bad:?}"
        );
    }
    assert!(matches!(answer_from(0, &[], &[], 10), Answer::Lost(_)));
    for code in [1, 2, 3, -1] {
        assert!(matches!(
            answer_from(code, ok, &[b"x"], 10),
            Answer::Lost(_)
        ));
    }
}

#[test]
fn a_callouts_debug_names_its_headers_but_never_their_values() {
    let mut c = callout("/api/permission/authorize");
    c.headers = vec![(
        "authorization".into(),
        "Bearer eyJhbGciOi.secret.sig".into(),
    )];
    c.body = Some(b"{\"items\":[]}".to_vec());
    let shown = format!("{c:?}");
    assert!(shown.contains("authorization"), "{shown}");
    assert!(
        !shown.contains("Bearer") && !shown.contains("eyJ"),
        "{shown}"
    );
    assert!(!shown.contains("items"), "{shown}");
}

/// A fake Envoy whose sending panics for one path.
struct Panicky;

// Shared by the tests below (bells 5xx and 8xx/9xx apart).
static PANICKY_RUNG: Mutex<Vec<(u32, u64)>> = Mutex::new(Vec::new());

impl Post for Panicky {
    type Bell = u32;
    #[allow(clippy::panic)]
    fn send(&mut self, c: &Callout) -> Result<u64, String> {
        if c.path == "/boom" {
            panic!("sending failed");
        }
        Ok(7)
    }
    fn ring(bell: &u32, event: u64) {
        PANICKY_RUNG.lock().unwrap().push((*bell, event));
    }
}

#[test]
fn a_callout_whose_sending_panics_is_answered_lost_and_the_rest_stay_queued() {
    let room: Mailroom<u32> = Mailroom::default();
    room.register(5, 1, 501);
    room.submit(5, 1, callout("/boom"));
    room.submit(5, 2, callout("/next"));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        room.send_queued(&mut Panicky)
    }));
    assert!(caught.is_err());
    // the job being sent is answered lost (its worker is rung) ...
    assert!(PANICKY_RUNG.lock().unwrap().contains(&(501, EVENT_MAIL)));
    let mail = room.take_mail(5);
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].0, 1);
    assert!(matches!(mail[0].1, Answer::Lost(_)));
    // ... and the next is still queued, sent at the next turn
    assert!(room.has_queued());
    room.send_queued(&mut Panicky);
    assert!(!room.has_queued());
    room.answered::<Panicky>(7, |c| {
        assert_eq!(c.path, "/next");
        ok(200)
    });
    assert_eq!(room.take_mail(5), vec![(2, ok(200))]);
}

#[test]
fn a_worker_rung_to_look_is_pending_until_it_looks() {
    let room: Mailroom<u32> = Mailroom::default();
    room.register(8, 1, 801);
    room.register(9, 1, 901);
    assert!(!room.has_pending(9));
    room.ring_others::<Panicky>(8, EVENT_TICK);
    // every other worker, not the one that published
    assert!(PANICKY_RUNG.lock().unwrap().contains(&(901, EVENT_TICK)));
    assert!(!PANICKY_RUNG.lock().unwrap().contains(&(801, EVENT_TICK)));
    assert!(room.has_pending(9));
    assert!(!room.has_pending(8));
    room.looked(9);
    assert!(!room.has_pending(9));
}
