//! Budgets across workers: two "workers" share one in-memory store with
//! Envoy's compare-and-swap rules.

use super::*;
use crate::test_shared::Memory;

fn created(limit: &RateLimit, scope: &str) -> Memory {
    let mut m = Memory::default();
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
        inner: Memory,
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
    let mut m = Memory::default();
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
    assert_eq!(before, SLOTS as usize);
    assert_eq!(m.len(), before, "no key beyond the configured slots");
}

mod service {
    //! `gateway.rateLimitService`: what the filter hands Envoy's rate
    //! limit filter, and what a caller can never choose.
    use super::super::{descriptor_value, hand_over};
    use crate::auth::AuthState;
    use crate::config::{self, Plan, RATE_LIMIT_ENDPOINT_HEADER, RATE_LIMIT_PRINCIPAL_HEADER};
    use crate::decision::{decide, Decision, Forward, Request};

    const TOKEN: &str = "static-token-abc";

    fn plan(service: bool) -> Plan {
        let svc = if service {
            r#""rateLimitService":{"url":"http://ratelimit.test:8081"},"#
        } else {
            ""
        };
        let cfg = format!(
            r#"{{"proxy":{{"endpoints":{{"/pd":"http://pd.test","/gh":"http://gh.test",
                "/open":{{"target":"http://open.test","credentials":"dangerously-allow-unauthenticated"}}}}}},
              "backend":{{"auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{TOKEN}","subject":"ci%bot"}}}}]}}}},
              "gateway":{{{svc}"rateLimits":{{"/pd":{{"perPrincipal":{{"requests":5,"seconds":60}}}},
                                            "/open":{{"total":{{"requests":5,"seconds":1}}}}}}}}}}"#
        );
        config::parse(cfg.as_bytes(), &|_| None).unwrap()
    }

    fn forward(
        plan: &Plan,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (Forward<'static>, Vec<(String, Vec<u8>)>) {
        let headers: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect();
        let request = Request {
            method: "GET",
            path: Some(path),
            authority: "gw",
            downstream_tls: false,
            headers: &headers,
            client_address: None,
            now_ms: 1_800_000_000_000,
        };
        match decide(plan, &mut AuthState::new(plan), &request).into_owned() {
            Decision::Forward(f) => (f, headers),
            other => panic!("{path}: expected a forward, got {other:?}"),
        }
    }

    fn set_of<'f>(f: &'f Forward<'_>, name: &str) -> Option<&'f str> {
        f.set
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    fn removes(f: &Forward<'_>, name: &str) -> bool {
        f.remove.iter().any(|r| r == name)
    }

    const BEARER: (&str, &str) = ("authorization", "Bearer static-token-abc");

    #[test]
    fn a_limited_endpoint_hands_over_its_key_and_the_principal_before_the_destination() {
        let p = plan(true);
        let (mut f, h) = forward(&p, "/api/proxy/pd/incidents", &[BEARER]);
        let destination = f.set.last().cloned();
        hand_over(&p, &h, &mut f);
        assert_eq!(set_of(&f, RATE_LIMIT_ENDPOINT_HEADER), Some("/pd"));
        // A '%' in the subject is encoded, so values stay distinct.
        assert_eq!(set_of(&f, RATE_LIMIT_PRINCIPAL_HEADER), Some("ci%25bot"));
        assert_eq!(
            f.set.last().cloned(),
            destination,
            "the destination stays last"
        );
    }

    #[test]
    fn a_callers_own_copies_never_choose_the_descriptors() {
        let p = plan(true);
        let forged = [
            BEARER,
            (RATE_LIMIT_ENDPOINT_HEADER, "/gh"),
            (RATE_LIMIT_PRINCIPAL_HEADER, "user:default/victim"),
            (RATE_LIMIT_PRINCIPAL_HEADER, "user:default/other"),
        ];
        // On a limited endpoint: replaced by the filter's values.
        let (mut f, h) = forward(&p, "/api/proxy/pd", &forged);
        hand_over(&p, &h, &mut f);
        assert_eq!(set_of(&f, RATE_LIMIT_ENDPOINT_HEADER), Some("/pd"));
        assert_eq!(set_of(&f, RATE_LIMIT_PRINCIPAL_HEADER), Some("ci%25bot"));
        // On an endpoint without budgets: removed, so no descriptor at all.
        let (mut f, h) = forward(&p, "/api/proxy/gh", &forged);
        hand_over(&p, &h, &mut f);
        assert_eq!(set_of(&f, RATE_LIMIT_ENDPOINT_HEADER), None);
        assert!(removes(&f, RATE_LIMIT_ENDPOINT_HEADER));
        assert!(removes(&f, RATE_LIMIT_PRINCIPAL_HEADER));
        // Without a principal: the endpoint only (its total), the
        // caller's principal removed.
        let (mut f, h) = forward(&p, "/api/proxy/open", &forged[1..]);
        hand_over(&p, &h, &mut f);
        assert_eq!(set_of(&f, RATE_LIMIT_ENDPOINT_HEADER), Some("/open"));
        assert_eq!(set_of(&f, RATE_LIMIT_PRINCIPAL_HEADER), None);
        assert!(removes(&f, RATE_LIMIT_PRINCIPAL_HEADER));
    }

    #[test]
    fn outside_the_prefix_a_callers_copies_are_removed_too() {
        // A gateway's rate limits can read the headers on any of its
        // routes (Istio's apply to the whole virtual host).
        let p = plan(true);
        let headers = vec![
            (RATE_LIMIT_ENDPOINT_HEADER.to_string(), b"/pd".to_vec()),
            (RATE_LIMIT_PRINCIPAL_HEADER.to_string(), b"victim".to_vec()),
        ];
        let request = Request {
            method: "GET",
            path: Some("/catalog/entities"),
            authority: "gw",
            downstream_tls: false,
            headers: &headers,
            client_address: None,
            now_ms: 1_800_000_000_000,
        };
        match decide(&p, &mut AuthState::new(&p), &request) {
            Decision::PassThrough { remove } => {
                for name in [RATE_LIMIT_ENDPOINT_HEADER, RATE_LIMIT_PRINCIPAL_HEADER] {
                    assert!(remove.iter().any(|r| r == name), "{remove:?}");
                }
            }
            other => panic!("expected a pass-through, got {other:?}"),
        }
    }

    #[test]
    fn without_the_service_nothing_is_handed_over() {
        let p = plan(false);
        let (mut f, h) = forward(&p, "/api/proxy/pd", &[BEARER]);
        let before = (f.set.clone(), f.remove.clone());
        hand_over(&p, &h, &mut f);
        assert_eq!((f.set, f.remove), before);
    }

    #[test]
    fn with_the_service_the_filter_creates_no_counters_of_its_own() {
        assert!(super::super::shared_keys(&plan(true)).is_empty());
        // Without it, every budget's counters: /pd per principal
        // (1,024 slots), /open in total.
        let local = super::super::shared_keys(&plan(false));
        assert_eq!(
            local.len(),
            super::super::SLOTS as usize + 1,
            "{:?}",
            &local[..3]
        );
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

    #[test]
    fn the_service_is_validated_with_json_paths() {
        let base = r#"{"proxy":{"endpoints":{"/pd":"https://api.pagerduty.com"}},"gateway":"#;
        let ok = format!(
            r#"{base}{{"rateLimitService":{{"url":"http://rl.ratelimit.svc:8081"}},"rateLimits":{{"/pd":{{"perPrincipal":{{"requests":5,"seconds":3600}}}}}}}}}}"#
        );
        let p = config::parse(ok.as_bytes(), &|_| None).unwrap();
        let s = p.gateway.rate_limit_service.unwrap();
        assert_eq!(
            (s.domain.as_str(), s.timeout_ms, s.failure_mode_deny),
            ("backstage_proxy", 20, false)
        );
        assert_eq!(s.cluster, "http_rl.ratelimit.svc_8081");
        for (gateway, path) in [
            (r#"{"rateLimitService":{}}"#, "gateway.rateLimitService.url"),
            (
                r#"{"rateLimitService":{"url":"grpc://rl:8081"}}"#,
                "gateway.rateLimitService.url",
            ),
            (
                r#"{"rateLimitService":{"url":"http://rl:8081/v3"}}"#,
                "gateway.rateLimitService.url",
            ),
            (
                r#"{"rateLimitService":{"url":"http://rl:8081","domain":"a b"}}"#,
                "gateway.rateLimitService.domain",
            ),
            (
                r#"{"rateLimitService":{"url":"http://rl:8081","timeoutMs":0}}"#,
                "gateway.rateLimitService.timeoutMs",
            ),
            (
                r#"{"rateLimitService":{"url":"http://rl:8081","failureModeDeny":"yes"}}"#,
                "gateway.rateLimitService.failureModeDeny",
            ),
            (
                r#"{"rateLimitService":{"url":"http://rl:8081","redis":"x"}}"#,
                "gateway.rateLimitService.redis",
            ),
            (
                r#"{"rateLimitService":"http://rl:8081"}"#,
                "gateway.rateLimitService",
            ),
            // The service counts in whole units: a 2-minute window is not one.
            (
                r#"{"rateLimitService":{"url":"http://rl:8081"},"rateLimits":{"/pd":{"total":{"requests":5,"seconds":120}}}}"#,
                "gateway.rateLimits./pd.total.seconds",
            ),
        ] {
            let json = format!("{base}{gateway}}}");
            let errs = config::parse(json.as_bytes(), &|_| None).unwrap_err();
            assert!(errs.iter().any(|e| e.path == path), "{gateway}: {errs:?}");
        }
        // A service without budgets is never asked: a warning, as `check`
        // prints it.
        let idle = format!(r#"{base}{{"rateLimitService":{{"url":"http://rl:8081"}}}}}}"#);
        let p = config::parse(idle.as_bytes(), &|_| None).unwrap();
        assert!(
            p.warnings.iter().any(|w| w.contains("never asked")),
            "{:?}",
            p.warnings
        );
        // The same window is fine for the filter's own counters.
        let local = format!(
            r#"{base}{{"rateLimits":{{"/pd":{{"total":{{"requests":5,"seconds":120}}}}}}}}}}"#
        );
        assert!(config::parse(local.as_bytes(), &|_| None).is_ok());
    }
}
