//! Every Backstage token kind through real Envoy, with key sets fetched
//! through Envoy from a loopback key-set server that rotates keys, goes
//! down, stalls, answers garbage or redirects, and counts its fetches.

use backstage_proxy_testkit as support;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::mint::*;
use support::*;

const AUTH: &str = "/api/auth/.well-known/jwks.json";
const CATALOG: &str = "/api/catalog/.backstage/auth/v1/jwks.json";
const IDP: &str = "/idp/jwks";

struct Gw {
    envoy: Envoy,
    keys: KeyServer,
    up: Upstream,
}

fn gateway(extra: &str, concurrency: u32) -> Gw {
    let keys = KeyServer::start();
    let up = Upstream::start(&[]);
    let (kp, upp) = (keys.port, up.port);
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":"http://127.0.0.1:{upp}/base"}}}},
            "backend":{{"baseUrl":"http://127.0.0.1:{kp}","auth":{{"externalAccess":[
              {{"type":"jwks","options":{{"url":"http://127.0.0.1:{kp}{IDP}","issuer":"https://idp.example","audience":"edge","subjectPrefix":"idp"}}}}]}}}},
            "gateway":{{"jwksFetchTimeoutMs":1000{extra}}}}}"#
    );
    let mut opts = EnvoyOptions::new(config)
        .cluster(cluster_for_port(upp), upp)
        .cluster(cluster_for_port(kp), kp);
    opts.concurrency = concurrency;
    Gw {
        envoy: Envoy::start(opts),
        keys,
        up,
    }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

impl Gw {
    fn call(&self, token: &str) -> (Response, String) {
        let m = unique();
        let r = self.envoy.get(
            &format!("/api/proxy/svc/x?{m}"),
            &[("authorization", &bearer(token))],
        );
        (r, m)
    }

    fn assert_allowed(&self, token: &str) {
        let (r, m) = self.call(token);
        assert_eq!(r.status, 200, "{}", r.text());
        let seen = self.up.find(&m).unwrap();
        assert_eq!(seen.target, format!("/base/x?{m}"));
        assert_eq!(seen.header("authorization"), None);
    }

    fn assert_refused(&self, token: &str, status: u16) -> serde_json::Value {
        let (r, m) = self.call(token);
        assert_eq!(r.status, status, "{}", r.text());
        self.up.assert_never(&m);
        r.json()
    }
}

fn now_s() -> u64 {
    now()
}

