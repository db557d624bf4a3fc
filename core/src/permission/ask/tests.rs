use super::*;
use crate::permission::Action;

fn q(token: &str, name: &str) -> Question {
    Question::new(
        token,
        &Permission {
            name: name.into(),
            action: Some(Action::Read),
        },
    )
}

/// Sends every queued question; the host gives call tokens from 100 on.
fn send(asker: &mut Asker, now: u64) -> Vec<(u32, Question, String)> {
    let mut out = Vec::new();
    for (i, cmd) in asker.pump(2000).into_iter().enumerate() {
        let Command::Ask { question, id, .. } = cmd else {
            panic!("{cmd:?}")
        };
        let token = 100 + u32::try_from(i).unwrap();
        let cmds = asker.dispatched(&question, id.clone(), Ok(token), now);
        assert_eq!(cmds, vec![Command::Count(Counter::Asked)]);
        out.push((token, question, id));
    }
    out
}

fn answer(id: &str, result: &str) -> Response {
    let body = format!(r#"{{"items":[{{"id":"{id}","result":"{result}"}}]}}"#).into_bytes();
    Response::Answered {
        status: 200,
        size: body.len(),
        body: Some(body),
    }
}

#[test]
fn concurrent_requests_with_one_question_wait_for_one_call() {
    let mut asker = Asker::default();
    let mut cache = Decisions::new(100, 5);
    for stream in 1..=5 {
        assert_eq!(asker.park(stream, q("tok-a", "p")), Park::Wait);
    }
    // Another user's question is another call.
    assert_eq!(asker.park(6, q("tok-b", "p")), Park::Wait);
    let sent = send(&mut asker, 0);
    assert_eq!(sent.len(), 2, "one call per question");
    // Nothing new is sent while a question is in flight.
    assert_eq!(asker.park(7, q("tok-a", "p")), Park::Wait);
    assert!(asker.pump(2000).is_empty());
    let (token, question, id) = &sent[0];
    let cmds = asker.answered(&mut cache, *token, answer(id, "ALLOW"), 10);
    assert_eq!(
        cmds,
        vec![
            Command::Count(Counter::Allow),
            Command::Redecide(vec![1, 2, 3, 4, 5, 7])
        ]
    );
    assert_eq!(cache.get(&question.key, 10), Some(Answer::Allow));
    assert!(asker.is_waiting(6));
}

#[test]
fn a_deny_is_kept_as_long_as_an_allow_and_neither_past_the_stated_time() {
    let mut asker = Asker::default();
    let mut cache = Decisions::new(100, 5);
    asker.park(1, q("t", "deny.me"));
    let sent = send(&mut asker, 0);
    let (token, question, id) = &sent[0];
    asker.answered(&mut cache, *token, answer(id, "DENY"), 1_000);
    assert_eq!(cache.get(&question.key, 1_000), Some(Answer::Deny));
    assert_eq!(cache.get(&question.key, 5_999), Some(Answer::Deny));
    assert_eq!(
        cache.get(&question.key, 6_000),
        None,
        "5 s after the answer"
    );
}

#[test]
fn no_usable_answer_refuses_the_waiters_and_keeps_nothing() {
    type Make = Box<dyn Fn(&str) -> Response>;
    let lost: Vec<(&str, Make)> = vec![
        ("lost", Box::new(|_| Response::Lost)),
        (
            "503",
            Box::new(|_| Response::Answered {
                status: 503,
                body: None,
                size: 0,
            }),
        ),
        (
            "401",
            Box::new(|_| Response::Answered {
                status: 401,
                body: None,
                size: 0,
            }),
        ),
        ("wrong id", Box::new(|_| answer("someone-else", "ALLOW"))),
        ("conditional", Box::new(|id| answer(id, "CONDITIONAL"))),
        (
            "too large",
            Box::new(|id| Response::Answered {
                status: 200,
                body: Some(
                    format!(r#"{{"items":[{{"id":"{id}","result":"ALLOW"}}]}}"#).into_bytes(),
                ),
                size: MAX_ANSWER_BYTES + 1,
            }),
        ),
    ];
    for (what, response) in lost {
        let mut asker = Asker::default();
        let mut cache = Decisions::new(100, 5);
        asker.park(1, q("t", "p"));
        asker.park(2, q("t", "p"));
        let sent = send(&mut asker, 0);
        let (token, question, id) = &sent[0];
        let cmds = asker.answered(&mut cache, *token, response(id), 10);
        assert_eq!(
            cmds,
            vec![Command::Count(Counter::Failed), Command::Refuse(vec![1, 2])],
            "{what}"
        );
        assert_eq!(cache.get(&question.key, 10), None, "{what}: nothing kept");
        assert_eq!(asker.paused(), 0, "{what}");
        // The next request asks again.
        asker.park(3, q("t", "p"));
        assert_eq!(send(&mut asker, 20).len(), 1, "{what}");
    }
}

#[test]
fn a_call_the_host_refuses_or_never_answers_refuses_its_waiters() {
    let mut asker = Asker::default();
    asker.park(1, q("t", "p"));
    let Some(Command::Ask { question, id, .. }) = asker.pump(2000).pop() else {
        panic!()
    };
    let cmds = asker.dispatched(&question, id, Err("unknown cluster".into()), 0);
    assert_eq!(
        cmds,
        vec![Command::Count(Counter::Failed), Command::Refuse(vec![1])]
    );
    // Never answered: refused after the timeout and a second's grace.
    asker.park(2, q("t", "p"));
    send(&mut asker, 0);
    assert!(asker.tick(3_000, 2_000).is_empty());
    assert_eq!(
        asker.tick(3_001, 2_000),
        vec![Command::Count(Counter::Failed), Command::Refuse(vec![2])]
    );
    // A late answer changes nothing.
    let mut cache = Decisions::new(10, 5);
    assert!(asker
        .answered(&mut cache, 100, answer("x", "ALLOW"), 4_000)
        .is_empty());
    assert!(cache.is_empty());
}

#[test]
fn waiting_is_bounded_per_vm_and_per_request() {
    let mut asker = Asker::default();
    for stream in 0..u32::try_from(MAX_PAUSED).unwrap() {
        assert_eq!(
            asker.park(stream, q(&format!("t{stream}"), "p")),
            Park::Wait
        );
    }
    assert_eq!(asker.park(99_999, q("t", "p")), Park::Refuse);
    // A request already waiting may wait again (another permission), up
    // to its rounds.
    let mut asker = Asker::default();
    for round in 0..MAX_ROUNDS {
        assert_eq!(asker.park(1, q("t", &format!("p{round}"))), Park::Wait);
    }
    assert_eq!(asker.park(1, q("t", "last")), Park::Refuse);
    assert!(!asker.is_waiting(1));
}

#[test]
fn keys_never_confuse_users_permissions_or_actions() {
    let p = |name: &str, action| Permission {
        name: name.into(),
        action,
    };
    let keys = [
        question_key("tokA", &p("a", Some(Action::Read))),
        question_key("tokA", &p("a", Some(Action::Update))),
        question_key("tokA", &p("a", None)),
        question_key("tokB", &p("a", Some(Action::Read))),
        question_key("tokA", &p("b", Some(Action::Read))),
    ];
    for (i, a) in keys.iter().enumerate() {
        for b in keys.iter().skip(i + 1) {
            assert_ne!(a, b);
        }
    }
    // The log's description never holds the token.
    assert_eq!(permission_of(&keys[0]), "a:read");
    assert!(!permission_of(&keys[0]).contains("tokA"));
}

#[test]
fn a_finished_stream_is_forgotten() {
    let mut asker = Asker::default();
    asker.park(1, q("t", "p"));
    asker.park(2, q("t", "p"));
    asker.forget(1);
    let sent = send(&mut asker, 0);
    let mut cache = Decisions::new(10, 5);
    let (token, _, id) = &sent[0];
    assert_eq!(
        asker.answered(&mut cache, *token, answer(id, "ALLOW"), 1),
        vec![Command::Count(Counter::Allow), Command::Redecide(vec![2])]
    );
}
