//! Budgets across workers: two "workers" share one in-memory store with
//! Envoy's compare-and-swap rules.

use super::*;
use crate::shared_data::InMemory;

fn created(limit: &RateLimit, scope: &str) -> InMemory {
    let mut m = InMemory::default();
    assert!(ensure_secret(&mut m, &[7; 32]));
    for k in keys(scope, limit) {
        assert!(m.set(&k, NEW_COUNTER, None));
    }
    m
}

const PER: RateLimit = RateLimit {
    per_principal: Some(Budget {
        requests: 5,
        window_ms: 60_000,
    }),
    total: None,
};

#[test]
fn a_principal_gets_its_budget_per_window_and_no_more() {
    let mut m = created(&PER, "pd");
    let t = 1_800_000_000_000;
    for i in 0..5 {
        assert_eq!(
            admit(&mut m, "pd", Some("user:default/a"), &PER, t + i),
            Admit::Yes
        );
    }
    let Admit::No { retry_after_s } = admit(&mut m, "pd", Some("user:default/a"), &PER, t + 10)
    else {
        panic!("over budget");
    };
    assert!((1..=60).contains(&retry_after_s));
    // Another principal has its own budget (unless it shares a slot).
    assert_eq!(
        admit(&mut m, "pd", Some("user:default/b"), &PER, t + 11),
        Admit::Yes
    );
    // The next window refills.
    assert_eq!(
        admit(&mut m, "pd", Some("user:default/a"), &PER, t + 60_000),
        Admit::Yes
    );
}

#[test]
fn a_lost_race_is_retried_and_never_counts_twice_or_not_at_all() {
    // A store whose writes fail the first k times for a key, as when
    // another worker updated it in between.
    struct Racing {
        inner: InMemory,
        fail: usize,
    }
    impl SharedData for Racing {
        fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
            self.inner.get(key)
        }
        fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
            if self.fail > 0 {
                self.fail -= 1;
                // the other worker's write bumps the version
                let (v, _) = self.inner.get(key);
                let _ = self.inner.set(key, &v.unwrap_or_default(), None);
                return false;
            }
            self.inner.set(key, value, cas)
        }
    }
    let total = RateLimit {
        per_principal: None,
        total: Some(Budget {
            requests: 2,
            window_ms: 1000,
        }),
    };
    let mut r = Racing {
        inner: created(&total, "x"),
        fail: 3,
    };
    assert_eq!(admit(&mut r, "x", None, &total, 5_000), Admit::Yes);
    assert_eq!(admit(&mut r, "x", None, &total, 5_001), Admit::Yes);
    assert!(matches!(
        admit(&mut r, "x", None, &total, 5_002),
        Admit::No { .. }
    ));
    // Losing every attempt refuses: never an uncounted request.
    let mut r = Racing {
        inner: created(&total, "y"),
        fail: usize::MAX,
    };
    assert!(matches!(
        admit(&mut r, "y", None, &total, 5_000),
        Admit::No { .. }
    ));
}

#[test]
fn a_counter_never_created_refuses_rather_than_write_blind() {
    // The hash key exists, the counters do not: nothing is written.
    let mut m = InMemory::default();
    assert!(ensure_secret(&mut m, &[7; 32]));
    let total = RateLimit {
        per_principal: None,
        total: Some(Budget {
            requests: 5,
            window_ms: 60_000,
        }),
    };
    for limit in [&PER, &total] {
        assert!(matches!(
            admit(&mut m, "pd", Some("u"), limit, 0),
            Admit::No { .. }
        ));
    }
    assert_eq!(m.len(), 1, "no counter written without a version");
    // No hash key: per-principal budgets refuse too.
    let mut m = InMemory::default();
    for k in keys("pd", &PER) {
        assert!(m.set(&k, NEW_COUNTER, None));
    }
    let before = m.len();
    assert!(matches!(
        admit(&mut m, "pd", Some("u"), &PER, 0),
        Admit::No { .. }
    ));
    assert_eq!(m.len(), before);
}

#[test]
fn the_hash_key_is_written_once_and_then_read_by_everyone() {
    let mut m = InMemory::default();
    assert!(ensure_secret(&mut m, &[1; 32]));
    assert!(ensure_secret(&mut m, &[2; 32]));
    assert_eq!(m.get(SECRET_KEY).0.unwrap(), vec![1; 32]);
}

