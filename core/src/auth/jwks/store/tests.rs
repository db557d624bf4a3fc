use super::*;
use crate::auth::jwks::set::parse_key_set;

const ED: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}"#;

fn src(url: &str) -> Source {
    Source {
        url: url.into(),
        cluster: "c".into(),
        authority: "h".into(),
        path: "/".into(),
    }
}

fn sets() -> KeyStore {
    KeyStore::new(
        Timing {
            refresh_ms: 600_000,
            cooldown_ms: 30_000,
            fetch_timeout_ms: 5000,
            retry_after_failure_ms: 1000,
        },
        [],
    )
}

#[test]
fn cold_start_waits_for_one_fetch() {
    let mut k = sets();
    let s = src("http://a/jwks");
    assert!(matches!(k.lookup(&s, 0), Lookup::Wait));
    assert_eq!(k.due(0), vec![s.clone()]);
    k.start(&s.url, 0);
    assert!(
        k.due(1).is_empty(),
        "never two fetches in flight for one URL"
    );
    assert!(matches!(k.lookup(&s, 1), Lookup::Wait));
    k.succeeded(&s.url, parse_key_set(ED.as_bytes()).unwrap(), 2);
    assert!(matches!(k.lookup(&s, 3), Lookup::Ready(_, 1)));
}

/// A store where `src("http://a/jwks")` is named by the configuration.
fn with_pinned(urls: &[&str]) -> KeyStore {
    KeyStore::new(sets().timing(), urls.iter().map(|u| src(u)))
}

#[test]
fn failure_without_a_set_refuses_then_retries() {
    let mut k = with_pinned(&["http://a/jwks"]);
    let s = src("http://a/jwks");
    k.lookup(&s, 0);
    k.start(&s.url, 0);
    k.failed(&s.url, 10);
    assert!(matches!(k.lookup(&s, 500), Lookup::Unavailable));
    assert!(k.due(500).is_empty());
    assert!(matches!(k.lookup(&s, 1200), Lookup::Wait));
    assert_eq!(k.due(1200), vec![s]);
}

#[test]
fn a_learnt_source_that_failed_is_not_fetched_again_before_the_cooldown() {
    let mut k = sets();
    let s = src("http://b/api/nope/.backstage/auth/v1/jwks.json");
    assert!(matches!(k.lookup(&s, 0), Lookup::Wait));
    k.start(&s.url, 0);
    k.failed(&s.url, 10);
    for t in [11, 1_200, 5_000, 30_009] {
        assert!(matches!(k.lookup(&s, t), Lookup::Unavailable), "at {t}");
        assert!(k.due(t).is_empty(), "no fetch at {t}");
    }
    assert!(matches!(k.lookup(&s, 30_010), Lookup::Wait));
    assert_eq!(k.due(30_010), vec![s]);
}

#[test]
fn fetches_of_learnt_sources_are_rationed() {
    let mut k = with_pinned(&["http://a/jwks", "http://idp/jwks"]);
    let plugin = |i: u32| src(&format!("http://b/api/p{i}/.backstage/auth/v1/jwks.json"));
    for i in 0..=LEARNT_BURST {
        assert!(matches!(k.lookup(&plugin(i), 0), Lookup::Wait));
    }
    for i in 0..LEARNT_BURST {
        assert!(k.may_fetch(&plugin(i).url, 0), "burst {i}");
        k.start(&plugin(i).url, 0);
    }
    let last = plugin(LEARNT_BURST);
    assert!(!k.may_fetch(&last.url, 10), "over the burst");
    assert!(
        matches!(k.lookup(&last, 20), Lookup::Unavailable),
        "its waiters are answered at once"
    );
    // Rationed is not failed: retried after the short delay.
    assert!(matches!(k.lookup(&last, 1_010), Lookup::Wait));
    assert!(k.due(1_010).contains(&last));
    assert!(k.may_fetch(&last.url, LEARNT_REFILL_MS + 10));
    assert!(!k.may_fetch(&plugin(99).url, LEARNT_REFILL_MS + 10));
    // The budget never binds the sets the configuration names.
    for _ in 0..100 {
        assert!(k.may_fetch("http://a/jwks", 20));
        assert!(k.may_fetch("http://idp/jwks", 20));
    }
}

