use super::*;
use crate::auth::jwks::set::parse_key_set;
use crate::auth::jwks::store::{Source, Timing};

const ED: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}"#;

fn v(s: &str) -> Verified {
    Verified {
        principal: Principal::User(s.into()),
        ownership: None,
        restrictions: None,
        on_behalf: false,
    }
}

fn keys() -> KeyStore {
    KeyStore::new(
        Timing {
            refresh_ms: 1000,
            cooldown_ms: 1000,
            fetch_timeout_ms: 1000,
            retry_after_failure_ms: 1000,
        },
        [],
    )
}

#[test]
fn hit_until_exp() {
    let k = keys();
    let mut c = TokenCache::new(4);
    c.insert("t", v("a"), 100.0, vec![]);
    assert_eq!(c.get("t", 99, 0, &k), Some(v("a")));
    assert_eq!(c.get("t", 100, 0, &k), None, "exp = now is expired");
    assert!(c.is_empty(), "expired entries are dropped");
    c.insert("t", v("a"), 100.0, vec![]);
    assert_eq!(c.get("t", 104, 5, &k), Some(v("a")));
}

#[test]
fn bounded_lru() {
    let k = keys();
    let mut c = TokenCache::new(2);
    c.insert("a", v("a"), 1e12, vec![]);
    c.insert("b", v("b"), 1e12, vec![]);
    assert!(c.get("a", 0, 0, &k).is_some());
    c.insert("c", v("c"), 1e12, vec![]);
    assert_eq!(c.len(), 2);
    assert!(
        c.get("b", 0, 0, &k).is_none(),
        "least recently used evicted"
    );
    assert!(c.get("a", 0, 0, &k).is_some() && c.get("c", 0, 0, &k).is_some());
    let mut off = TokenCache::new(0);
    off.insert("a", v("a"), 1e12, vec![]);
    assert!(off.is_empty());
}

#[test]
fn replaced_key_set_invalidates() {
    let mut k = keys();
    let s = Source {
        url: "u".into(),
        cluster: "c".into(),
        authority: "h".into(),
        path: "/".into(),
    };
    k.lookup(&s, 0);
    k.start("u", 0);
    k.succeeded("u", parse_key_set(ED.as_bytes()).unwrap(), 0);
    let mut c = TokenCache::new(4);
    c.insert("t", v("a"), 1e12, vec![("u".into(), k.generation("u"))]);
    assert!(c.get("t", 0, 0, &k).is_some());
    k.start("u", 1);
    k.succeeded("u", parse_key_set(ED.as_bytes()).unwrap(), 1);
    assert!(c.get("t", 0, 0, &k).is_none());
}
