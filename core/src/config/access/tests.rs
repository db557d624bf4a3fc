//! `gateway.access`: parsing with JSON paths, and who each policy admits.

use std::sync::Arc;

use crate::config::{self, Plan};
use crate::identity::{Ownership, Principal};

fn plan(access: &str) -> Plan {
    let json = format!(
        r#"{{"proxy":{{"endpoints":{{"/pd":"https://api.pagerduty.com","/open":{{"target":"http://o","credentials":"dangerously-allow-unauthenticated"}},"/gh":"https://api.github.com"}}}},"gateway":{{"access":{access}}}}}"#
    );
    config::parse(json.as_bytes(), &|_| None).unwrap_or_else(|e| panic!("{access}: {e:?}"))
}

fn errors(access: &str) -> Vec<(String, String)> {
    let json = format!(
        r#"{{"proxy":{{"endpoints":{{"/pd":"https://api.pagerduty.com/v2","/pd-all":"https://api.pagerduty.com","/open":{{"target":"http://o","credentials":"dangerously-allow-unauthenticated"}}}}}},"gateway":{{"access":{access}}}}}"#
    );
    config::parse(json.as_bytes(), &|_| None)
        .unwrap_err()
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect()
}

fn user(sub: &str, ent: Option<&[&str]>) -> (Principal, Ownership) {
    (
        Principal::User(sub.into()),
        ent.map(|e| Arc::from(e.iter().map(|s| s.to_string()).collect::<Vec<_>>())),
    )
}

/// A plugin token's principal (`plugin:<id>`), or any other service
/// caller's.
fn service(s: &str) -> (Principal, Ownership) {
    match s.strip_prefix("plugin:") {
        Some(_) => (Principal::Plugin(s.into()), None),
        None => (Principal::External(s.into()), None),
    }
}