/// A flood of forged plugin tokens, each naming a new plugin, fetched
/// and failing (the backend answers 404), over ten minutes of a VM's
/// life: the configured sets stay, a real plugin's set stays, and the
/// number of fetches the flood caused stays within the budget.
#[test]
fn a_flood_of_forged_plugins_displaces_nothing_that_works() {
    let user = "http://a/api/auth/.well-known/jwks.json";
    let mut k = with_pinned(&[user, "http://idp/jwks"]);
    let good = src("http://a/api/catalog/.backstage/auth/v1/jwks.json");
    let set = || parse_key_set(ED.as_bytes()).unwrap();
    for s in [src(user), good.clone()] {
        assert!(matches!(k.lookup(&s, 0), Lookup::Wait));
        k.start(&s.url, 0);
        k.succeeded(&s.url, set(), 0);
    }
    let mut fetches = 0u64;
    let mut now = 0;
    for i in 0..20_000u64 {
        now = i * 30; // 20,000 forged tokens in 600 s
        let forged = src(&format!("http://a/api/x{i}/.backstage/auth/v1/jwks.json"));
        let _ = k.lookup(&forged, now);
        for s in k.due(now) {
            if !k.may_fetch(&s.url, now) {
                continue;
            }
            if s.url == user || s.url == good.url {
                k.start(&s.url, now);
                k.succeeded(&s.url, set(), now);
            } else {
                fetches += 1;
                k.start(&s.url, now);
                k.failed(&s.url, now);
            }
        }
        if i % 1000 == 0 {
            assert!(matches!(k.lookup(&good, now), Lookup::Ready(..)));
        }
        assert!(k.learnt() <= MAX_LEARNT);
    }
    let bound = u64::from(LEARNT_BURST) + now / LEARNT_REFILL_MS;
    assert!(fetches <= bound, "{fetches} fetches, bound {bound}");
    assert!(matches!(k.lookup(&src(user), now), Lookup::Ready(..)));
    assert!(matches!(k.lookup(&good, now), Lookup::Ready(..)));
    assert!(matches!(
        k.lookup(&src("http://idp/jwks"), now),
        Lookup::Wait
    ));
    // A plugin seen for the first time after the flood is fetched.
    let new = src("http://a/api/scaffolder/.backstage/auth/v1/jwks.json");
    assert!(matches!(
        k.lookup(&new, now + LEARNT_REFILL_MS),
        Lookup::Wait
    ));
    assert!(k.due(now + LEARNT_REFILL_MS).contains(&new));
}

#[test]
fn learnt_sets_that_never_worked_are_evicted_first() {
    let mut k = sets();
    let good = src("http://a/api/catalog/.backstage/auth/v1/jwks.json");
    k.lookup(&good, 0);
    k.start(&good.url, 0);
    k.succeeded(&good.url, parse_key_set(ED.as_bytes()).unwrap(), 0);
    let mut now = 0;
    for i in 0..(MAX_LEARNT as u64 * 3) {
        now += LEARNT_REFILL_MS;
        let s = src(&format!("http://a/api/x{i}/.backstage/auth/v1/jwks.json"));
        assert!(matches!(k.lookup(&s, now), Lookup::Wait), "slot {i}");
        k.start(&s.url, now);
        k.failed(&s.url, now);
    }
    assert_eq!(k.learnt(), MAX_LEARNT);
    assert!(
        k.has_set(&good.url),
        "the oldest, but the only one that worked"
    );
}

#[test]
fn a_refresh_in_flight_is_never_started_twice() {
    let mut k = sets();
    let s = src("http://a/jwks");
    k.lookup(&s, 0);
    k.start(&s.url, 0);
    k.succeeded(&s.url, parse_key_set(ED.as_bytes()).unwrap(), 0);
    assert_eq!(k.due(600_000), vec![s.clone()]);
    k.start(&s.url, 600_000);
    for t in [600_001, 601_000, 605_000] {
        assert!(k.due(t).is_empty(), "a refresh is under way at {t}");
    }
    assert_eq!(k.unknown_kid(&s, 600_002), KidRefetch::Wait);
    assert!(k.due(600_003).is_empty(), "a kid refetch joins the refresh");
}

#[test]
fn stale_if_error_and_background_refresh() {
    let mut k = sets();
    let s = src("http://a/jwks");
    k.lookup(&s, 0);
    k.start(&s.url, 0);
    k.succeeded(&s.url, parse_key_set(ED.as_bytes()).unwrap(), 0);
    assert!(k.due(599_999).is_empty());
    assert_eq!(k.due(600_000), vec![s.clone()]);
    k.start(&s.url, 600_000);
    k.failed(&s.url, 600_010);
    assert!(
        matches!(k.lookup(&s, 600_020), Lookup::Ready(_, 1)),
        "the last good set stays"
    );
    assert!(k.due(600_020).is_empty());
    assert_eq!(
        k.due(630_010),
        vec![s.clone()],
        "retried after the cooldown"
    );
}

#[test]
fn unknown_kid_refetches_once_per_cooldown() {
    let mut k = sets();
    let s = src("http://a/jwks");
    k.lookup(&s, 0);
    k.start(&s.url, 0);
    k.succeeded(&s.url, parse_key_set(ED.as_bytes()).unwrap(), 0);
    assert_eq!(k.unknown_kid(&s, 100), KidRefetch::Wait);
    assert_eq!(k.due(100), vec![s.clone()]);
    k.start(&s.url, 100);
    assert_eq!(
        k.unknown_kid(&s, 101),
        KidRefetch::Wait,
        "a refetch under way: wait for it"
    );
    k.succeeded(&s.url, parse_key_set(ED.as_bytes()).unwrap(), 150);
    for t in [200, 10_000, 30_099] {
        assert_eq!(k.unknown_kid(&s, t), KidRefetch::Refused);
    }
    assert!(k.due(30_099).is_empty());
    assert_eq!(k.unknown_kid(&s, 30_100), KidRefetch::Wait);
    assert_eq!(k.generation(&s.url), 2);
}

#[test]
fn lost_fetches_are_expired() {
    let mut k = sets();
    let s = src("http://a/jwks");
    k.lookup(&s, 0);
    k.start(&s.url, 0);
    assert!(k.expire_stuck(9_000).is_empty());
    assert_eq!(k.expire_stuck(10_001), vec![s.clone()]);
    assert!(!k.in_flight(&s.url));
}
