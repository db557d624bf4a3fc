//! A worker whose clock is still in the previous window, at a window's
//! edge, never overwrites (and so resets) a counter another worker moved
//! to the new window.

use super::*;
use crate::shared_data::InMemory;

fn created(limit: &RateLimit) -> InMemory {
    let mut m = InMemory::default();
    assert!(ensure_secret(&mut m, &[9; 32]));
    for k in keys("x", limit) {
        assert!(m.set(&k, NEW_COUNTER, None));
    }
    m
}

#[test]
fn a_late_request_never_resets_a_newer_window() {
    let total = RateLimit {
        per_principal: None,
        total: Some(Budget {
            requests: 2,
            window_ms: 1000,
        }),
    };
    let mut m = created(&total);
    // Window 2 fills; late requests stamped in window 1 come in between.
    let mut admitted_in_window_2 = 0;
    for t in [2000, 2001, 1999, 2002, 2003, 1999, 2004, 2005] {
        let got = admit(&mut m, "x", None, &total, t);
        if t >= 2000 && got == Admit::Yes {
            admitted_in_window_2 += 1;
        }
        if t < 2000 {
            assert!(
                matches!(got, Admit::No { .. }),
                "a late request at {t} is refused"
            );
        }
    }
    assert_eq!(admitted_in_window_2, 2);

    let per = RateLimit {
        per_principal: Some(Budget {
            requests: 1,
            window_ms: 1000,
        }),
        total: None,
    };
    let mut m = created(&per);
    assert_eq!(admit(&mut m, "x", Some("user|a"), &per, 2000), Admit::Yes);
    assert!(matches!(
        admit(&mut m, "x", Some("user|a"), &per, 1999),
        Admit::No { .. }
    ));
    assert!(matches!(
        admit(&mut m, "x", Some("user|a"), &per, 2001),
        Admit::No { .. }
    ));
}
