//! `permission` in `gateway.access` (`docs/permissions.md`): who is asked,
//! what each kind of caller gets, and what a refusal says.

use super::*;
use crate::auth::jwks::set::parse_key_set;
use crate::permission::{ask::question_key, Answer};
use backstage_proxy_mint::*;

const NOW: u64 = 1_800_000_000;
const AUTH_URL: &str = "http://backstage:7007/api/auth/.well-known/jwks.json";
const CATALOG_URL: &str = "http://backstage:7007/api/catalog/.backstage/auth/v1/jwks.json";

const FREE: &str = "perm-token-free-0001";
const NAMED: &str = "perm-token-named-0001";
const READER: &str = "perm-token-reader-0001";
const OTHER_PLUGIN: &str = "perm-token-other-0001";

const ACCESS: &str = r#"{"/pd":{
    "permission":"proxy.endpoint.pd",
    "rules":[
        {"methods":["POST","PUT","DELETE"],"path":"/incidents","permission":{"name":"proxy.endpoint.pd.write","action":"update"}},
        {"methods":["GET"],"path":"/ops","allow":["user:default/ops"],"permission":"proxy.endpoint.pd.ops"},
        {"methods":["GET"],"path":"/open","allow":["user","external"]}
    ]}}"#;

fn plan_with(access: &str) -> Plan {
    let cfg = format!(
        r#"{{"proxy":{{"endpoints":{{"/pd":"http://pd.test","/other":"http://other.test"}}}},
          "backend":{{"baseUrl":"http://backstage:7007","auth":{{"externalAccess":[
            {{"type":"static","options":{{"token":"{FREE}","subject":"free"}}}},
            {{"type":"static","options":{{"token":"{NAMED}","subject":"named"}},"accessRestrictions":[{{"plugin":"proxy","permission":"proxy.endpoint.pd"}}]}},
            {{"type":"static","options":{{"token":"{READER}","subject":"reader"}},"accessRestrictions":[{{"plugin":"catalog"}},{{"plugin":"proxy","permission":["proxy.endpoint.pd","proxy.endpoint.pd.write"],"permissionAttribute":{{"action":"read"}}}}]}},
            {{"type":"static","options":{{"token":"{OTHER_PLUGIN}","subject":"other"}},"accessRestrictions":[{{"plugin":"catalog","permission":"proxy.endpoint.pd"}}]}}]}}}},
          "gateway":{{"plugins":["catalog"],"access":{access}}}}}"#
    );
    parse(cfg.as_bytes(), &|_| None).unwrap_or_else(|e| panic!("{e:?}"))
}

struct World {
    plan: Plan,
    auth: AuthState,
    key: Ed,
}

impl World {
    fn new(access: &str) -> World {
        let plan = plan_with(access);
        let mut auth = AuthState::new(&plan);
        let key = Ed::new(7, "k7");
        for url in [AUTH_URL, CATALOG_URL] {
            auth.keys.start(url, NOW * 1000);
            let set = parse_key_set(key_set(&[&key]).as_bytes()).unwrap();
            auth.keys.succeeded(url, set, NOW * 1000);
        }
        World { plan, auth, key }
    }

    fn user(&self, sub: &str) -> String {
        user_token(&self.key, sub, NOW, NOW + 600)
    }

    fn on_behalf(&self, sub: &str) -> String {
        let limited = limited_user_token(&self.key, sub, NOW, NOW + 600);
        plugin_token(
            &self.key,
            "catalog",
            "proxy",
            NOW,
            NOW + 600,
            Some(&limited),
        )
    }

    fn plugin(&self) -> String {
        plugin_token(&self.key, "catalog", "proxy", NOW, NOW + 600, None)
    }

    fn decide(
        &mut self,
        method: &'static str,
        path: &'static str,
        token: &str,
    ) -> Decision<'static> {
        let headers = vec![
            (":authority".to_string(), b"gw".to_vec()),
            (
                "authorization".to_string(),
                format!("Bearer {token}").into_bytes(),
            ),
        ];
        let request = Request {
            method,
            path: Some(path),
            authority: "gw",
            downstream_tls: false,
            headers: &header_view(&headers),
            client_address: None,
            now_ms: NOW * 1000 + 1,
        };
        decide(&self.plan, &mut self.auth, &request).into_owned()
    }

    /// The status and reason code (`200`/`None` for a forward; `0` and the
    /// permission asked for a question).
    fn outcome(&mut self, method: &'static str, path: &'static str, token: &str) -> (u16, String) {
        match self.decide(method, path, token) {
            Decision::Forward(_) => (200, String::new()),
            Decision::Reply { reply, .. } => (
                reply.status,
                reply
                    .reason
                    .map(|r| r.code())
                    .unwrap_or_default()
                    .to_string(),
            ),
            Decision::NeedPermission { question, .. } => (0, question.permission.label()),
            other => panic!("{method} {path}: {other:?}"),
        }
    }
}