#[test]
fn each_token_kind_is_verified_through_fetched_key_sets() {
    let gw = gateway("", 1);
    let auth = Es256::new(1, "auth-1");
    let cat = Es256::new(2, "catalog-1");
    let idp = Ed::new(3, "idp-1");
    let rs = Rsa::test_key("auth-rsa");
    gw.keys.set(AUTH, KeyMode::Serve(key_set(&[&auth, &rs])));
    gw.keys.set(CATALOG, KeyMode::Serve(key_set(&[&cat])));
    gw.keys.set(IDP, KeyMode::Serve(key_set(&[&idp])));
    let t = now_s();

    gw.assert_allowed(&user_token(&auth, "user:default/jane", t, t + 3600));
    gw.assert_allowed(&user_token(&rs, "user:default/jane", t, t + 3600));
    gw.assert_allowed(&plugin_token(&cat, "catalog", "proxy", t, t + 3600, None));
    let obo = limited_user_token(&auth, "user:default/jane", t, t + 600);
    gw.assert_allowed(&plugin_token(
        &cat,
        "catalog",
        "proxy",
        t,
        t + 600,
        Some(&obo),
    ));
    gw.assert_allowed(&external_token(
        &idp,
        "https://idp.example",
        "edge",
        "robot",
        t + 60,
    ));
    assert_eq!(
        (
            gw.keys.count(AUTH),
            gw.keys.count(CATALOG),
            gw.keys.count(IDP)
        ),
        (1, 1, 1),
        "one fetch per key set"
    );

    // failure modes, each a 401 that reaches nobody
    let forged = Es256::new(9, "auth-1");
    let body = gw.assert_refused(&user_token(&forged, "user:default/admin", t, t + 60), 401);
    assert_eq!(
        body["error"]["message"],
        "Invalid token; caused by JWSSignatureVerificationFailed: signature verification failed"
    );
    let body = gw.assert_refused(
        &limited_user_token(&auth, "user:default/jane", t, t + 60),
        401,
    );
    assert_eq!(body["error"]["message"], "Illegal limited user token");
    let body = gw.assert_refused(
        &user_token(&auth, "user:default/jane", t - 7200, t - 3600),
        401,
    );
    assert_eq!(
        body["error"]["message"],
        "Invalid token; caused by JWTExpired: \"exp\" claim timestamp check failed"
    );
    let body = gw.assert_refused(
        &plugin_token(&cat, "catalog", "scaffolder", t, t + 60, None),
        401,
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Invalid plugin token"));
    let body = gw.assert_refused(
        &plugin_token(&cat, "../catalog", "proxy", t, t + 60, None),
        401,
    );
    assert_eq!(
        body["error"]["message"],
        "Invalid plugin token: forbidden subject format"
    );
    let bad_obo = limited_user_token(&forged, "user:default/admin", t, t + 60);
    gw.assert_refused(
        &plugin_token(&cat, "catalog", "proxy", t, t + 60, Some(&bad_obo)),
        401,
    );
    let body = gw.assert_refused(
        &external_token(&idp, "https://evil.example", "edge", "robot", t + 60),
        401,
    );
    assert_eq!(body["error"]["message"], "Illegal token");
    // messages never carry token material
    let (r, _) = gw.call(&user_token(&forged, "user:default/admin", t, t + 60));
    assert!(!r.text().contains("auth-1") && !r.text().contains("admin"));
    // none of the refusals cost a fetch
    assert_eq!(
        (
            gw.keys.count(AUTH),
            gw.keys.count(CATALOG),
            gw.keys.count(IDP)
        ),
        (1, 1, 1)
    );
    // Five tokens were verified (each once: refusals are never cached)...
    assert_eq!(
        gw.envoy
            .counter("wasmcustom.backstage_proxy.token_cache.miss"),
        5
    );
    assert_eq!(
        gw.envoy
            .counter("wasmcustom.backstage_proxy.token_cache.hit"),
        0
    );
    // ...and the first one again is a cache hit, not a sixth verification.
    gw.assert_allowed(&user_token(&auth, "user:default/jane", t, t + 3600));
    assert_eq!(
        gw.envoy
            .counter("wasmcustom.backstage_proxy.token_cache.hit"),
        1
    );
    assert_eq!(
        gw.envoy
            .counter("wasmcustom.backstage_proxy.token_cache.miss"),
        5
    );
}

#[test]
fn a_plugin_without_a_key_set_is_refused() {
    let gw = gateway("", 1);
    let t = now_s();
    let key = Es256::new(4, "s");
    let body = gw.assert_refused(&plugin_token(&key, "search", "proxy", t, t + 60, None), 401);
    assert_eq!(body["error"]["message"], "Received a plugin token where the source plugin unexpectedly does not have a JWKS endpoint");
    assert_eq!(gw.keys.count("/api/search/.backstage/auth/v1/jwks.json"), 1);
}

#[test]
fn rotation_adds_with_one_refetch_and_removal_takes_effect_at_refresh() {
    let gw = gateway(r#","jwksCacheSeconds":1,"jwksRefetchCooldownSeconds":1"#, 1);
    let k1 = Es256::new(1, "k1");
    let k2 = Es256::new(2, "k2");
    let t = now_s();
    gw.keys.set(AUTH, KeyMode::Serve(key_set(&[&k1])));
    let old = user_token(&k1, "u", t, t + 3600);
    gw.assert_allowed(&old);
    assert_eq!(gw.keys.count(AUTH), 1);
    // the issuer adds k2: the first k2 token triggers one refetch
    gw.keys.set(AUTH, KeyMode::Serve(key_set(&[&k1, &k2])));
    gw.assert_allowed(&user_token(&k2, "u", t, t + 3600));
    assert!(gw.keys.count(AUTH) >= 2);
    // the issuer drops k1: after the background refresh, k1 tokens (even cached) fail
    gw.keys.set(AUTH, KeyMode::Serve(key_set(&[&k2])));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (r, _) = gw.call(&old);
        if r.status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "k1 still accepted after its removal"
        );
        thread::sleep(Duration::from_millis(200));
    }
    gw.assert_allowed(&user_token(&k2, "u", t, t + 3600));
}

