//! Counters: every endpoint's its own, nothing written for a refused
//! request, a newer window never reset, a principal's length bounded.

use super::*;

const BOTH: RateLimit = RateLimit {
    per_principal: Some(Budget {
        requests: 2,
        window_ms: 60_000,
    }),
    total: Some(Budget {
        requests: 3,
        window_ms: 60_000,
    }),
};

/// Every counter of these endpoints' budgets, as stored (value and
/// version).
type Snapshot = Vec<(String, (Option<Vec<u8>>, Option<u32>))>;

fn snapshot(m: &InMemory, budgets: &[(&str, &RateLimit)]) -> Snapshot {
    budgets
        .iter()
        .flat_map(|(scope, limit)| keys(scope, limit))
        .map(|k| {
            let v = m.get(&k);
            (k, v)
        })
        .collect()
}

#[test]
fn every_endpoint_counts_in_counters_of_its_own() {
    let scopes = ["/pd", "/gh", "/pd/x", "/PD"];
    let mut m = InMemory::default();
    assert!(ensure_secret(&mut m, &[7; 32]));
    for scope in scopes {
        for k in keys(scope, &BOTH) {
            assert!(m.set(&k, NEW_COUNTER, None));
        }
    }
    // No two endpoints share a counter, and every counter is the filter's.
    let mut all: Vec<String> = scopes.iter().flat_map(|s| keys(s, &BOTH)).collect();
    let n = all.len();
    assert_eq!(n, scopes.len() * (COUNTERS_PER_ENDPOINT as usize + 1));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "a counter shared by two endpoints");
    assert!(all
        .iter()
        .all(|k| k.starts_with("backstage_proxy/ratelimit/")));
    // Spending one endpoint's budgets leaves every other's whole: its
    // total, and the same principal's own budget there.
    let t = 1_800_000_000_000;
    for (i, scope) in scopes.iter().enumerate() {
        let spent = || format!("{scope}: the budgets of {:?} spent", &scopes[..i]);
        for p in ["user|user:default/a", "user|user:default/a", "external|b"] {
            assert_eq!(
                admit(&mut m, scope, Some(p), &BOTH, t),
                Admit::Yes,
                "{}",
                spent()
            );
        }
        // Its own budgets are spent: the principal's, then the total.
        for p in ["user|user:default/a", "external|c"] {
            assert!(
                matches!(admit(&mut m, scope, Some(p), &BOTH, t), Admit::No { .. }),
                "{scope} {p}"
            );
        }
    }
    // Endpoints a request lands under together: each counted once.
    let mut m = created(&BOTH, "/a");
    for k in keys("/b", &BOTH) {
        assert!(m.set(&k, NEW_COUNTER, None));
    }
    let both = [("/a", &BOTH), ("/b", &BOTH)];
    for who in ["user|user:default/a", "user|user:default/b"] {
        assert_eq!(admit_all(&mut m, &both, Some(who), t), Admit::Yes);
    }
    assert_eq!(
        admit(&mut m, "/b", Some("external|x"), &BOTH, t),
        Admit::Yes
    );
    assert!(matches!(
        admit_all(&mut m, &both, Some("external|y"), t),
        Admit::No { .. }
    ));
    assert_eq!(
        admit(&mut m, "/a", Some("external|y"), &BOTH, t),
        Admit::Yes
    );
}

#[test]
fn a_request_refused_by_one_budget_writes_no_counter_of_any() {
    // The total of /b is spent; requests landing under /a and /b are
    // refused, by /b's total, and /a's per-principal table stays as it
    // was: nobody takes a place in it, or a count, for a refused request.
    let a = RateLimit {
        per_principal: Some(Budget {
            requests: 5,
            window_ms: 60_000,
        }),
        total: None,
    };
    let b = RateLimit {
        per_principal: None,
        total: Some(Budget {
            requests: 1,
            window_ms: 60_000,
        }),
    };
    let t = 1_800_000_000_000;
    let mut m = created(&a, "/a");
    for k in keys("/b", &b) {
        assert!(m.set(&k, NEW_COUNTER, None));
    }
    let budgets = [("/a", &a), ("/b", &b)];
    assert_eq!(
        admit_all(&mut m, &budgets, Some("user|user:default/first"), t),
        Admit::Yes
    );
    let before = snapshot(&m, &budgets);
    for i in 0..50 {
        let p = format!("user|user:default/u{i}");
        assert!(matches!(
            admit_all(&mut m, &budgets, Some(&p), t + i),
            Admit::No { .. }
        ));
        assert!(matches!(
            admit_all(&mut m, &budgets, Some("user|user:default/first"), t + i),
            Admit::No { .. }
        ));
    }
    assert_eq!(snapshot(&m, &budgets), before);
    // The same within one endpoint: its total spent, its principals'
    // counters untouched.
    let mut m = created(&BOTH, "pd");
    for p in ["external|a", "external|a", "external|b"] {
        assert_eq!(admit(&mut m, "pd", Some(p), &BOTH, t), Admit::Yes);
    }
    let before = snapshot(&m, &[("pd", &BOTH)]);
    for i in 0..50 {
        let p = format!("external|n{i}");
        assert!(matches!(
            admit(&mut m, "pd", Some(&p), &BOTH, t),
            Admit::No { .. }
        ));
    }
    assert_eq!(snapshot(&m, &[("pd", &BOTH)]), before);
}

