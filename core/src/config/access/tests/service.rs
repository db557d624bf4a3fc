//! The load checks and warnings of `gateway.rateLimitService`.

use super::*;

/// With `gateway.rateLimitService` a request is counted for the endpoint
/// it came through only, so an endpoint with budgets whose target holds,
/// equals or lies under another's is refused, naming both
/// (`docs/rate-limits.md#one-budget-for-a-fleet-of-gateways`); targets
/// that do not nest are fine.
#[test]
fn with_the_service_budgets_on_nesting_targets_are_refused_in_every_relation() {
    let parse = |endpoints: &str, limits: &str, service: bool| {
        let svc = if service {
            r#""rateLimitService":{"url":"http://rl:8081"},"#
        } else {
            ""
        };
        let json = format!(
            r#"{{"proxy":{{"endpoints":{endpoints}}},"gateway":{{{svc}"rateLimits":{limits}}}}}"#
        );
        config::parse(json.as_bytes(), &|_| None)
    };
    let budget = r#"{"total":{"requests":9,"seconds":60}}"#;
    for (endpoints, limited, other) in [
        // Its target holds the other's.
        (
            r#"{"/outer":"http://svc.test/api","/inner":"http://svc.test/api/v2"}"#,
            "/outer",
            "/inner",
        ),
        (
            r#"{"/outer":"http://svc.test/","/inner":"http://svc.test/deep/er/path"}"#,
            "/outer",
            "/inner",
        ),
        // Its target lies under the other's.
        (
            r#"{"/outer":"http://svc.test/api","/inner":"http://svc.test/API/v2"}"#,
            "/inner",
            "/outer",
        ),
        (
            r#"{"/outer":"http://svc.test","/inner":"http://svc.test/v2"}"#,
            "/inner",
            "/outer",
        ),
        // Equal targets.
        (
            r#"{"/a":"http://svc.test/api","/b":"http://svc.test/api/"}"#,
            "/a",
            "/b",
        ),
        (
            r#"{"/a":"http://svc.test/Api","/b":"http://svc.test/api"}"#,
            "/b",
            "/a",
        ),
    ] {
        let limits = format!(r#"{{"{limited}":{budget}}}"#);
        let errs = parse(endpoints, &limits, true).unwrap_err();
        let at = format!("gateway.rateLimits.{limited}");
        assert!(
            errs.iter().any(|e| e.path == at
                && e.message.contains("nest")
                && e.message.contains(&format!("'{other}'"))),
            "{endpoints} {limits}: {errs:?}"
        );
        // Without the service the filter follows where requests land: a
        // budget on the inner endpoint alone is fine.
        if limited == "/inner" {
            assert!(parse(endpoints, &limits, false).is_ok(), "{endpoints}");
        }
    }
    // Targets that do not nest: another path, scheme, port or host.
    let apart = r#"{"/a":"http://svc.test/api","/b":"http://svc.test/apiv2","/c":"https://svc.test/api/v2",
        "/d":"http://svc.test:8080/api/v2","/e":"http://other.test/api/v2"}"#;
    let all =
        format!(r#"{{"/a":{budget},"/b":{budget},"/c":{budget},"/d":{budget},"/e":{budget}}}"#);
    assert!(parse(apart, &all, true).is_ok());
}

#[test]
fn the_service_without_any_budget_is_warned_about_and_only_then() {
    let parse = |gateway: &str| {
        let json = format!(
            r#"{{"proxy":{{"endpoints":{{"/pd":"https://api.pagerduty.com","/gh":"https://api.github.com"}}}},"gateway":{gateway}}}"#
        );
        config::parse(json.as_bytes(), &|_| None).unwrap_or_else(|e| panic!("{gateway}: {e:?}"))
    };
    let warned = |p: &Plan| p.warnings.iter().any(|w| w.contains("never asked"));
    let svc = r#""rateLimitService":{"url":"http://rl:8081""#;
    for gateway in [
        format!("{{{svc}}}}}"),
        format!(r#"{{{svc}}},"access":{{"/pd":{{"allow":["user"]}}}}}}"#),
        // Entries that say "no budget of its own" are no budget either.
        format!(r#"{{{svc}}},"rateLimits":{{"/pd":{{}},"/gh":{{}}}}}}"#),
    ] {
        assert!(warned(&parse(&gateway)), "{gateway}");
    }
    for gateway in [
        format!(r#"{{{svc}}},"rateLimits":{{"/pd":{{"total":{{"requests":1,"seconds":60}}}}}}}}"#),
        format!(
            r#"{{{svc}}},"rateLimits":{{"/gh":{{"perPrincipal":{{"requests":1,"seconds":1}}}}}}}}"#
        ),
        r#"{}"#.to_string(),
        r#"{"rateLimits":{"/pd":{"total":{"requests":1,"seconds":60}}}}"#.to_string(),
        r#"{"access":{"/pd":{"allow":["user"]}}}"#.to_string(),
    ] {
        assert!(!warned(&parse(&gateway)), "{gateway}");
    }
}