#[test]
fn service_principals_are_decided_here_from_their_restrictions() {
    let mut w = World::new(ACCESS);
    let ok = (200, String::new());
    let denied = (403, "permission_denied".to_string());
    // No restrictions: every permission, as Backstage's server-side client.
    assert_eq!(w.outcome("GET", "/api/proxy/pd/x", FREE), ok);
    assert_eq!(w.outcome("POST", "/api/proxy/pd/incidents", FREE), ok);
    // Names only: the endpoint's permission, not the write rule's.
    assert_eq!(w.outcome("GET", "/api/proxy/pd/x", NAMED), ok);
    assert_eq!(w.outcome("POST", "/api/proxy/pd/incidents", NAMED), denied);
    // Names and actions: the endpoint's permission has no action (refused),
    // the write rule's asks `update` (refused: only `read` is listed).
    assert_eq!(w.outcome("GET", "/api/proxy/pd/x", READER), denied);
    assert_eq!(w.outcome("POST", "/api/proxy/pd/incidents", READER), denied);
    // A rule with only principals decides without a permission.
    assert_eq!(w.outcome("GET", "/api/proxy/pd/open", READER), ok);
    // Restrictions for another plugin do not apply here; this token cannot
    // call the proxy at all.
    assert_eq!(
        w.outcome("GET", "/api/proxy/pd/x", OTHER_PLUGIN),
        (403, "access_restricted".to_string())
    );
    // A plugin token not acting for a user is an unrestricted service.
    let plugin = w.plugin();
    assert_eq!(w.outcome("POST", "/api/proxy/pd/incidents", &plugin), ok);
}

#[test]
fn a_user_is_asked_of_the_permission_backend_with_their_own_token() {
    let mut w = World::new(ACCESS);
    let jane = w.user("user:default/jane");
    let Decision::NeedPermission {
        question,
        endpoint,
        principal,
    } = w.decide("POST", "/api/proxy/pd/incidents", &jane)
    else {
        panic!("expected a question")
    };
    assert_eq!(question.token, jane);
    assert_eq!(
        question.permission.label(),
        "proxy.endpoint.pd.write:update"
    );
    assert_eq!(w.plan.endpoints[endpoint].raw_key, "/pd");
    assert_eq!(principal, Some(Principal::User("user:default/jane".into())));
    // Its answer, once kept, decides: ALLOW forwards, DENY is 403.
    let now = NOW * 1000;
    w.auth
        .permissions
        .insert(question.key.clone(), Answer::Allow, now);
    assert_eq!(w.outcome("POST", "/api/proxy/pd/incidents", &jane).0, 200);
    w.auth.permissions.insert(question.key, Answer::Deny, now);
    assert_eq!(
        w.outcome("POST", "/api/proxy/pd/incidents", &jane),
        (403, "permission_denied".to_string())
    );
    // Another user, another permission or action asks again.
    let joe = w.user("user:default/joe");
    assert_eq!(
        w.outcome("POST", "/api/proxy/pd/incidents", &joe),
        (0, "proxy.endpoint.pd.write:update".to_string())
    );
    assert_eq!(
        w.outcome("GET", "/api/proxy/pd/incidents", &jane),
        (0, "proxy.endpoint.pd".to_string())
    );
}

#[test]
fn where_both_are_given_principals_and_permission_must_hold() {
    let mut w = World::new(ACCESS);
    let jane = w.user("user:default/jane");
    let ops = w.user("user:default/ops");
    // Not among the rule's principals: refused before anyone is asked.
    assert_eq!(
        w.outcome("GET", "/api/proxy/pd/ops", &jane),
        (403, "not_allowed_by_policy".to_string())
    );
    // Among them: the permission is asked.
    assert_eq!(
        w.outcome("GET", "/api/proxy/pd/ops", &ops),
        (0, "proxy.endpoint.pd.ops".to_string())
    );
    let key = question_key(
        &ops,
        &crate::permission::Permission {
            name: "proxy.endpoint.pd.ops".into(),
            action: None,
        },
    );
    w.auth.permissions.insert(key, Answer::Deny, NOW * 1000);
    assert_eq!(
        w.outcome("GET", "/api/proxy/pd/ops", &ops),
        (403, "permission_denied".to_string())
    );
}

#[test]
fn a_plugin_acting_for_a_user_is_refused_where_a_permission_is_asked() {
    let mut w = World::new(ACCESS);
    let obo = w.on_behalf("user:default/jane");
    let d = w.decide("GET", "/api/proxy/pd/x", &obo);
    let Decision::Reply {
        reply,
        principal,
        permission,
        ..
    } = d
    else {
        panic!("{d:?}")
    };
    assert_eq!(reply.status, 403);
    assert_eq!(reply.reason, Some(Reason::PermissionOnBehalf));
    assert_eq!(body(&reply)["error"]["name"], "NotAllowedError");
    assert_eq!(principal, Some(Principal::User("user:default/jane".into())));
    assert_eq!(permission.as_deref(), Some("proxy.endpoint.pd=UNCHECKABLE"));
    // Where no permission is asked, it is the user, as before.
    assert_eq!(w.outcome("GET", "/api/proxy/pd/open", &obo).0, 200);
}

