//! `gateway.rateLimitService`: what the filter hands Envoy's rate
//! limit filter, and what a caller can never choose.

use super::*;
use crate::auth::AuthState;
use crate::config;
use crate::decision::{decide, header_view, Decision};
use crate::ratelimit::{COUNTERS_PER_ENDPOINT, ENDPOINT_HEADER, PRINCIPAL_HEADER};

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
        headers: &header_view(&headers),
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
    hand_to_service(&p, &header_view(&h), &mut f);
    assert_eq!(set_of(&f, ENDPOINT_HEADER), Some("/pd"));
    // A '%' in the subject is encoded, so values stay distinct.
    assert_eq!(set_of(&f, PRINCIPAL_HEADER), Some("external|ci%25bot"));
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
        (ENDPOINT_HEADER, "/gh"),
        (PRINCIPAL_HEADER, "user:default/victim"),
        (PRINCIPAL_HEADER, "user:default/other"),
    ];
    // On a limited endpoint: replaced by the filter's values.
    let (mut f, h) = forward(&p, "/api/proxy/pd", &forged);
    hand_to_service(&p, &header_view(&h), &mut f);
    assert_eq!(set_of(&f, ENDPOINT_HEADER), Some("/pd"));
    assert_eq!(set_of(&f, PRINCIPAL_HEADER), Some("external|ci%25bot"));
    // On an endpoint without budgets: removed, so no descriptor at all.
    let (mut f, h) = forward(&p, "/api/proxy/gh", &forged);
    hand_to_service(&p, &header_view(&h), &mut f);
    assert_eq!(set_of(&f, ENDPOINT_HEADER), None);
    assert!(removes(&f, ENDPOINT_HEADER));
    assert!(removes(&f, PRINCIPAL_HEADER));
    // Without a principal: the endpoint only (its total), the
    // caller's principal removed.
    let (mut f, h) = forward(&p, "/api/proxy/open", &forged[1..]);
    hand_to_service(&p, &header_view(&h), &mut f);
    assert_eq!(set_of(&f, ENDPOINT_HEADER), Some("/open"));
    assert_eq!(set_of(&f, PRINCIPAL_HEADER), None);
    assert!(removes(&f, PRINCIPAL_HEADER));
}

#[test]
fn outside_the_prefix_a_callers_copies_are_removed_too() {
    // A gateway's rate limits can read the headers on any of its
    // routes (Istio's apply to the whole virtual host).
    let p = plan(true);
    let headers = vec![
        (ENDPOINT_HEADER.to_string(), b"/pd".to_vec()),
        (PRINCIPAL_HEADER.to_string(), b"victim".to_vec()),
    ];
    let request = Request {
        method: "GET",
        path: Some("/catalog/entities"),
        authority: "gw",
        downstream_tls: false,
        headers: &header_view(&headers),
        client_address: None,
        now_ms: 1_800_000_000_000,
    };
    match decide(&p, &mut AuthState::new(&p), &request) {
        Decision::PassThrough { remove } => {
            for name in [ENDPOINT_HEADER, PRINCIPAL_HEADER] {
                assert!(remove.iter().any(|r| r == name), "{remove:?}");
            }
        }
        other => panic!("expected a pass-through, got {other:?}"),
    }
}

#[test]
fn without_the_service_a_callers_copies_are_removed_all_the_same() {
    // A rate limit configuration left behind after the service was
    // switched off must read nothing a client sent.
    let p = plan(false);
    let forged = [
        BEARER,
        (ENDPOINT_HEADER, "/gh"),
        (PRINCIPAL_HEADER, "user:default/victim"),
    ];
    for path in ["/api/proxy/pd", "/api/proxy/gh"] {
        let (mut f, h) = forward(&p, path, &forged);
        assert!(
            !hand_to_service(&p, &header_view(&h), &mut f),
            "{path}: nothing handed over"
        );
        assert!(
            removes(&f, ENDPOINT_HEADER) && removes(&f, PRINCIPAL_HEADER),
            "{path}"
        );
        assert_eq!(set_of(&f, ENDPOINT_HEADER), None);
    }
}

#[test]
fn without_the_service_nothing_is_handed_over() {
    let p = plan(false);
    let (mut f, h) = forward(&p, "/api/proxy/pd", &[BEARER]);
    let before = (f.set.clone(), f.remove.clone());
    hand_to_service(&p, &header_view(&h), &mut f);
    assert_eq!((f.set, f.remove), before);
}

#[test]
fn with_the_service_the_filter_creates_no_counters_of_its_own() {
    assert!(counter_keys(&plan(true)).is_empty());
    // Without it, every budget's counters: /pd per principal
    // (1,024 slots), /open in total.
    let local = counter_keys(&plan(false));
    assert_eq!(
        local.len(),
        COUNTERS_PER_ENDPOINT as usize + 1,
        "{:?}",
        &local[..3]
    );
}

