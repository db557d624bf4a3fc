//! One reading of where a request lands, for every decision
//! (`docs/contract.md#where-a-request-lands-decides`): access policies and
//! budgets follow the endpoint under whose target a request lands, whichever
//! endpoint it came through, in every spelling servers read.

use super::*;
use crate::shared_data::{InMemory, SharedData};

const CI: &str = "landing-token-ci-0001";
const OPS: &str = "landing-token-ops-0001";

fn gateway(endpoints: &str, gateway: &str) -> Plan {
    let cfg = format!(
        r#"{{"proxy":{{"endpoints":{endpoints}}},"backend":{{"auth":{{"externalAccess":[
            {{"type":"static","options":{{"token":"{CI}","subject":"ci"}}}},
            {{"type":"static","options":{{"token":"{OPS}","subject":"ops"}}}}]}}}},
          "gateway":{gateway}}}"#
    );
    parse(cfg.as_bytes(), &|_| None).unwrap_or_else(|e| panic!("{e:?}"))
}

fn files() -> Plan {
    gateway(
        r#"{"/files":"http://files.test","/admin":"http://files.test/admin"}"#,
        r#"{"access":{"/admin":{"allow":["subject:ops"],"rules":[{"path":"/public","allow":["subject:ci"]}]}}}"#,
    )
}

fn status(p: &Plan, method: &'static str, path: &'static str, token: &str) -> u16 {
    match req(method, path).bearer(token).decide(p) {
        Decision::Forward(_) => 200,
        Decision::Reply { reply, .. } => reply.status,
        other => panic!("{path}: {other:?}"),
    }
}

#[test]
fn a_policy_holds_whichever_endpoint_the_request_came_through() {
    let p = files();
    for path in [
        "/api/proxy/files/admin/secret",
        "/api/proxy/files/admin\\secret",
        "/api/proxy/files/admin%5Csecret",
        "/api/proxy/files/admin%5csecret",
        "/api/proxy/files/admin%2Fsecret",
        "/api/proxy/files/ADMIN/secret",
        "/api/proxy/files/adm%69n/secret",
        "/api/proxy/files/adm%C4%B1n/secret",
        "/api/proxy/files/adm%C4%B0n/secret",
        "/api/proxy/files/admin;v=1/secret",
        "/api/proxy/files//admin/secret",
        "/api/proxy/files/admin",
    ] {
        assert_eq!(status(&p, "GET", path, CI), 403, "{path}");
        assert_eq!(status(&p, "GET", path, OPS), 200, "{path}");
    }
    // A `\` right after the key matches no endpoint (as in Backstage):
    // nothing is forwarded at all.
    assert_eq!(
        status(&p, "GET", "/api/proxy/files\\admin\\secret", OPS),
        404
    );
    // Its rules are read below its own target, whichever way in.
    for path in [
        "/api/proxy/admin/public/x",
        "/api/proxy/files/admin/public/x",
    ] {
        assert_eq!(status(&p, "GET", path, CI), 200, "{path}");
    }
    // A spelling some servers read as under the rule's path and others do
    // not must be admitted by both readings: the rule's (ci only) and the
    // endpoint's (ops only), so by neither caller
    // (`docs/access.md#how-a-policy-decides`).
    for path in [
        "/api/proxy/files/admin%5Cpublic",
        "/api/proxy/admin/PUBLIC/x",
        "/api/proxy/admin/pub%6Cic/x",
        "/api/proxy/admin/public;x/y",
    ] {
        assert_eq!(status(&p, "GET", path, CI), 403, "{path}");
        assert_eq!(status(&p, "GET", path, OPS), 403, "{path}");
    }
    // Beside it, nothing applies.
    for path in [
        "/api/proxy/files/administrator",
        "/api/proxy/files/other",
        "/api/proxy/files/admin%3Bx/y",
    ] {
        assert_eq!(status(&p, "GET", path, CI), 200, "{path}");
    }
}

