//! The cross-section load checks, each a configuration that would
//! otherwise void a policy or a budget (`docs/contract.md#where-a-request-lands-decides`).

use crate::config::{self, ConfigError};

fn parse(endpoints: &str, gateway: &str) -> Result<config::Plan, Vec<ConfigError>> {
    let json = format!(
        r#"{{"proxy":{{"endpoints":{endpoints}}},"backend":{{"auth":{{"externalAccess":[{{"type":"static","options":{{"token":"static-token-0123","subject":"ci"}}}}]}}}},"gateway":{gateway}}}"#
    );
    config::parse(json.as_bytes(), &|_| None)
}

fn refused_at(result: Result<config::Plan, Vec<ConfigError>>, path: &str, says: &str) {
    let errs = result.unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.path == path && e.message.contains(says)),
        "{path}: {errs:?}"
    );
}

#[test]
fn a_per_principal_budget_reached_through_an_endpoint_that_reads_no_token_is_refused() {
    let budget = r#"{"rateLimits":{"/b":{"perPrincipal":{"requests":1,"seconds":60}},"/a":{}}}"#;
    // An open endpoint inside the budgeted target, around it, or equal.
    for a in [
        r#"{"target":"http://svc/api/pub","credentials":"dangerously-allow-unauthenticated"}"#,
        r#"{"target":"http://svc/","credentials":"dangerously-allow-unauthenticated"}"#,
        r#"{"target":"http://svc/api","credentials":"dangerously-allow-unauthenticated"}"#,
    ] {
        let endpoints = format!(r#"{{"/b":"http://svc/api","/a":{a}}}"#);
        refused_at(
            parse(&endpoints, budget),
            "gateway.rateLimits./b.perPrincipal",
            "'/a'",
        );
    }
    // Once it requires credentials, the budget counts its requests too.
    let endpoints =
        r#"{"/b":"http://svc/api","/a":{"target":"http://svc/api/pub","credentials":"require"}}"#;
    assert!(parse(endpoints, budget).is_ok());
    let endpoints = r#"{"/b":"http://svc/api","/a":{"target":"http://svc/api/pub","credentials":"dangerously-allow-unauthenticated"}}"#;
    // A total counts without a principal: fine.
    let total = r#"{"rateLimits":{"/b":{"total":{"requests":1,"seconds":60}},"/a":{}}}"#;
    assert!(parse(endpoints, total).is_ok());
}

#[test]
fn rules_of_a_rewriting_endpoint_that_others_land_under_are_refused() {
    let endpoints = r#"{"/a":{"target":"http://svc/","pathRewrite":{"^/api/proxy/a/?":"/v1/"}},"/b":"http://svc/v1"}"#;
    let gateway = r#"{"access":{"/a":{"allow":["external"],"rules":[{"path":"/admin","allow":["subject:root"]}]},"/b":{}}}"#;
    refused_at(parse(endpoints, gateway), "gateway.access./a.rules", "'/b'");
    // Without another endpoint on its target, or without paths in its
    // rules, nothing is lost.
    let alone = r#"{"/a":{"target":"http://svc/","pathRewrite":{"^/api/proxy/a/?":"/v1/"}}}"#;
    let only_a = r#"{"access":{"/a":{"allow":["external"],"rules":[{"path":"/admin","allow":["subject:root"]}]}}}"#;
    assert!(parse(alone, only_a).is_ok());
    let by_method = r#"{"access":{"/a":{"allow":["external"],"rules":[{"methods":["DELETE"],"allow":["subject:root"]}]},"/b":{}}}"#;
    assert!(parse(endpoints, by_method).is_ok());
}

#[test]
fn a_rule_path_with_dot_segments_never_matches_and_is_refused() {
    for path in ["/x/./y", "/x/../y", "/.", "/..", "/a/.."] {
        let gateway = format!(
            r#"{{"access":{{"/pd":{{"allow":["user"],"rules":[{{"path":"{path}","allow":["external"]}}]}}}}}}"#
        );
        refused_at(
            parse(r#"{"/pd":"http://pd.test"}"#, &gateway),
            "gateway.access./pd.rules[0].path",
            "'.'",
        );
    }
}

/// One mistake, one error: an endpoint refused for its own mistake keeps
/// its entries in `gateway.access` and `gateway.rateLimits`, which are
/// neither reported again as naming no endpoint nor left unchecked.
#[test]
fn an_endpoint_with_a_mistake_is_reported_once_not_again_by_the_entries_naming_it() {
    let mistakes = [
        r#"{"target":"http://sonar/api","credentails":"require"}"#,
        r#"{"target":"http://sonar/api","credentials":"maybe"}"#,
        r#"{"target":"not a url"}"#,
        r#"{"credentials":"require"}"#,
        r#"{"target":"http://sonar/api","allowedMethods":"GET"}"#,
        r#"{"target":"http://sonar/api","headers":{"Connection":"x"}}"#,
        "42",
    ];
    let policies = r#"{"access":{"/sonarqube":{"allow":["user"]}},"rateLimits":{"/sonarqube":{"total":{"requests":10,"seconds":60}}}}"#;
    for m in mistakes {
        let endpoints = format!(r#"{{"/sonarqube":{m},"/ok":"http://ok"}}"#);
        let alone = parse(&endpoints, "{}").unwrap_err();
        assert!(!alone.is_empty(), "{m}");
        let with_policies = parse(&endpoints, policies).unwrap_err();
        assert_eq!(with_policies, alone, "{m}");
        // A mistake inside an entry for that endpoint is still reported.
        let bad_entry = r#"{"access":{"/sonarqube":{"alow":["user"]}},"rateLimits":{"/sonarqube":{"total":{"requests":0,"seconds":60}}}}"#;
        let errs = parse(&endpoints, bad_entry).unwrap_err();
        for path in [
            "gateway.access./sonarqube.alow",
            "gateway.rateLimits./sonarqube.total.requests",
        ] {
            assert!(errs.iter().any(|e| e.path == path), "{m}: {path}: {errs:?}");
        }
    }
    // An entry naming no endpoint at all is still an error, and so is one
    // naming an endpoint that skipInvalidProxies leaves out.
    refused_at(
        parse(r#"{"/ok":"http://ok"}"#, policies),
        "gateway.access./sonarqube",
        "names no endpoint",
    );
    let json = format!(
        r#"{{"proxy":{{"skipInvalidProxies":true,"endpoints":{{"/sonarqube":{{"target":"http://s","credentails":"x"}}}}}},"gateway":{policies}}}"#
    );
    refused_at(
        config::parse(json.as_bytes(), &|_| None),
        "gateway.rateLimits./sonarqube",
        "names no endpoint",
    );
}