const DAY: RateLimit = RateLimit {
    per_principal: Some(Budget {
        requests: 1,
        window_ms: 86_400_000,
    }),
    total: None,
};

#[test]
fn state_is_bounded_and_no_principal_spends_anothers_budget() {
    // 600 principals with one request a day each: every one gets its first
    // request and is refused its second (the unkeyed hash of old refused
    // about 70 of them their first).
    let mut m = created(&DAY, "pd");
    let before = m.len();
    let t = 1_800_000_000_000;
    for i in 0..600 {
        let p = format!("user:default/u{i}");
        assert_eq!(admit(&mut m, "pd", Some(&p), &DAY, t), Admit::Yes, "{p}");
        assert!(
            matches!(admit(&mut m, "pd", Some(&p), &DAY, t + 1), Admit::No { .. }),
            "{p}"
        );
    }
    assert_eq!(m.len(), before, "no key beyond the configured counters");
    // A table full for this window refuses newcomers, and only them.
    for i in 600..5_000 {
        let _ = admit(
            &mut m,
            "pd",
            Some(&format!("external:idp:robot-{i}")),
            &DAY,
            t,
        );
    }
    assert_eq!(m.len(), before);
    let mut counted = 0;
    for i in 0..COUNTERS_PER_ENDPOINT {
        let (v, _) = m.get(&principal_key("pd", i));
        if v.is_some_and(|v| v.split(|b| *b == b':').nth(1) == Some(b"1")) {
            counted += 1;
        }
    }
    assert!(counted <= COUNTERS_PER_ENDPOINT, "{counted}");
    assert!(
        counted > COUNTERS_PER_ENDPOINT * 9 / 10,
        "the table fills: {counted}"
    );
    assert!(matches!(
        admit(&mut m, "pd", Some("user:default/u0"), &DAY, t + 2),
        Admit::No { .. }
    ));
    // The next window starts empty.
    assert_eq!(
        admit(
            &mut m,
            "pd",
            Some("user:default/newcomer"),
            &DAY,
            t + 86_400_000
        ),
        Admit::Yes
    );
}

#[test]
fn exact_counts_for_many_principals_in_one_table() {
    let two = RateLimit {
        per_principal: Some(Budget {
            requests: 2,
            window_ms: 60_000,
        }),
        total: None,
    };
    let mut m = created(&two, "x");
    for i in 0..500 {
        let p = format!("plugin:p{i}");
        for round in 0..3 {
            let got = admit(&mut m, "x", Some(&p), &two, 5_000 + round);
            assert_eq!(got == Admit::Yes, round < 2, "{p} round {round}: {got:?}");
        }
    }
}

#[test]
fn a_principal_over_its_own_budget_spends_nothing_of_the_total() {
    let both = RateLimit {
        per_principal: Some(Budget {
            requests: 2,
            window_ms: 60_000,
        }),
        total: Some(Budget {
            requests: 10,
            window_ms: 60_000,
        }),
    };
    let mut m = created(&both, "pd");
    let t = 1_800_000_000_000;
    for i in 0..100 {
        let got = admit(&mut m, "pd", Some("user:default/greedy"), &both, t + i);
        assert_eq!(got == Admit::Yes, i < 2, "request {i}");
    }
    // 8 of the total are left for everyone else.
    for i in 0..8 {
        let p = format!("user:default/u{i}");
        assert_eq!(
            admit(&mut m, "pd", Some(&p), &both, t + 200),
            Admit::Yes,
            "{p}"
        );
    }
    // And then the total is spent, for every principal, also a new one.
    let Admit::No { retry_after_s } =
        admit(&mut m, "pd", Some("user:default/late"), &both, t + 300)
    else {
        panic!("the total is spent");
    };
    assert!((1..=60).contains(&retry_after_s));
    // The late principal was refused by the total: its own budget is whole
    // in the next window and nothing of this one was spent.
    let (late, _) = m.get(&principal_key("pd", 0));
    assert!(late.is_some());
}

#[test]
fn the_total_applies_whether_or_not_there_is_a_principal() {
    let both = RateLimit {
        per_principal: Some(Budget {
            requests: 100,
            window_ms: 60_000,
        }),
        total: Some(Budget {
            requests: 3,
            window_ms: 60_000,
        }),
    };
    let mut m = created(&both, "pd");
    for i in 0..3 {
        let p = format!("user:default/u{i}");
        assert_eq!(admit(&mut m, "pd", Some(&p), &both, 10), Admit::Yes);
    }
    assert!(matches!(
        admit(&mut m, "pd", Some("user:default/u9"), &both, 11),
        Admit::No { .. }
    ));
    assert!(matches!(
        admit(&mut m, "pd", None, &both, 12),
        Admit::No { .. }
    ));
}

