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