#[test]
fn a_worker_whose_clock_lags_never_resets_a_newer_window() {
    // Another worker's clock is a window ahead: the counters it wrote are
    // in the next window. A request read at the older window is refused
    // and writes nothing, so the newer window's counts stand.
    let total = RateLimit {
        per_principal: None,
        total: Some(Budget {
            requests: 2,
            window_ms: 60_000,
        }),
    };
    let t = 1_800_000_000_000;
    let ahead = t + 60_000;
    for (limit, who) in [(&PER, Some("user|user:default/a")), (&total, None)] {
        let mut m = created(limit, "pd");
        let budget = limit.per_principal.or(limit.total).unwrap().requests;
        for _ in 0..budget {
            assert_eq!(admit(&mut m, "pd", who, limit, ahead), Admit::Yes);
        }
        let spent = snapshot(&m, &[("pd", limit)]);
        for lag in [1, 30_000, 59_999] {
            assert!(
                matches!(
                    admit(&mut m, "pd", who, limit, ahead - lag),
                    Admit::No { .. }
                ),
                "{who:?} {lag} ms behind"
            );
        }
        assert_eq!(snapshot(&m, &[("pd", limit)]), spent, "{who:?}");
        assert!(matches!(
            admit(&mut m, "pd", who, limit, ahead + 1),
            Admit::No { .. }
        ));
    }
    // A table whose counters are all in the next window refuses a
    // newcomer in the older one rather than take a place.
    let mut m = created(&PER, "pd");
    for i in 0..COUNTERS_PER_ENDPOINT {
        let v = format!("{}:1:user|user:default/o{i}", ahead / 60_000);
        assert!(m.set(&principal_key("pd", i), v.as_bytes(), None));
    }
    let full = snapshot(&m, &[("pd", &PER)]);
    for p in ["user|user:default/new", "external|x", "plugin|plugin:y"] {
        assert!(matches!(
            admit(&mut m, "pd", Some(p), &PER, t),
            Admit::No { .. }
        ));
    }
    assert_eq!(snapshot(&m, &[("pd", &PER)]), full);
}

#[test]
fn a_principal_of_up_to_1024_bytes_is_counted_and_a_longer_one_refused() {
    let t = 1_800_000_000_000;
    for kind in ["user|user:default/", "plugin|plugin:", "external|"] {
        let of_len = |n: usize| format!("{kind}{}", "x".repeat(n - kind.len()));
        let mut m = created(&PER, "pd");
        for len in [MAX_PRINCIPAL_BYTES - 1, MAX_PRINCIPAL_BYTES] {
            let p = of_len(len);
            for i in 0..5 {
                assert_eq!(admit(&mut m, "pd", Some(&p), &PER, t + i), Admit::Yes);
            }
            assert!(matches!(
                admit(&mut m, "pd", Some(&p), &PER, t + 9),
                Admit::No { .. }
            ));
        }
        let before = snapshot(&m, &[("pd", &PER)]);
        for len in [
            MAX_PRINCIPAL_BYTES + 1,
            MAX_PRINCIPAL_BYTES + 2,
            2_000,
            8_192,
        ] {
            let p = of_len(len);
            let Admit::No { retry_after_s } = admit(&mut m, "pd", Some(&p), &PER, t) else {
                panic!("{kind} of {len} bytes");
            };
            assert!((1..=60).contains(&retry_after_s));
        }
        assert_eq!(snapshot(&m, &[("pd", &PER)]), before, "nothing written");
        // Only where a per-principal budget applies.
        let total = RateLimit {
            per_principal: None,
            total: Some(Budget {
                requests: 5,
                window_ms: 60_000,
            }),
        };
        let mut m = created(&total, "pd");
        assert_eq!(
            admit(&mut m, "pd", Some(&of_len(8_192)), &total, t),
            Admit::Yes
        );
    }
}