#[test]
fn without_a_principal_no_per_principal_counter_is_touched() {
    let mut m = created(&PER, "pd");
    let snapshot: Vec<_> = (0..COUNTERS_PER_ENDPOINT)
        .map(|i| m.get(&principal_key("pd", i)))
        .collect();
    for i in 0..20 {
        assert_eq!(admit(&mut m, "pd", None, &PER, i), Admit::Yes);
    }
    let after: Vec<_> = (0..COUNTERS_PER_ENDPOINT)
        .map(|i| m.get(&principal_key("pd", i)))
        .collect();
    assert_eq!(snapshot, after);
}

#[test]
fn windows_last_their_length_and_retry_after_counts_down() {
    let mut m = created(&PER, "pd");
    // The start of a window.
    let t = 1_800_000_000_000;
    assert_eq!(t % 60_000, 0);
    for i in 0..5 {
        assert_eq!(admit(&mut m, "pd", Some("u"), &PER, t + i), Admit::Yes);
    }
    for (at, want) in [(1_500, 59), (30_000, 30), (59_001, 1)] {
        assert_eq!(
            admit(&mut m, "pd", Some("u"), &PER, t + at),
            Admit::No {
                retry_after_s: want
            },
            "{at} ms into the window"
        );
    }
    assert_eq!(admit(&mut m, "pd", Some("u"), &PER, t + 60_000), Admit::Yes);
}

#[test]
fn when_the_total_fills_meanwhile_the_principals_request_is_given_back() {
    // Another worker spends the last of the total between this request's
    // read and its write.
    struct Racing {
        inner: InMemory,
        total: String,
        raced: bool,
    }
    impl SharedData for Racing {
        fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
            self.inner.get(key)
        }
        fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
            if key == self.total && !self.raced {
                self.raced = true;
                let (v, _) = self.inner.get(key);
                let w = String::from_utf8(v.unwrap()).unwrap();
                let window = w.split(':').next().unwrap().to_string();
                let _ = self.inner.set(key, format!("{window}:1").as_bytes(), None);
                return false;
            }
            self.inner.set(key, value, cas)
        }
    }
    let both = RateLimit {
        per_principal: Some(Budget {
            requests: 1,
            window_ms: 60_000,
        }),
        total: Some(Budget {
            requests: 1,
            window_ms: 60_000,
        }),
    };
    let mut r = Racing {
        inner: created(&both, "pd"),
        total: total_key("pd"),
        raced: false,
    };
    // Make the total's window current first.
    let t = 120_000;
    assert!(r.inner.set(&total_key("pd"), b"2:0", None));
    assert!(matches!(
        admit(&mut r, "pd", Some("u"), &both, t),
        Admit::No { .. }
    ));
    // Its own counter was given back: in the next window (the total
    // refills) it is admitted once, as its budget allows.
    let mine: Vec<u8> = (0..COUNTERS_PER_ENDPOINT)
        .filter_map(|i| r.inner.get(&principal_key("pd", i)).0)
        .find(|v| v.ends_with(b":u"))
        .unwrap();
    assert_eq!(mine, b"2:0:u");
}

#[test]
fn one_user_under_two_spellings_is_one_principal_and_kinds_never_share() {
    use crate::identity::Principal;
    let jane = budget_principal(&Principal::User("user:default/Jane".into()));
    assert_eq!(
        jane,
        budget_principal(&Principal::User("user:default/jane".into()))
    );
    assert_eq!(
        budget_principal(&Principal::Plugin("plugin:Catalog".into())),
        budget_principal(&Principal::Plugin("plugin:catalog".into()))
    );
    // An external subject is the issuer's, compared as given.
    assert_ne!(
        budget_principal(&Principal::External("external:idp:Robot".into())),
        budget_principal(&Principal::External("external:idp:robot".into()))
    );
    // A static token whose subject names a user or a plugin is not them.
    assert_ne!(
        budget_principal(&Principal::External("user:default/jane".into())),
        jane
    );
    assert_ne!(
        budget_principal(&Principal::External("plugin:catalog".into())),
        budget_principal(&Principal::Plugin("plugin:catalog".into()))
    );
}

mod counters;
mod places;
