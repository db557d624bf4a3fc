//! The service's configuration gives each budget its descriptor, in the
//! service's units.

use super::*;
use backstage_proxy_core::config;

fn plan(gateway: &str) -> Plan {
    let json = format!(
        r#"{{"proxy":{{"endpoints":{{"/pagerduty":"https://api.pagerduty.com","/github":"https://api.github.com","/odd%key":"http://odd.test"}}}},"gateway":{gateway}}}"#
    );
    config::parse(json.as_bytes(), &|_| None).unwrap()
}

#[test]
fn each_budget_becomes_a_descriptor_in_the_services_units() {
    let p = plan(
        r#"{"rateLimitService":{"url":"http://ratelimit.ratelimit.svc:8081","domain":"edge"},
            "rateLimits":{"/pagerduty":{"perPrincipal":{"requests":100,"seconds":60},"total":{"requests":1000,"seconds":3600}},
                          "/odd%key":{"total":{"requests":5,"seconds":1}}}}"#,
    );
    let c = service_config(&p).unwrap().unwrap();
    assert_eq!(
        c,
        json!({ "domain": "edge", "descriptors": [
            { "key": "backstage_proxy_endpoint", "value": "/pagerduty",
              "rate_limit": { "unit": "hour", "requests_per_unit": 1000 },
              "descriptors": [{ "key": "backstage_proxy_principal",
                                "rate_limit": { "unit": "minute", "requests_per_unit": 100 } }] },
            // The value as the filter sends it: percent-encoded.
            { "key": "backstage_proxy_endpoint", "value": "/odd%25key",
              "rate_limit": { "unit": "second", "requests_per_unit": 5 } }
        ] })
    );
    // No budget, no descriptor: /github is never counted.
    assert!(!c.to_string().contains("/github"));
}

#[test]
fn without_the_service_there_is_nothing_to_configure() {
    let p = plan(r#"{"rateLimits":{"/github":{"total":{"requests":5,"seconds":120}}}}"#);
    assert!(service_config(&p).is_none());
}