#[test]
fn principals_never_cross_kinds() {
    // A static token whose configured subject reads like a plugin, or a
    // user, is an external caller all the same.
    let p = plan(
        r#"{"/pd":{"allow":["plugin"]},"/gh":{"allow":["plugin:scaffolder","user:default/jane","user"]}}"#,
    );
    let posing = |s: &str| (Principal::External(s.into()), None);
    assert!(!allows(&p, "/pd", "GET", "", &posing("plugin:scaffolder")));
    assert!(!allows(&p, "/gh", "GET", "", &posing("plugin:scaffolder")));
    assert!(!allows(&p, "/gh", "GET", "", &posing("user:default/jane")));
    // The real plugin and user are.
    assert!(allows(&p, "/pd", "GET", "", &service("plugin:scaffolder")));
    assert!(allows(
        &p,
        "/gh",
        "GET",
        "",
        &user("user:default/jane", None)
    ));
    // `subject:` names external callers only.
    let q = plan(r#"{"/pd":{"allow":["subject:plugin:catalog"]}}"#);
    assert!(!allows(&q, "/pd", "GET", "", &service("plugin:catalog")));
    assert!(allows(&q, "/pd", "GET", "", &posing("plugin:catalog")));
}

fn allows(p: &Plan, key: &str, method: &str, rest: &str, who: &(Principal, Ownership)) -> bool {
    let e = p.endpoints.iter().find(|e| e.key == key).unwrap();
    e.access
        .as_ref()
        .unwrap()
        .allows(method, rest, &who.0, &who.1)
}

#[test]
fn kinds_names_and_groups() {
    let p = plan(
        r#"{"/pd":{"allow":["user"]},"/gh":{"allow":["group:default/sre","plugin:scaffolder","subject:ci","user:default/Jane"]}}"#,
    );
    let jane = user("user:default/jane", Some(&["user:default/jane"]));
    let sre = user(
        "user:default/bob",
        Some(&["user:default/bob", "group:default/sre"]),
    );
    let dev = user(
        "user:default/eve",
        Some(&["user:default/eve", "group:default/dev"]),
    );
    let obo = user("user:default/bob", None);
    assert!(allows(&p, "/pd", "GET", "", &jane));
    assert!(
        !allows(&p, "/pd", "GET", "", &service("plugin:catalog")),
        "a plugin on a user-only endpoint"
    );
    assert!(!allows(&p, "/pd", "GET", "", &service("ci")));
    assert!(allows(&p, "/gh", "GET", "", &sre), "a group member");
    assert!(!allows(&p, "/gh", "GET", "", &dev), "not a member");
    assert!(
        !allows(&p, "/gh", "GET", "", &obo),
        "a token without ent (obo) is in no group"
    );
    assert!(allows(&p, "/gh", "GET", "", &jane), "named user, any case");
    assert!(allows(&p, "/gh", "GET", "", &service("plugin:scaffolder")));
    assert!(!allows(&p, "/gh", "GET", "", &service("plugin:catalog")));
    assert!(allows(&p, "/gh", "GET", "", &service("ci")));
    assert!(
        !allows(&p, "/gh", "GET", "", &service("external:ci")),
        "subjects compare exactly"
    );
}

#[test]
fn plugin_and_external_kinds() {
    let p = plan(r#"{"/pd":{"allow":["plugin"]},"/gh":{"allow":["external"]}}"#);
    assert!(allows(&p, "/pd", "GET", "", &service("plugin:catalog")));
    assert!(!allows(&p, "/pd", "GET", "", &service("ci")));
    assert!(!allows(
        &p,
        "/pd",
        "GET",
        "",
        &user("user:default/a", Some(&[]))
    ));
    assert!(allows(&p, "/gh", "GET", "", &service("ci")));
    assert!(allows(
        &p,
        "/gh",
        "GET",
        "",
        &service("external:backstage-plugin")
    ));
    assert!(!allows(&p, "/gh", "GET", "", &service("plugin:catalog")));
}

#[test]
fn the_first_matching_rule_decides_by_method_and_path_as_servers_read_it() {
    let p = plan(
        r#"{"/pd":{"allow":["user"],"rules":[
            {"methods":["POST","DELETE"],"path":"/incidents","allow":["group:default/sre"]},
            {"path":"/admin","allow":["user:default/root"]}]}}"#,
    );
    let dev = user("user:default/eve", Some(&["group:default/dev"]));
    let sre = user("user:default/bob", Some(&["group:default/sre"]));
    assert!(
        allows(&p, "/pd", "GET", "/incidents", &dev),
        "GET is not in the rule"
    );
    assert!(!allows(&p, "/pd", "POST", "/incidents", &dev));
    assert!(allows(&p, "/pd", "POST", "/incidents", &sre));
    for spelling in [
        "/incidents/1",
        "/INCIDENTS",
        "/%69ncidents",
        "/incidents;x=1",
        "//incidents",
    ] {
        assert!(!allows(&p, "/pd", "POST", spelling, &dev), "{spelling}");
    }
    assert!(
        allows(&p, "/pd", "POST", "/incidentsx", &dev),
        "a segment boundary"
    );
    assert!(!allows(&p, "/pd", "GET", "/admin/x", &sre));
    assert!(allows(
        &p,
        "/pd",
        "GET",
        "/admin/x",
        &user("user:default/root", None)
    ));
    assert!(
        allows(&p, "/pd", "GET", "/other", &dev),
        "no rule: the endpoint's allow"
    );
    // Without an endpoint allow, any principal outside the rules.
    let p = plan(r#"{"/pd":{"rules":[{"methods":["DELETE"],"allow":["user"]}]}}"#);
    assert!(allows(&p, "/pd", "GET", "/x", &service("ci")));
    assert!(!allows(&p, "/pd", "DELETE", "/x", &service("ci")));
}