#[test]
fn an_inner_endpoint_is_held_to_the_policy_of_the_target_it_lies_under() {
    let p = gateway(
        r#"{"/files":"http://files.test","/admin":"http://files.test/admin"}"#,
        r#"{"access":{"/files":{"allow":["subject:ops"],"rules":[{"path":"/admin/open","allow":["subject:ci"]}]},"/admin":{}}}"#,
    );
    assert_eq!(status(&p, "GET", "/api/proxy/admin/x", CI), 403);
    assert_eq!(status(&p, "GET", "/api/proxy/admin/x", OPS), 200);
    // The outer rule's path is read below the outer target.
    assert_eq!(status(&p, "GET", "/api/proxy/admin/open/x", CI), 200);
    assert_eq!(status(&p, "GET", "/api/proxy/files/admin/open", CI), 200);
}

#[test]
fn endpoints_with_equal_targets_share_their_policies() {
    let p = gateway(
        r#"{"/a":"http://same.test/x","/b":"http://same.test/x/"}"#,
        r#"{"access":{"/a":{"allow":["subject:ops"]},"/b":{}}}"#,
    );
    assert_eq!(status(&p, "GET", "/api/proxy/b/y", CI), 403);
    assert_eq!(status(&p, "GET", "/api/proxy/b/y", OPS), 200);
}

#[test]
fn rule_methods_hold_as_servers_compare_methods() {
    let p = gateway(
        r#"{"/pd":"http://pd.test"}"#,
        r#"{"access":{"/pd":{"allow":["subject:ci","subject:ops"],"rules":[
            {"methods":["POST","DELETE"],"allow":["subject:ops"]},
            {"methods":["GET"],"path":"/reports","allow":["subject:ops"]}]}}}"#,
    );
    // HTTP/2 lets a client send `post`: the rule for POST holds for it.
    for method in ["POST", "post", "Post", "dElEtE"] {
        assert_eq!(
            status(&p, method, "/api/proxy/pd/incidents", CI),
            403,
            "{method}"
        );
        assert_eq!(
            status(&p, method, "/api/proxy/pd/incidents", OPS),
            200,
            "{method}"
        );
    }
    // A rule for GET holds for HEAD, which servers answer with GET's handler.
    for method in ["GET", "HEAD", "head"] {
        assert_eq!(
            status(&p, method, "/api/proxy/pd/reports", CI),
            403,
            "{method}"
        );
    }
    assert_eq!(status(&p, "GET", "/api/proxy/pd/other", CI), 200);
    // And a rule that allows reaches only the method as written: `get` is
    // not GET to every server.
    let q = gateway(
        r#"{"/pd":"http://pd.test"}"#,
        r#"{"access":{"/pd":{"allow":["subject:ops"],"rules":[{"methods":["GET"],"path":"/open","allow":["subject:ci"]}]}}}"#,
    );
    assert_eq!(status(&q, "GET", "/api/proxy/pd/open", CI), 200);
    for method in ["get", "Get", "HEAD"] {
        assert_eq!(
            status(&q, method, "/api/proxy/pd/open", CI),
            403,
            "{method}"
        );
    }
}

#[test]
fn budgets_follow_where_the_request_lands() {
    let p = gateway(
        r#"{"/files":"http://files.test","/admin":"http://files.test/admin"}"#,
        r#"{"rateLimits":{"/admin":{"total":{"requests":2,"seconds":60}}}}"#,
    );
    let mut shared = InMemory::default();
    for k in crate::decision::counter_keys(&p) {
        assert!(shared.set(&k, crate::ratelimit::NEW_COUNTER, None));
    }
    let mut run = |path: &'static str| handled_status(&p, &mut shared, "GET", path, CI);
    // Through the outer endpoint, in two spellings, and then through the
    // inner one: one budget.
    assert_eq!(run("/api/proxy/files/admin/a"), 200);
    assert_eq!(run("/api/proxy/files/admin%5Cb"), 200);
    assert_eq!(run("/api/proxy/admin/c"), 429);
    assert_eq!(run("/api/proxy/files/ADMIN/d"), 429);
    // Elsewhere on the outer endpoint: not counted.
    assert_eq!(run("/api/proxy/files/other"), 200);
}