#[test]
fn the_access_log_names_each_permission_and_its_answer() {
    let mut w = World::new(ACCESS);
    let Decision::Forward(f) = w.decide("GET", "/api/proxy/pd/x", NAMED) else {
        panic!()
    };
    assert_eq!(f.permission.as_deref(), Some("proxy.endpoint.pd=ALLOW"));
    let Decision::Reply { permission, .. } = w.decide("POST", "/api/proxy/pd/incidents", NAMED)
    else {
        panic!()
    };
    assert_eq!(
        permission.as_deref(),
        Some("proxy.endpoint.pd.write:update=DENY")
    );
    // No permission asked: nothing written.
    let Decision::Forward(f) = w.decide("GET", "/api/proxy/other/x", NAMED) else {
        panic!()
    };
    assert_eq!(f.permission, None);
}

#[test]
fn a_request_landing_under_a_policied_target_needs_its_permission_too() {
    // `/wide` targets the origin of `/pd`: a request through `/wide` that
    // lands under `/pd`'s target needs `/pd`'s permission.
    let cfg = format!(
        r#"{{"proxy":{{"endpoints":{{"/pd":"http://pd.test/v1","/wide":"http://pd.test"}}}},
          "backend":{{"baseUrl":"http://backstage:7007","auth":{{"externalAccess":[
            {{"type":"static","options":{{"token":"{NAMED}","subject":"named"}},"accessRestrictions":[{{"plugin":"proxy","permission":"proxy.endpoint.wide"}}]}}]}}}},
          "gateway":{{"access":{{"/pd":{{"permission":"proxy.endpoint.pd"}},"/wide":{{"permission":"proxy.endpoint.wide"}}}}}}}}"#
    );
    let plan = parse(cfg.as_bytes(), &|_| None).unwrap();
    let mut auth = AuthState::new(&plan);
    let mut run = |path: &'static str| {
        let headers = vec![(
            "authorization".to_string(),
            format!("Bearer {NAMED}").into_bytes(),
        )];
        let request = Request {
            method: "GET",
            path: Some(path),
            authority: "gw",
            downstream_tls: false,
            headers: &header_view(&headers),
            client_address: None,
            now_ms: NOW * 1000,
        };
        match decide(&plan, &mut auth, &request) {
            Decision::Forward(_) => 200,
            Decision::Reply { reply, .. } => reply.status,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(run("/api/proxy/wide/elsewhere"), 200);
    for spelling in [
        "/api/proxy/wide/v1/x",
        "/api/proxy/wide/V1/x",
        "/api/proxy/wide/%761/x",
    ] {
        assert_eq!(run(spelling), 403, "{spelling}");
    }
}

#[test]
fn permissions_need_the_backend_and_are_spelled_strictly() {
    let bad = |access: &str, backend: &str| {
        let cfg = format!(
            r#"{{"proxy":{{"endpoints":{{"/pd":"http://pd.test"}}}},"backend":{{{backend}}},"gateway":{{"access":{access}}}}}"#
        );
        match parse(cfg.as_bytes(), &|_| None) {
            Ok(_) => Vec::new(),
            Err(errs) => errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        }
    };
    let with = r#""baseUrl":"http://backstage:7007""#;
    let has = |errs: Vec<String>, want: &str| {
        assert!(errs.iter().any(|e| e.contains(want)), "{want}: {errs:?}");
    };
    has(
        bad(r#"{"/pd":{"permission":"p"}}"#, ""),
        "gateway.access./pd.permission: needs the Backstage backend",
    );
    has(
        bad(r#"{"/pd":{"rules":[{"permission":"p"}]}}"#, ""),
        "gateway.access./pd.rules[0].permission: needs the Backstage backend",
    );
    has(
        bad(
            r#"{"/pd":{"permission":{"name":"p","action":"use"}}}"#,
            with,
        ),
        "gateway.access./pd.permission.action: unknown action 'use'",
    );
    has(
        bad(r#"{"/pd":{"permission":{"name":"p","verb":"read"}}}"#, with),
        "gateway.access./pd.permission.verb: unknown key",
    );
    has(
        bad(r#"{"/pd":{"permission":{"action":"read"}}}"#, with),
        "gateway.access./pd.permission.name: is required",
    );
    for name in [r#""""#, r#""a b""#, r#""a,b""#, r#""a\tb""#, "1", "[\"a\"]"] {
        assert!(
            !bad(&format!(r#"{{"/pd":{{"permission":{name}}}}}"#), with).is_empty(),
            "{name}"
        );
    }
    has(
        bad(r#"{"/pd":{"rules":[{"path":"/x"}]}}"#, with),
        "gateway.access./pd.rules[0].allow: is required (or a permission)",
    );
    has(
        bad(
            r#"{"/pd":{"rules":[{"path":"/x","permission":{"name":"p","action":1}}]}}"#,
            with,
        ),
        "gateway.access./pd.rules[0].permission.action",
    );
    assert!(bad(r#"{"/pd":{"permission":"proxy.endpoint.pd","rules":[{"methods":["POST"],"permission":{"name":"proxy.endpoint.pd.write","action":"create"}}]}}"#, with).is_empty());
}
