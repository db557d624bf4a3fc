//! `explain`: what the gateway decides for one request and why
//! (`docs/cli.md#explain`). The decision is the filter's own
//! ([`decision::decide_as`]), for a caller given as a principal (taken as
//! verified) or as a token verified offline (static and legacy tokens; a
//! user, plugin or `jwks` token needs its key set, which `explain` does
//! not fetch). Around it: which endpoint matched, where the request lands
//! upstream, which access rule decides and which budgets would be spent.
//! Injected header values are never shown, only their names.

use std::borrow::Cow;
use std::sync::Arc;

use backstage_proxy_core::auth::AuthState;
use backstage_proxy_core::config::{Endpoint, Plan};
use backstage_proxy_core::decision::{self, Caller, Decision, Request};
use backstage_proxy_core::identity::{Ownership, Principal};
use backstage_proxy_core::ratelimit::Budget;
use serde_json::{json, Map, Value};

/// Who calls, as `explain` is told.
pub enum Who {
    /// `user:default/eve` (with the groups a user token's `ent` would
    /// carry), `plugin:catalog`, or `external:<subject>`.
    Principal(Principal, Vec<String>),
    /// A bearer token, verified as the filter verifies it.
    Token(String),
    Nobody,
}

/// Reads `user:…`, `plugin:…` or `external:…` (also `subject:…`, as
/// policies name service principals).
pub fn parse_principal(s: &str, groups: &[String]) -> Result<Who, String> {
    let (kind, name) = s.split_once(':').ok_or_else(|| {
        format!("'{s}': a principal is user:<ref>, plugin:<id> or external:<subject>")
    })?;
    if name.is_empty() {
        return Err(format!("'{s}': the name after '{kind}:' is empty"));
    }
    let p = match kind {
        "user" => Principal::User(s.to_ascii_lowercase()),
        "plugin" => Principal::Plugin(s.to_ascii_lowercase()),
        "external" | "subject" => Principal::External(name.to_string()),
        other => {
            return Err(format!(
                "'{other}:' is no kind of principal; use user:, plugin: or external:"
            ))
        }
    };
    if !groups.is_empty() && !matches!(p, Principal::User(_)) {
        return Err("--group is for a user principal (a user token's ent claim)".to_string());
    }
    Ok(Who::Principal(p, groups.to_vec()))
}

/// The request `explain` is asked about.
pub struct Question<'q> {
    pub method: &'q str,
    pub path: &'q str,
    /// Extra request headers (`name: value`), e.g. `upgrade: websocket`.
    pub headers: Vec<(String, String)>,
    pub who: Who,
    pub now_ms: u64,
}

/// What the gateway decides, with its reasons: the JSON `--format json`
/// prints, and lines for people.
pub fn explain(plan: &Plan, q: &Question<'_>) -> Value {
    let mut headers: Vec<(String, Vec<u8>)> = q
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    headers.push((":authority".to_string(), b"gateway.example".to_vec()));
    if let Who::Token(t) = &q.who {
        headers.push((
            "authorization".to_string(),
            format!("Bearer {t}").into_bytes(),
        ));
    }
    let view = decision::header_view(&headers);
    let req = Request {
        method: q.method,
        path: Some(q.path),
        authority: "gateway.example",
        downstream_tls: true,
        headers: &view,
        client_address: Some("192.0.2.1"),
        now_ms: q.now_ms,
    };
    let Some(at) = decision::locate(plan, &req) else {
        return json!({
            "request": format!("{} {}", q.method, q.path),
            "decision": format!("not under the prefix {}: passed on untouched", plan.gateway.prefix),
        });
    };
    let mut auth = AuthState::new(plan);
    let mut caller = match &q.who {
        Who::Principal(p, groups) => Caller::Assumed(p.clone(), ownership(p, groups)),
        Who::Token(_) | Who::Nobody => Caller::Token(&mut auth),
    };
    let decided = decision::decide_as(plan, &mut caller, &req, &at);
    let mut out = Map::new();
    out.insert("request".into(), json!(format!("{} {}", q.method, q.path)));
    if let Some((idx, e)) = backstage_proxy_core::routing::match_endpoint(plan, at.rest()) {
        out.insert("endpoint".into(), json!({
            "key": e.raw_key,
            "target": format!("{}://{}{}", e.target.scheme, e.target.authority(), e.target.path),
            "credentials": e.credentials.as_str(),
        }));
        let landed = match &decided {
            Decision::Forward(f) => f.landed.clone(),
            _ => vec![idx],
        };
        out.insert(
            "landsUnder".into(),
            json!(landed
                .iter()
                .filter_map(|&j| plan.endpoints.get(j).map(|e| e.raw_key.clone()))
                .collect::<Vec<_>>()),
        );
        if let Some(policy) = &e.access {
            let below = at.rest().get(e.key.len()..).unwrap_or_default();
            out.insert("access".into(), access(policy, &e.raw_key, q.method, below));
        }
        if matches!(decided, Decision::Forward(_)) {
            out.insert("budgets".into(), budgets(plan, &landed));
        }
    }
    out.insert("decision".into(), decision(plan, decided));
    Value::Object(out)
}