#[test]
fn bad_policies_name_their_json_path() {
    for (access, path) in [
        (r#"{"/nope":{"allow":["user"]}}"#, "gateway.access./nope"),
        (r#"{"/open":{"allow":["user"]}}"#, "gateway.access./open"),
        (r#"{"/pd":{"allow":[]}}"#, "gateway.access./pd.allow"),
        (
            r#"{"/pd":{"allow":["admins"]}}"#,
            "gateway.access./pd.allow[0]",
        ),
        (
            r#"{"/pd":{"allow":["group:sre"]}}"#,
            "gateway.access./pd.allow[0]",
        ),
        (r#"{"/pd":{"allow":[1]}}"#, "gateway.access./pd.allow[0]"),
        (r#"{"/pd":{"allow":"user"}}"#, "gateway.access./pd.allow"),
        (r#"{"/pd":{"alow":["user"]}}"#, "gateway.access./pd.alow"),
        (
            r#"{"/pd":{"rules":[{"path":"incidents","allow":["user"]}]}}"#,
            "gateway.access./pd.rules[0].path",
        ),
        (
            r#"{"/pd":{"rules":[{"methods":["G@T"],"allow":["user"]}]}}"#,
            "gateway.access./pd.rules[0].methods[0]",
        ),
        (
            r#"{"/pd":{"rules":[{"path":"/x"}]}}"#,
            "gateway.access./pd.rules[0].allow",
        ),
        (r#"{"/pd":{"rules":{}}}"#, "gateway.access./pd.rules"),
        (r#"[]"#, "gateway.access"),
    ] {
        let errs = errors(access);
        assert!(errs.iter().any(|(p, _)| p == path), "{access}: {errs:?}");
    }
}

#[test]
fn an_endpoint_inside_a_policied_target_says_what_it_has_of_its_own() {
    // /pd-all's target (api.pagerduty.com) holds /pd's (…/v2): requests
    // through /pd land under /pd-all's target and are held to its policy,
    // so /pd must have an entry of its own.
    let json = |access: &str| {
        format!(
            r#"{{"proxy":{{"endpoints":{{"/pd":"https://api.pagerduty.com/v2","/pd-all":"https://api.pagerduty.com","/same":"https://api.pagerduty.com/"}}}},"gateway":{{"access":{access}}}}}"#
        )
    };
    let errs = config::parse(
        json(r#"{"/pd-all":{"allow":["user"]}}"#).as_bytes(),
        &|_| None,
    )
    .unwrap_err();
    for inner in ["'/pd'", "'/same'"] {
        assert!(
            errs.iter()
                .any(|e| e.path == "gateway.access./pd-all" && e.message.contains(inner)),
            "{inner}: {errs:?}"
        );
    }
    // An entry of its own, a policy or `{}`, says it knowingly.
    let ok =
        json(r#"{"/pd-all":{"allow":["user"]},"/pd":{},"/same":{"allow":["group:default/sre"]}}"#);
    assert!(config::parse(ok.as_bytes(), &|_| None).is_ok());
    // The other way round is no error: a request through /pd-all that
    // lands under /pd's target gets /pd's policy (decision tests).
    let outer_open = json(r#"{"/pd":{"allow":["group:default/sre"]}}"#);
    assert!(config::parse(outer_open.as_bytes(), &|_| None).is_ok());
}

#[test]
fn an_endpoint_inside_a_budgeted_target_says_what_it_has_of_its_own() {
    let parse = |limits: &str| {
        let json = format!(
            r#"{{"proxy":{{"endpoints":{{"/github":"https://api.github.com","/github-graphql":"https://api.github.com/graphql","/other":"https://api.github.com.evil.example/graphql"}}}},"gateway":{{"rateLimits":{limits}}}}}"#
        );
        config::parse(json.as_bytes(), &|_| None)
    };
    let errs = parse(r#"{"/github":{"total":{"requests":99,"seconds":60}}}"#).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "gateway.rateLimits./github");
    assert!(errs[0].message.contains("'/github-graphql'"), "{errs:?}");
    // Its own budget, or `{}` for none of its own: both count against
    // /github's too, where requests land.
    assert!(
        parse(r#"{"/github":{"total":{"requests":99,"seconds":60}},"/github-graphql":{}}"#).is_ok()
    );
    assert!(parse(r#"{"/github":{"total":{"requests":99,"seconds":60}},"/github-graphql":{"perPrincipal":{"requests":1,"seconds":1}}}"#).is_ok());
    // A budget on the inner endpoint only: requests through /github that
    // land under /graphql are counted there (decision tests).
    assert!(parse(r#"{"/github-graphql":{"perPrincipal":{"requests":10,"seconds":60}}}"#).is_ok());
}

#[test]
fn configuration_that_would_widen_access_or_void_a_budget_is_refused() {
    let parse = |endpoints: &str, gateway: &str, backend: &str| {
        let json = format!(
            r#"{{"proxy":{{"endpoints":{endpoints}}},"backend":{backend},"gateway":{gateway}}}"#
        );
        config::parse(json.as_bytes(), &|_| None)
    };
    let pd = r#"{"/pd":"https://api.pagerduty.com","/open":{"target":"http://o","credentials":"dangerously-allow-unauthenticated"}}"#;
    for (gateway, backend, path, says) in [
        // Two spellings of one endpoint: the later would silently win.
        (
            r#"{"access":{"/pd":{"allow":["user"]},"/pd/":{"allow":["plugin"]}}}"#,
            "{}",
            "gateway.access./pd/",
            "'/pd'",
        ),
        (
            r#"{"access":{"/pd":{"allow":["user"]},"/PD":{"allow":["plugin"]}}}"#,
            "{}",
            "gateway.access./PD",
            "'/pd'",
        ),
        (
            r#"{"rateLimits":{"/pd":{"total":{"requests":1,"seconds":1}},"/Pd/":{"total":{"requests":9,"seconds":1}}}}"#,
            "{}",
            "gateway.rateLimits./Pd/",
            "'/pd'",
        ),
        // A rule whose method is never sent as written.
        (
            r#"{"access":{"/pd":{"rules":[{"methods":["post"],"allow":["user"]}]}}}"#,
            "{}",
            "gateway.access./pd.rules[0].methods[0]",
            "'POST'",
        ),
        // A path no client spelling can match.
        (
            r#"{"access":{"/pd":{"rules":[{"path":"/café","allow":["user"]}]}}}"#,
            "{}",
            "gateway.access./pd.rules[0].path",
            "ASCII",
        ),
        (
            r#"{"access":{"/pd":{"rules":[{"path":"/a b","allow":["user"]}]}}}"#,
            "{}",
            "gateway.access./pd.rules[0].path",
            "ASCII",
        ),
        // A per-principal budget where no principal is read.
        (
            r#"{"rateLimits":{"/open":{"perPrincipal":{"requests":1,"seconds":1}}}}"#,
            "{}",
            "gateway.rateLimits./open.perPrincipal",
            "dangerously-allow-unauthenticated",
        ),
        (
            r#"{"rateLimits":{"/pd":{"perPrincipal":{"requests":1,"seconds":1}}}}"#,
            r#"{"auth":{"dangerouslyDisableDefaultAuthPolicy":true}}"#,
            "gateway.rateLimits./pd.perPrincipal",
            "dangerouslyDisableDefaultAuthPolicy",
        ),
    ] {
        let errs = parse(pd, gateway, backend).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.path == path && e.message.contains(says)),
            "{gateway}: {errs:?}"
        );
    }
    // With an access policy a principal is read, also there.
    assert!(parse(
        pd,
        r#"{"access":{"/pd":{"allow":["user"]}},"rateLimits":{"/pd":{"perPrincipal":{"requests":1,"seconds":1}}}}"#,
        r#"{"auth":{"dangerouslyDisableDefaultAuthPolicy":true}}"#
    )
    .is_ok());
}

#[test]
fn numbers_from_variables_read_as_backstage_reads_them() {
    let parse = |requests: &str| {
        let json = format!(
            r#"{{"proxy":{{"endpoints":{{"/pd":"https://api.pagerduty.com"}}}},"gateway":{{"rateLimits":{{"/pd":{{"total":{{"requests":{requests},"seconds":"60"}}}}}}}}}}"#
        );
        config::parse(json.as_bytes(), &|_| None)
    };
    for (given, want) in [
        ("\"100\"", 100),
        ("\" 7 \"", 7),
        ("\"1e3\"", 1000),
        ("\"0x10\"", 16),
        ("\"+5\"", 5),
        ("12", 12),
    ] {
        let p = parse(given).unwrap_or_else(|e| panic!("{given}: {e:?}"));
        let total = p.endpoints[0].rate_limit.as_ref().unwrap().total.unwrap();
        assert_eq!((total.requests, total.window_ms), (want, 60_000), "{given}");
    }
    for refused in [
        "\"\"",
        "\"ten\"",
        "\"10.5\"",
        "\"-3\"",
        "\"1_000\"",
        "\"Infinity\"",
        "\"inf\"",
        "\"0x\"",
        "true",
    ] {
        let errs = parse(refused).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.path == "gateway.rateLimits./pd.total.requests"),
            "{refused}: {errs:?}"
        );
    }
}

#[test]
fn rate_limits_parse_and_bad_ones_name_their_json_path() {
    let json = r#"{"proxy":{"endpoints":{"/pd":"https://api.pagerduty.com"}},
        "gateway":{"rateLimits":{"/pd":{"perPrincipal":{"requests":100,"seconds":60},"total":{"requests":1000,"seconds":60}}}}}"#;
    let p = config::parse(json.as_bytes(), &|_| None).unwrap();
    let rl = p.endpoints[0].rate_limit.as_ref().unwrap();
    assert_eq!(rl.per_principal.unwrap().requests, 100);
    assert_eq!(rl.total.unwrap().window_ms, 60_000);
    for (limits, path) in [
        (
            r#"{"/nope":{"total":{"requests":1,"seconds":1}}}"#,
            "gateway.rateLimits./nope",
        ),
        (
            r#"{"/pd":{"total":{"requests":0,"seconds":1}}}"#,
            "gateway.rateLimits./pd.total.requests",
        ),
        (
            r#"{"/pd":{"total":{"requests":1,"seconds":0}}}"#,
            "gateway.rateLimits./pd.total.seconds",
        ),
        (
            r#"{"/pd":{"total":{"requests":1}}}"#,
            "gateway.rateLimits./pd.total",
        ),
        (
            r#"{"/pd":{"perPrincipal":{"requests":1,"seconds":1,"burst":2}}}"#,
            "gateway.rateLimits./pd.perPrincipal.burst",
        ),
        (
            r#"{"/pd":{"perprincipal":{"requests":1,"seconds":1}}}"#,
            "gateway.rateLimits./pd.perprincipal",
        ),
    ] {
        let json = format!(
            r#"{{"proxy":{{"endpoints":{{"/pd":"https://api.pagerduty.com"}}}},"gateway":{{"rateLimits":{limits}}}}}"#
        );
        let errs = config::parse(json.as_bytes(), &|_| None).unwrap_err();
        assert!(errs.iter().any(|e| e.path == path), "{limits}: {errs:?}");
    }
}

#[test]
fn the_audit_trail_is_on_unless_switched_off() {
    let on = config::parse(br#"{}"#, &|_| None).unwrap();
    assert!(on.gateway.audit_trail);
    let off = config::parse(br#"{"gateway":{"auditTrail":false}}"#, &|_| None).unwrap();
    assert!(!off.gateway.audit_trail);
    let bad = config::parse(br#"{"gateway":{"auditTrail":"no"}}"#, &|_| None).unwrap_err();
    assert_eq!(bad[0].path, "gateway.auditTrail");
}

#[test]
fn two_sources_that_can_produce_one_principal_are_refused_where_policies_name_principals() {
    let parse = |external: &str, gateway: &str| {
        let json = format!(
            r#"{{"proxy":{{"endpoints":{{"/pd":"https://api.pagerduty.com"}}}},"backend":{{"auth":{{"externalAccess":{external}}}}},"gateway":{gateway}}}"#
        );
        config::parse(json.as_bytes(), &|_| None)
    };
    let policy = r#"{"access":{"/pd":{"allow":["subject:external:corp:deployer"]}}}"#;
    let jwks = |prefix: &str| {
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!(r#","subjectPrefix":"{prefix}""#)
        };
        format!(
            r#"{{"type":"jwks","options":{{"url":"https://idp{}.example/jwks"{prefix}}}}}"#,
            prefix.len()
        )
    };
    let static_token = |subject: &str, token: &str| {
        format!(r#"{{"type":"static","options":{{"token":"{token}","subject":"{subject}"}}}}"#)
    };
    for (external, says) in [
        // A jwks entry without prefix can present `sub: corp:deployer`.
        (format!("[{},{}]", jwks(""), jwks("corp")), "external:"),
        // Or `sub: cron`, a legacy secret's principal.
        (
            format!(
                r#"[{},{{"type":"legacy","options":{{"secret":"c2VjcmV0LXNlY3JldA","subject":"external:cron"}}}}]"#,
                jwks("")
            ),
            "external:cron",
        ),
        // A static subject inside a prefix's subjects.
        (
            format!(
                "[{},{}]",
                jwks("corp"),
                static_token("external:corp:deployer", "static-token-0123")
            ),
            "external:corp:deployer",
        ),
        // One prefix inside another's subjects.
        (
            format!("[{},{}]", jwks("corp"), jwks("corp:dev")),
            "external:corp",
        ),
    ] {
        let errs = parse(&external, policy).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.path == "backend.auth.externalAccess" && e.message.contains(says)),
            "{external}: {errs:?}"
        );
        // Without policies or budgets, principals decide nothing: as in
        // Backstage, the configuration loads.
        assert!(parse(&external, "{}").is_ok(), "{external}");
    }
    // Distinct prefixes, and static tokens sharing a subject for rotation.
    let fine = format!(
        "[{},{},{},{}]",
        jwks("corp"),
        jwks("partner"),
        static_token("ci", "static-token-0123"),
        static_token("ci", "static-token-4567")
    );
    assert!(parse(&fine, policy).is_ok());
}

mod matching;
mod service;
