//! `gateway.rateLimits` in real Envoy with two workers: a principal gets
//! exactly its budget per window across both (one shared counter), another
//! principal its own, the total caps everyone, the budget refills with the
//! next window, and a refusal is 429 with Backstage's body shape and
//! `retry-after`, reaching nobody.

use backstage_proxy_testkit as support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::*;

const A: &str = "static-token-aaaaaaaa";
const B: &str = "static-token-bbbbbbbb";
const C: &str = "static-token-cccccccc";

/// Waits until a window of `seconds` has at least `need` ms left.
fn start_of_window(seconds: u64, need_ms: u64) {
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let left = seconds * 1000 - now % (seconds * 1000);
        if left >= need_ms {
            return;
        }
        std::thread::sleep(Duration::from_millis(left + 20));
    }
}

#[test]
fn budgets_hold_across_two_workers_and_refill() {
    let up = Upstream::start(&[]);
    let p = up.port;
    let tokens = [(A, "a"), (B, "b"), (C, "c")]
        .iter()
        .map(|(t, s)| format!(r#"{{"type":"static","options":{{"token":"{t}","subject":"{s}"}}}}"#))
        .collect::<Vec<_>>()
        .join(",");
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":"http://127.0.0.1:{p}/svc","/capped":"http://127.0.0.1:{p}/capped"}}}},
            "backend":{{"auth":{{"externalAccess":[{tokens}]}}}},
            "gateway":{{"rateLimits":{{
              "/svc":{{"perPrincipal":{{"requests":5,"seconds":4}}}},
              "/capped":{{"total":{{"requests":3,"seconds":4}}}}}}}}}}"#
    );
    let mut opts = EnvoyOptions::new(config).cluster(cluster_for_port(p), p);
    opts.concurrency = 2;
    let envoy = Envoy::start(opts);

    // Each request on its own connection, so both workers take some.
    let send = |token: &str, path: &str| {
        let m = unique();
        let r = envoy.request(
            "GET",
            &format!("/api/proxy{path}?{m}"),
            &[("authorization", &format!("Bearer {token}"))],
        );
        (r, m)
    };
    start_of_window(4, 3000);
    let mut ok = 0;
    for _ in 0..12 {
        let (r, m) = send(A, "/svc/x");
        match r.status {
            200 => ok += 1,
            429 => {
                let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
                assert!((1..=4).contains(&retry), "{retry}");
                let body = r.json();
                assert_eq!(body["error"]["name"], "TooManyRequestsError");
                assert_eq!(body["response"]["statusCode"], 429);
                up.assert_never(&m);
            }
            s => panic!("status {s}: {}", r.text()),
        }
    }
    assert_eq!(ok, 5, "exactly the budget across both workers");
    // Another principal: its own budget.
    let ok_b = (0..7).filter(|_| send(B, "/svc/x").0.status == 200).count();
    assert_eq!(ok_b, 5);
    // A total: three for everyone together.
    let ok_all = [A, B, C, A, B, C]
        .iter()
        .filter(|t| send(t, "/capped/x").0.status == 200)
        .count();
    assert_eq!(ok_all, 3);
    // Both workers took connections: the count is the gateway's, not one
    // worker's.
    let stats = envoy.stats();
    for w in ["worker_0", "worker_1"] {
        let n: u64 = stats
            .iter()
            .filter(|(k, _)| {
                k.starts_with("listener.") && k.ends_with(&format!("{w}.downstream_cx_total"))
            })
            .map(|(_, v)| *v)
            .sum();
        assert!(n > 0, "{w} took no connection: {stats:?}");
    }
    assert_eq!(
        envoy.counter("wasmcustom.backstage_proxy.denied.rate_limited"),
        7 + 2 + 3
    );

    // The next window refills.
    start_of_window(4, 3000);
    assert_eq!(send(A, "/svc/x").0.status, 200);
}
