//! The order of the steps that refuse a caller with valid credentials
//! (`docs/contract.md#6-methods`): the endpoint's methods (`405`) before
//! the access policies (`403`), and the budgets (`429`) only for a request
//! both admit.

use super::*;
use crate::shared_data::{InMemory, SharedData};

const CI: &str = "order-token-ci-0001";
const OPS: &str = "order-token-ops-0001";
const BOT: &str = "order-token-bot-0001";

fn gateway(endpoints: &str, gateway: &str) -> Plan {
    let cfg = format!(
        r#"{{"proxy":{{"endpoints":{endpoints}}},"backend":{{"auth":{{"externalAccess":[
            {{"type":"static","options":{{"token":"{CI}","subject":"ci"}}}},
            {{"type":"static","options":{{"token":"{OPS}","subject":"ops"}}}},
            {{"type":"static","options":{{"token":"{BOT}","subject":"bot"}}}}]}}}},
          "gateway":{gateway}}}"#
    );
    parse(cfg.as_bytes(), &|_| None).unwrap_or_else(|e| panic!("{e:?}"))
}

/// The status and reason of a decision (`200` for a forward).
fn outcome(p: &Plan, method: &'static str, path: &'static str, token: Option<&str>) -> u16 {
    let r = req(method, path);
    let r = match token {
        Some(t) => r.bearer(t),
        None => r,
    };
    match r.decide(p) {
        Decision::Forward(_) => 200,
        Decision::Reply { reply, .. } => {
            let want = match reply.status {
                401 => Some(Reason::MissingCredentials),
                403 => Some(Reason::NotAllowedByPolicy),
                405 => Some(Reason::MethodNotAllowed),
                _ => reply.reason,
            };
            assert_eq!(reply.reason, want, "{method} {path}");
            if reply.status == 405 {
                assert!(
                    reply.headers.iter().any(|(n, _)| n == "allow"),
                    "{method} {path}"
                );
            }
            reply.status
        }
        other => panic!("{method} {path}: {other:?}"),
    }
}

#[test]
fn a_method_the_endpoint_does_not_allow_is_405_whoever_calls_and_whatever_the_policy() {
    let p = gateway(
        r#"{"/pd":{"target":"http://pd.test","allowedMethods":["GET","POST"]}}"#,
        r#"{"access":{"/pd":{"allow":["subject:ops"],"rules":[{"methods":["POST"],"path":"/incidents","allow":["subject:ci"]}]}}}"#,
    );
    // Not in allowedMethods (exact): 405 for every caller, also those the
    // policy refuses and those it admits.
    for method in ["DELETE", "PUT", "get", "post", "TRACE", "HEAD"] {
        for path in ["/api/proxy/pd/incidents", "/api/proxy/pd/services"] {
            for token in [CI, OPS, BOT] {
                assert_eq!(
                    outcome(&p, method, path, Some(token)),
                    405,
                    "{method} {path} {token}"
                );
            }
        }
    }
    // An allowed method: the policy decides, 403 for those it refuses.
    for (method, path, admitted) in [
        ("GET", "/api/proxy/pd/services", OPS),
        ("GET", "/api/proxy/pd/incidents", OPS),
        ("POST", "/api/proxy/pd/services", OPS),
        ("POST", "/api/proxy/pd/incidents", CI),
        ("POST", "/api/proxy/pd/incidents/1", CI),
    ] {
        for token in [CI, OPS, BOT] {
            let want = if token == admitted { 200 } else { 403 };
            assert_eq!(
                outcome(&p, method, path, Some(token)),
                want,
                "{method} {path} {token}"
            );
        }
    }
    // Without credentials: 401 before either.
    for method in ["GET", "DELETE", "POST"] {
        assert_eq!(outcome(&p, method, "/api/proxy/pd/incidents", None), 401);
    }
}

#[test]
fn without_allowed_methods_only_the_default_refusals_come_before_the_policy() {
    let p = gateway(
        r#"{"/pd":"http://pd.test"}"#,
        r#"{"access":{"/pd":{"allow":["subject:ops"]}}}"#,
    );
    for method in ["TRACE", "trace", "CONNECT", "Connect"] {
        for token in [CI, OPS, BOT] {
            assert_eq!(
                outcome(&p, method, "/api/proxy/pd/x", Some(token)),
                405,
                "{method} {token}"
            );
        }
    }
    for method in ["GET", "DELETE", "PROPFIND", "post"] {
        assert_eq!(outcome(&p, method, "/api/proxy/pd/x", Some(OPS)), 200);
        for token in [CI, BOT] {
            assert_eq!(
                outcome(&p, method, "/api/proxy/pd/x", Some(token)),
                403,
                "{method} {token}"
            );
        }
    }
}