#[test]
fn unknown_kids_refetch_at_most_once_per_cooldown() {
    let gw = gateway("", 1);
    let k1 = Es256::new(1, "k1");
    let t = now_s();
    gw.keys.set(AUTH, KeyMode::Serve(key_set(&[&k1])));
    gw.assert_allowed(&user_token(&k1, "u", t, t + 3600));
    let before = gw.keys.count(AUTH);
    for i in 0..1000 {
        let k = Es256::new(5, &format!("random-{i}"));
        let (r, m) = gw.call(&user_token(&k, "u", t, t + 3600));
        assert_eq!(r.status, 401);
        if i % 100 == 0 {
            gw.up.assert_never(&m);
        }
    }
    let extra = gw.keys.count(AUTH) - before;
    assert!(
        extra <= 1,
        "{extra} extra fetches for 1000 unknown kids within one cooldown"
    );
}

#[test]
fn cold_start_with_200_concurrent_requests_fetches_once_and_answers_all() {
    let gw = Arc::new(gateway("", 1));
    let k1 = Es256::new(1, "k1");
    let t = now_s();
    gw.keys.set(AUTH, KeyMode::Stall(400, key_set(&[&k1])));
    let token = Arc::new(user_token(&k1, "u", t, t + 3600));
    let handles: Vec<_> = (0..200)
        .map(|_| {
            let (gw, token) = (gw.clone(), token.clone());
            thread::spawn(move || gw.call(&token).0.status)
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "{:?}",
        statuses.iter().filter(|s| **s != 200).collect::<Vec<_>>()
    );
    assert_eq!(gw.keys.count(AUTH), 1, "exactly one fetch");
    assert_eq!(gw.up.count(), 200);
}

#[test]
fn key_server_down_at_start_then_up() {
    let gw = gateway("", 1);
    let k1 = Es256::new(1, "k1");
    let t = now_s();
    let token = user_token(&k1, "u", t, t + 3600);
    gw.keys.set(AUTH, KeyMode::Refuse);
    let started = Instant::now();
    let body = gw.assert_refused(&token, 401);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded by the fetch timeout"
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("JWKSUnavailable"));
    // other token kinds keep working meanwhile: none configured here but
    // the plugin's own key set endpoint still answers
    assert_eq!(
        gw.envoy
            .get("/api/proxy/.backstage/auth/v1/jwks.json", &[])
            .status,
        200
    );
    gw.keys.set(AUTH, KeyMode::Serve(key_set(&[&k1])));
    thread::sleep(Duration::from_millis(1100));
    gw.assert_allowed(&token);
    assert!(
        gw.envoy
            .counter("wasmcustom.backstage_proxy.keyset.fetch_failure")
            >= 1
    );
    assert!(
        gw.envoy
            .counter("wasmcustom.backstage_proxy.keyset.fetch_success")
            >= 1
    );
}

