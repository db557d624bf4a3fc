//! Budgets across workers: two "workers" share one in-memory store with
//! Envoy's compare-and-swap rules.

use super::*;
use crate::shared_data::InMemory;

fn created(limit: &RateLimit, scope: &str) -> InMemory {
    let mut m = InMemory::default();
    for k in keys(scope, limit) {
        assert!(m.set(&k, b"0:0", None));
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
    let mut m = InMemory::default();
    assert!(matches!(
        admit(&mut m, "pd", Some("u"), &PER, 0),
        Admit::No { .. }
    ));
}

#[test]
fn state_is_bounded_by_the_configuration_not_by_principals() {
    let mut m = created(&PER, "pd");
    let before = keys("pd", &PER).len();
    for i in 0..10_000 {
        let _ = admit(
            &mut m,
            "pd",
            Some(&format!("external:idp:robot-{i}")),
            &PER,
            1,
        );
    }
    assert_eq!(before, COUNTERS_PER_ENDPOINT as usize);
    assert_eq!(m.len(), before, "no key beyond the configured slots");
}

#[test]
fn descriptor_values_are_injective_and_header_safe() {
    let cases = [
        "user:default/alice",
        "user:default/al ice",
        "user:default/al%20ice",
        "user:default/al\u{e9}",
        "user:default/a\r\nx-injected: 1",
        "",
        "%",
    ];
    let encoded: Vec<String> = cases
        .iter()
        .map(|c| descriptor_value(c).into_owned())
        .collect();
    for e in &encoded {
        assert!(e.bytes().all(|b| b.is_ascii_graphic()), "{e:?}");
    }
    let distinct: std::collections::BTreeSet<&String> = encoded.iter().collect();
    assert_eq!(distinct.len(), cases.len(), "{encoded:?}");
    assert_eq!(
        encoded[0], "user:default/alice",
        "plain values pass unchanged"
    );
}