#[test]
fn through_another_endpoint_its_methods_come_before_the_policy_it_lands_under() {
    let p = gateway(
        r#"{"/files":{"target":"http://files.test","allowedMethods":["GET"]},"/admin":"http://files.test/admin"}"#,
        r#"{"access":{"/admin":{"allow":["subject:ops"]}}}"#,
    );
    for path in [
        "/api/proxy/files/admin/x",
        "/api/proxy/files/ADMIN/x",
        "/api/proxy/files/admin%5Cx",
    ] {
        for token in [CI, OPS, BOT] {
            assert_eq!(outcome(&p, "POST", path, Some(token)), 405, "{path}");
        }
        assert_eq!(outcome(&p, "GET", path, Some(OPS)), 200, "{path}");
        for token in [CI, BOT] {
            assert_eq!(outcome(&p, "GET", path, Some(token)), 403, "{path}");
        }
    }
}

#[test]
fn a_request_refused_by_its_method_or_the_policy_spends_no_budget() {
    let p = gateway(
        r#"{"/pd":{"target":"http://pd.test","allowedMethods":["GET"]}}"#,
        r#"{"access":{"/pd":{"allow":["subject:ops","subject:ci"],"rules":[{"path":"/admin","allow":["subject:ops"]}]}},
           "rateLimits":{"/pd":{"perPrincipal":{"requests":2,"seconds":60},"total":{"requests":3,"seconds":60}}}}"#,
    );
    let mut shared = InMemory::default();
    assert!(crate::ratelimit::ensure_secret(&mut shared, &[5; 32]));
    for k in crate::decision::counter_keys(&p) {
        assert!(shared.set(&k, crate::ratelimit::NEW_COUNTER, None));
    }
    let mut run = |method: &'static str, path: &'static str, token: &str| {
        handled_status(&p, &mut shared, method, path, token)
    };
    // Refusals by method and by policy, many of them, spend nothing.
    for _ in 0..5 {
        assert_eq!(run("POST", "/api/proxy/pd/x", CI), 405);
        assert_eq!(run("DELETE", "/api/proxy/pd/admin", OPS), 405);
        assert_eq!(run("GET", "/api/proxy/pd/admin", CI), 403);
        assert_eq!(run("GET", "/api/proxy/pd/ADMIN/x", CI), 403);
    }
    // So the whole budget is left: ci's two, then ops's one of the total.
    assert_eq!(run("GET", "/api/proxy/pd/x", CI), 200);
    assert_eq!(run("GET", "/api/proxy/pd/x", CI), 200);
    assert_eq!(run("GET", "/api/proxy/pd/x", CI), 429);
    assert_eq!(run("GET", "/api/proxy/pd/admin", OPS), 200);
    assert_eq!(run("GET", "/api/proxy/pd/x", OPS), 429);
}

/// Whoever verified credentials is named in every refusal that follows
/// them (`docs/operations.md#access-log-who-did-what`): an unknown
/// endpoint, a method, a policy, an upgrade, an unsafe upstream path and an
/// access restriction all refuse someone the log must name. A refusal
/// before credentials (a missing or invalid token) names nobody.
#[test]
fn every_refusal_after_valid_credentials_names_the_principal() {
    let cfg = format!(
        r#"{{"proxy":{{"endpoints":{{
            "/a": {{"target":"http://a.test/base","allowedMethods":["GET"]}},
            "/ops": {{"target":"http://ops.test"}}}}}},
          "backend":{{"auth":{{"externalAccess":[
            {{"type":"static","options":{{"token":"{CI}","subject":"ci"}}}},
            {{"type":"static","options":{{"token":"{BOT}","subject":"bot"}},"accessRestrictions":[{{"plugin":"catalog"}}]}}]}}}},
          "gateway":{{"access":{{"/ops":{{"allow":["subject:ops"]}}}}}}}}"#
    );
    let p = parse(cfg.as_bytes(), &|_| None).unwrap_or_else(|e| panic!("{e:?}"));
    let ci = Some(Principal::External("ci".into()));
    let cases: [(&'static str, &'static str, &str, u16, Option<Principal>); 7] = [
        ("GET", "/api/proxy/nowhere", CI, 404, ci.clone()),
        ("POST", "/api/proxy/a/x", CI, 405, ci.clone()),
        ("GET", "/api/proxy/ops/x", CI, 403, ci.clone()),
        ("GET", "/api/proxy/a/%2e%2e%2fescape", CI, 400, None),
        (
            "GET",
            "/api/proxy/a/x",
            BOT,
            403,
            Some(Principal::External("bot".into())),
        ),
        ("GET", "/api/proxy/a/x", "not-a-configured-token", 401, None),
        (
            "GET",
            "/api/proxy/nowhere",
            "not-a-configured-token",
            401,
            None,
        ),
    ];
    for (method, path, token, status, who) in cases {
        match req(method, path).bearer(token).decide(&p) {
            Decision::Reply {
                reply, principal, ..
            } => {
                assert_eq!(reply.status, status, "{method} {path}");
                assert_eq!(principal, who, "{method} {path} {status}");
            }
            other => panic!("{method} {path}: expected a refusal, got {other:?}"),
        }
    }
    // An upgrade refused after valid credentials names the caller too.
    match req("GET", "/api/proxy/a/x")
        .bearer(CI)
        .h("upgrade", "websocket")
        .decide(&p)
    {
        Decision::Reply {
            reply, principal, ..
        } => {
            assert_eq!(reply.status, 403);
            assert_eq!(principal, ci);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