#[test]
fn stalled_garbage_redirects_errors_and_oversized_sets_fail_but_never_replace_a_good_set() {
    let k1 = Es256::new(1, "k1");
    let t = now_s();
    let token = user_token(&k1, "u", t, t + 3600);
    for mode in [
        KeyMode::Garbage,
        KeyMode::Redirect("http://127.0.0.1:1/elsewhere".into()),
        KeyMode::Status(500),
        KeyMode::Status(404),
        KeyMode::Serve(r#"{"keys":[]}"#.into()),
        KeyMode::Serve(r#"{"keys":"x"}"#.into()),
        KeyMode::Huge(100_000),
        KeyMode::Stall(3000, key_set(&[&k1])),
    ] {
        // cold: the request is refused once the fetch fails
        let gw = gateway(r#","jwksCacheSeconds":1,"jwksRefetchCooldownSeconds":1"#, 1);
        gw.keys.set(AUTH, mode.clone());
        let started = Instant::now();
        gw.assert_refused(&token, 401);
        assert!(started.elapsed() < Duration::from_secs(3), "{mode:?}");
        // warm: a good set, then the same failure at refresh time: the good set stays
        gw.keys.set(AUTH, KeyMode::Serve(key_set(&[&k1])));
        thread::sleep(Duration::from_millis(1100));
        gw.assert_allowed(&token);
        let good_fetches = gw.keys.count(AUTH);
        gw.keys.set(AUTH, mode.clone());
        thread::sleep(Duration::from_millis(2500));
        // The refresh is due: attempted by now (the Wasm filter's timer),
        // or at the latest by the next request (the native module has no
        // timer of its own: docs/native.md#what-is-shared), which the good
        // set still serves.
        let fresh = user_token(&k1, "u2", t, t + 3600);
        gw.assert_allowed(&fresh);
        let deadline = Instant::now() + Duration::from_secs(2);
        while gw.keys.count(AUTH) <= good_fetches && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        assert!(
            gw.keys.count(AUTH) > good_fetches,
            "{mode:?}: the refresh was attempted"
        );
        gw.assert_allowed(&user_token(&k1, "u3", t, t + 3600));
    }
}

#[test]
fn worker_vms_share_fetched_key_sets() {
    let gw = Arc::new(gateway("", 2));
    let k1 = Es256::new(1, "k1");
    let t = now_s();
    gw.keys.set(AUTH, KeyMode::Stall(200, key_set(&[&k1])));
    // distinct tokens (so no cache helps) on many connections (spread over both workers)
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let gw = gw.clone();
            let token = user_token(&k1, &format!("user:default/u{i}"), t, t + 3600);
            thread::spawn(move || gw.call(&token).0.status)
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let stats = gw.envoy.stats();
    let per_worker: Vec<(&String, &u64)> = stats
        .iter()
        .filter(|(k, _)| k.contains("backstage_proxy.keyset"))
        .collect();
    assert_eq!(
        gw.keys.count(AUTH),
        1,
        "two workers, one fetch: {per_worker:?}"
    );
    // the worker that did not fetch took the set from shared data
    assert!(
        gw.envoy
            .counter("wasmcustom.backstage_proxy.keyset.shared_adopted")
            >= 1,
        "{per_worker:?}"
    );
}

/// Issue: forged plugin tokens, each naming a new plugin, used to fill the
/// VM's key-set table for good (until Envoy restarted), after which valid
/// user, plugin and external tokens were refused. Now: on a fresh VM and on
/// a warm one, a flood of thousands of distinct forged `sub`s displaces
/// nothing, costs the backend a bounded number of fetches, and every valid
/// token kind passes afterwards.
#[test]
fn a_flood_of_forged_plugin_tokens_locks_nobody_out() {
    const WORKERS: u32 = 2;
    let flood_size: usize = std::env::var("FLOOD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let gw = Arc::new(gateway("", WORKERS));
    let auth = Es256::new(1, "auth-1");
    let cat = Es256::new(2, "catalog-1");
    let scaf = Es256::new(4, "scaffolder-1");
    let idp = Ed::new(3, "idp-1");
    gw.keys.set(AUTH, KeyMode::Serve(key_set(&[&auth])));
    gw.keys.set(CATALOG, KeyMode::Serve(key_set(&[&cat])));
    gw.keys.set(
        "/api/scaffolder/.backstage/auth/v1/jwks.json",
        KeyMode::Serve(key_set(&[&scaf])),
    );
    gw.keys.set(IDP, KeyMode::Serve(key_set(&[&idp])));
    let t = now_s();
    let flood = |round: &str| {
        let started = Instant::now();
        let handles: Vec<_> = (0..4)
            .map(|lane| {
                let gw = gw.clone();
                let round = round.to_string();
                thread::spawn(move || {
                    let forger = Es256::new(9, "forged");
                    for i in (lane..flood_size).step_by(4) {
                        let sub = format!("forged-{round}-{i}");
                        let token = plugin_token(&forger, &sub, "proxy", t, t + 600, None);
                        let (r, _) = gw.call(&token);
                        assert_eq!(r.status, 401, "{}", r.text());
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        started.elapsed()
    };
    let valid_tokens_pass = || {
        gw.assert_allowed(&user_token(&auth, "user:default/jane", t, t + 3600));
        gw.assert_allowed(&plugin_token(&cat, "catalog", "proxy", t, t + 3600, None));
        gw.assert_allowed(&external_token(
            &idp,
            "https://idp.example",
            "edge",
            "robot",
            t + 3600,
        ));
    };
    let forged_fetches = |keys: &KeyServer| {
        keys.total()
            - keys.count(AUTH)
            - keys.count(CATALOG)
            - keys.count(IDP)
            - keys.count("/api/scaffolder/.backstage/auth/v1/jwks.json")
    };
    // The bound the store promises: per worker, a burst of 8 cold fetches of
    // learnt sets, then one a second.
    let bound = |elapsed: Duration| WORKERS as usize * (8 + elapsed.as_secs() as usize + 1);

    // A fresh VM: nothing fetched yet.
    let elapsed = flood("cold");
    assert_eq!(gw.up.count(), 0, "a forged token reached the upstream");
    let fetched = forged_fetches(&gw.keys);
    eprintln!("cold flood: {flood_size} forged plugins, {fetched} fetches in {elapsed:?}");
    assert!(
        fetched <= bound(elapsed),
        "{flood_size} forged plugins cost {fetched} fetches in {elapsed:?}"
    );
    thread::sleep(Duration::from_millis(1100));
    valid_tokens_pass();

    // A warm VM: the same again, then a plugin it has never seen.
    let before = forged_fetches(&gw.keys);
    let elapsed = flood("warm");
    assert_eq!(gw.up.count(), 3, "a forged token reached the upstream");
    let fetched = forged_fetches(&gw.keys) - before;
    eprintln!("warm flood: {flood_size} forged plugins, {fetched} fetches in {elapsed:?}");
    assert!(
        fetched <= bound(elapsed),
        "{flood_size} forged plugins cost {fetched} fetches in {elapsed:?}"
    );
    valid_tokens_pass();
    thread::sleep(Duration::from_millis(1100));
    // Each worker has earned a fetch since: the first use of a new plugin
    // passes whichever worker takes it.
    for _ in 0..4 {
        gw.assert_allowed(&plugin_token(
            &scaf,
            "scaffolder",
            "proxy",
            t,
            t + 3600,
            None,
        ));
    }
}

/// Every token kind, forged every way (a foreign key under the right `kid`,
/// `alg: none`, a flipped signature bit, the HS256 confusion keyed with the
/// public key), through real Envoy: 401, nothing reaches the upstream, and
/// the genuine token passes after.
#[test]
fn every_token_kind_refuses_every_forged_signature() {
    let gw = gateway("", 1);
    let auth = Es256::new(1, "auth-1");
    let cat = Es256::new(2, "catalog-1");
    let idp = Ed::new(3, "idp-1");
    gw.keys.set(AUTH, KeyMode::Serve(key_set(&[&auth])));
    gw.keys.set(CATALOG, KeyMode::Serve(key_set(&[&cat])));
    gw.keys.set(IDP, KeyMode::Serve(key_set(&[&idp])));
    let t = now_s();
    let obo = limited_user_token(&auth, "user:default/jane", t, t + 600);
    let cases: Vec<(&str, String, Box<dyn Key>)> = vec![
        (
            "user",
            user_token(&auth, "user:default/jane", t, t + 3600),
            Box::new(Es256::new(9, "auth-1")),
        ),
        (
            "plugin",
            plugin_token(&cat, "catalog", "proxy", t, t + 3600, None),
            Box::new(Es256::new(9, "catalog-1")),
        ),
        (
            "plugin obo",
            plugin_token(&cat, "catalog", "proxy", t, t + 600, Some(&obo)),
            Box::new(Es256::new(9, "catalog-1")),
        ),
        (
            "external",
            external_token(&idp, "https://idp.example", "edge", "robot", t + 3600),
            Box::new(Ed::new(9, "idp-1")),
        ),
    ];
    for (kind, genuine, forger) in &cases {
        let mut parts = genuine.splitn(3, '.');
        let (h, p, s) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let header = String::from_utf8(b64url_decode(h)).unwrap();
        let payload = String::from_utf8(b64url_decode(p)).unwrap();
        let mut sig = b64url_decode(s);
        sig[0] ^= 0x80;
        let none = header
            .replace(r#""alg":"ES256""#, r#""alg":"none""#)
            .replace(r#""alg":"EdDSA""#, r#""alg":"none""#);
        let hs = none.replace(r#""alg":"none""#, r#""alg":"HS256""#);
        let forged = [
            jws(forger.as_ref(), &header, &payload),
            format!("{h}.{p}.{}", b64url(&sig)),
            format!("{}.{p}.", b64url(none.as_bytes())),
            hs256_raw(
                &hs,
                &payload,
                serde_json::to_string(&forger.jwk()).unwrap().as_bytes(),
            ),
        ];
        for f in &forged {
            let body = gw.assert_refused(f, 401);
            assert_eq!(body["response"]["statusCode"], 401, "{kind}");
        }
        gw.assert_allowed(genuine);
    }
}