/// A user principal owns through itself and its groups, as a user token's
/// `ent` claim says.
fn ownership(p: &Principal, groups: &[String]) -> Ownership {
    match p {
        Principal::User(r) => {
            let mut ent = vec![r.clone()];
            ent.extend(groups.iter().map(|g| g.to_ascii_lowercase()));
            Some(Arc::from(ent))
        }
        _ => None,
    }
}

fn access(
    policy: &backstage_proxy_core::access::Policy,
    key: &str,
    method: &str,
    below: &str,
) -> Value {
    let label = |p: Option<&backstage_proxy_core::permission::Permission>| p.map(|p| p.label());
    let describe = |i: Option<usize>| match i.and_then(|i| policy.rules.get(i).map(|r| (i, r))) {
        Some((i, r)) => json!({
            "rule": format!("gateway.access.{key}.rules[{i}]"),
            "methods": r.methods,
            "path": r.path,
            "permission": label(r.permission.as_ref()),
        }),
        None => json!({
            "rule": format!("gateway.access.{key}.allow"),
            "permission": label(policy.permission.as_ref()),
        }),
    };
    let [widest, exact] = policy.deciding_rules(method, below);
    if widest == exact {
        json!({ "decidedBy": describe(exact) })
    } else {
        json!({
            "decidedBy": describe(exact),
            "alsoDecidedBy": describe(widest),
            "note": "a lenient upstream reads this request as another rule's: both must admit it",
        })
    }
}

fn budget(b: &Budget) -> Value {
    json!({ "requests": b.requests, "seconds": b.window_ms / 1000 })
}

fn budgets(plan: &Plan, landed: &[usize]) -> Value {
    let by = if plan.gateway.rate_limit_service.is_some() {
        "the rate limit service (gateway.rateLimitService), for the whole fleet"
    } else {
        "the filter, per gateway replica"
    };
    let list: Vec<Value> = landed
        .iter()
        .filter_map(|&j| plan.endpoints.get(j))
        .filter_map(|e: &Endpoint| {
            let rl = e.rate_limit.as_ref().filter(|r| !r.is_empty())?;
            Some(json!({
                "endpoint": e.raw_key,
                "perPrincipal": rl.per_principal.as_ref().map(budget),
                "total": rl.total.as_ref().map(budget),
            }))
        })
        .collect();
    if list.is_empty() {
        json!("none applies")
    } else {
        json!({ "countedBy": by, "spent": list })
    }
}

fn decision(plan: &Plan, d: Decision<'_>) -> Value {
    match d {
        Decision::PassThrough { .. } => json!({ "outcome": "passed on untouched" }),
        Decision::NeedKeys(source) => json!({
            "outcome": "undecided",
            "why": format!("the token needs the key set at {}, which explain does not fetch; give --principal to explain it for a verified caller", source.url),
        }),
        Decision::NeedPermission {
            question,
            principal,
            ..
        } => json!({
            "outcome": "undecided",
            "principal": principal.as_ref().map(Principal::name),
            "why": format!("Backstage's permission backend decides: the gateway asks it whether this user holds '{}' (allowed: forwarded; denied: 403 permission_denied; no answer: 503 permission_unavailable)", question.permission.label()),
        }),
        Decision::Reply {
            reply,
            principal,
            permission,
            ..
        } => {
            let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
            json!({
                "outcome": "refused",
                "status": reply.status,
                "reason": reply.reason.map(|r| r.code()),
                "error": body.get("error"),
                "principal": principal.as_ref().map(Principal::name),
                "permissions": permission,
            })
        }
        Decision::Forward(f) => {
            let get = |name: &str| {
                f.set
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.to_string())
            };
            let endpoint = plan.endpoints.get(f.endpoint);
            let authority = get(":authority").unwrap_or_else(|| "gateway.example".to_string());
            let scheme = endpoint.map_or("http", |e| e.target.scheme.as_str());
            let names = |list: Vec<Cow<'_, str>>| -> Vec<String> {
                list.into_iter()
                    .map(|n| n.into_owned())
                    .filter(|n| !n.starts_with(':'))
                    .collect()
            };
            json!({
                "outcome": "forwarded",
                "principal": f.principal.as_ref().map(Principal::name),
                "permissions": f.permission,
                "upstream": format!("{scheme}://{authority}{}", get(":path").unwrap_or_default()),
                "cluster": endpoint.map(|e| e.cluster.clone()),
                "headersSet": names(f.set.into_iter().map(|(n, _)| n).collect()),
                "headersRemoved": names(f.remove),
            })
        }
    }
}

/// The explanation as lines for people.
pub fn text(v: &Value) -> String {
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: &Value| {
        let shown = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&format!("{k:<12} {shown}\n"));
    };
    if let Value::Object(m) = v {
        for (k, v) in m {
            match v {
                Value::Object(inner) => {
                    out.push_str(&format!("{k}:\n"));
                    for (ik, iv) in inner {
                        line(&mut out, &format!("  {ik}"), iv);
                    }
                }
                other => line(&mut out, k, other),
            }
        }
    }
    out
}