/// Endpoints whose `allowedHeaders` list the hand-over headers: the
/// allow-list keeps a caller's copies, so only the hand-over's own removal
/// stands between them and the rate limit filter.
fn plan_allowing_the_headers(service: bool) -> Plan {
    let svc = if service {
        r#""rateLimitService":{"url":"http://ratelimit.test:8081"},"#
    } else {
        ""
    };
    let allowed = r#""allowedHeaders":["X-Backstage-Proxy-Ratelimit-Endpoint","x-backstage-proxy-ratelimit-principal"]"#;
    let cfg = format!(
        r#"{{"proxy":{{"endpoints":{{"/pd":{{"target":"http://pd.test",{allowed}}},"/gh":{{"target":"http://gh.test",{allowed}}},
            "/none":{{"target":"http://none.test",{allowed}}},
            "/open":{{"target":"http://open.test","credentials":"dangerously-allow-unauthenticated",{allowed}}}}}}},
          "backend":{{"auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{TOKEN}","subject":"ci%2Fbot"}}}}]}}}},
          "gateway":{{{svc}"rateLimits":{{"/pd":{{"perPrincipal":{{"requests":5,"seconds":60}},"total":{{"requests":50,"seconds":60}}}},
                                        "/none":{{}},
                                        "/open":{{"total":{{"requests":5,"seconds":1}}}}}}}}}}"#
    );
    config::parse(cfg.as_bytes(), &|_| None).unwrap()
}

/// Whether a forged value could survive: the request keeps the header
/// unless it is removed or set (replacing every value) by the filter.
fn survives(f: &Forward<'_>, name: &str, forged: &str) -> bool {
    !removes(f, name) && set_of(f, name).is_none_or(|v| v == forged)
}

#[test]
fn a_forged_descriptor_never_survives_the_hand_over_even_where_the_endpoint_allows_the_header() {
    let forged_endpoint = "/gh";
    let forged_principal = "user|user:default/victim";
    let forged = [
        (ENDPOINT_HEADER, forged_endpoint),
        (PRINCIPAL_HEADER, forged_principal),
        (PRINCIPAL_HEADER, "user|user:default/other"),
    ];
    for service in [true, false] {
        let p = plan_allowing_the_headers(service);
        for (path, bearer) in [
            // Budgets and a principal: both replaced (with the service) or
            // removed (without).
            ("/api/proxy/pd/incidents", true),
            // Budgets, no principal: the endpoint replaced or removed, the
            // principal removed.
            ("/api/proxy/open/x", false),
            ("/api/proxy/open/x", true),
            // An entry without budgets of its own, and no entry at all:
            // both removed.
            ("/api/proxy/none/x", true),
            ("/api/proxy/gh/x", true),
        ] {
            let mut list = forged.to_vec();
            if bearer {
                list.push(BEARER);
            }
            let (mut f, h) = forward(&p, path, &list);
            let handed = hand_to_service(&p, &header_view(&h), &mut f);
            assert!(
                !survives(&f, ENDPOINT_HEADER, forged_endpoint),
                "{service} {path} {bearer}: {f:?}"
            );
            assert!(
                !survives(&f, PRINCIPAL_HEADER, forged_principal),
                "{service} {path} {bearer}: {f:?}"
            );
            // Whatever is set is the filter's, and set only when handed over.
            let limited = service
                && !path.starts_with("/api/proxy/none")
                && !path.starts_with("/api/proxy/gh");
            assert_eq!(handed, limited, "{service} {path}");
            assert_eq!(set_of(&f, ENDPOINT_HEADER).is_some(), limited, "{path}");
            let principal = set_of(&f, PRINCIPAL_HEADER);
            // The open endpoint reads no token: no principal to hand over.
            let counted = limited && bearer && path.starts_with("/api/proxy/pd");
            assert_eq!(principal.is_some(), counted, "{path}");
            if let Some(v) = principal {
                assert_eq!(v, "external|ci%252Fbot", "{path}");
            }
            // A header is either set or removed, never both.
            for name in [ENDPOINT_HEADER, PRINCIPAL_HEADER] {
                assert!(
                    !(removes(&f, name) && set_of(&f, name).is_some()),
                    "{path}: {name}"
                );
            }
        }
    }
}

#[test]
fn an_endpoint_whose_entry_has_no_budget_is_never_handed_to_the_service() {
    let p = plan_allowing_the_headers(true);
    for path in ["/api/proxy/none", "/api/proxy/none/x", "/api/proxy/NONE/x"] {
        let (mut f, h) = forward(&p, path, &[BEARER]);
        assert!(!hand_to_service(&p, &header_view(&h), &mut f), "{path}");
        assert_eq!(set_of(&f, ENDPOINT_HEADER), None, "{path}");
        assert_eq!(set_of(&f, PRINCIPAL_HEADER), None, "{path}");
    }
}
