//! The whole request path as the filter runs it, and what the filter
//! applies: CORS first (as Backstage's middleware runs before anything
//! else), then [`decide`], then the endpoint's budgets.

use std::borrow::Cow;

use super::{budget, decide_located, Decision, Request};
use crate::audit::{self, Outcome};
use crate::auth::jwks::store::Source;
use crate::auth::AuthState;
use crate::config::Plan;
use crate::cors::Answer as Cors;
use crate::identity::Principal;
use crate::permission::ask::Question;
use crate::reply::{self, Reason, Reply};
use crate::shared_data::SharedData;

/// What the filter does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Let it go on, with these edits.
    Continue(Continue<'a>),
    /// Answer it now.
    Answer(Answer),
    /// Pause it until this key set is here (or cannot be had: then answer
    /// [`key_set_unavailable`]), and handle it again.
    Wait(Source),
    /// Pause it until the permission backend answers (or cannot: then
    /// answer [`permission_unavailable`]), and handle it again.
    Ask(Asking),
}

/// A request waiting for the permission backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asking {
    pub question: Question,
    /// Whom a refusal names.
    pub endpoint: usize,
    pub principal: Option<Principal>,
}

/// A request that goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continue<'a> {
    /// Request headers to remove, every value.
    pub remove: Vec<Cow<'a, str>>,
    /// Request headers to set, replacing.
    pub set: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub record: Record,
    /// The path as sent, to keep as filter state
    /// ([`audit::REQUEST_URL_KEY`]) when the rate limit service decides.
    pub request_url: Option<&'a str>,
    /// What its response needs.
    pub after: After,
}

/// A local reply, with the CORS headers it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub reply: Reply,
    pub record: Record,
}

/// What the response of a request that went on needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct After {
    /// The endpoint it was forwarded to (its response allow-list); `None`
    /// outside the prefix.
    pub endpoint: Option<usize>,
    /// CORS headers to add, unless the response carries them already.
    pub cors: Vec<(&'static str, String)>,
}

/// Who did what: for the counters, and the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub outcome: Outcome,
    pub endpoint: Option<usize>,
    pub principal: Option<Principal>,
    /// The permissions asked and their answers (`name[:action]=ALLOW`,
    /// comma-separated), when a policy asked any.
    pub permission: Option<String>,
}

impl Record {
    /// Whether the access log records it (requests outside the prefix are
    /// not the filter's).
    pub fn logged(&self) -> bool {
        self.outcome != Outcome::PassThrough
    }

    /// The endpoint's key as configured, or `-`.
    pub fn endpoint_key<'p>(&self, plan: &'p Plan) -> &'p str {
        self.endpoint
            .and_then(|i| plan.endpoints.get(i))
            .map_or(audit::ABSENT, |e| e.raw_key.as_str())
    }

    /// The filter state the access log reads: principal, endpoint,
    /// decision, each as the log may show it ([`audit::loggable`]).
    pub fn filter_state<'s>(&'s self, plan: &'s Plan) -> [(&'static str, Cow<'s, str>); 3] {
        let principal = self
            .principal
            .as_ref()
            .map_or(audit::ABSENT, Principal::name);
        [
            (audit::PRINCIPAL_KEY, audit::loggable(principal)),
            (
                audit::ENDPOINT_KEY,
                audit::loggable(self.endpoint_key(plan)),
            ),
            (audit::DECISION_KEY, Cow::Borrowed(self.outcome.code())),
        ]
    }

    /// The filter state naming the permissions asked, when any were: a
    /// fourth key only requests with permissions pay for.
    pub fn permission_state(&self) -> Option<(&'static str, Cow<'_, str>)> {
        let p = self.permission.as_deref()?;
        Some((audit::PERMISSION_KEY, audit::loggable(p)))
    }
}

/// One request, from its headers to what the filter applies. `shared` is
/// the store the filter's own budgets count in.
pub fn handle<'a>(
    plan: &'a Plan,
    auth: &mut AuthState,
    shared: &mut dyn SharedData,
    req: &Request<'a>,
) -> Verdict<'a> {
    // Where the request stands is read once, for CORS and the pipeline:
    // outside the prefix, neither is the filter's.
    let at = super::locate(plan, req);
    let cors = match &at {
        None => Vec::new(),
        Some(_) => match cors(plan, req) {
            Err(preflight) => return Verdict::Answer(*preflight),
            Ok(headers) => headers,
        },
    };
    let decision = match &at {
        None => super::pass_through(plan),
        Some(at) => decide_located(plan, auth, req, at),
    };
    match decision {
        Decision::PassThrough { remove } => Verdict::Continue(Continue {
            remove,
            set: Vec::new(),
            record: Record {
                outcome: Outcome::PassThrough,
                endpoint: None,
                principal: None,
                permission: None,
            },
            request_url: None,
            after: After {
                endpoint: None,
                cors,
            },
        }),
        Decision::Reply {
            reply,
            endpoint,
            principal,
            outcome,
            permission,
        } => Verdict::Answer(Answer {
            reply: with_cors(reply, &cors),
            record: Record {
                outcome,
                endpoint,
                principal,
                permission,
            },
        }),
        Decision::NeedKeys(source) => Verdict::Wait(source),
        Decision::NeedPermission {
            question,
            endpoint,
            principal,
        } => Verdict::Ask(Asking {
            question,
            endpoint,
            principal,
        }),
        Decision::Forward(fwd) => forwarded(plan, shared, req, fwd, cors),
    }
}

/// A request the pipeline forwards: its budgets are spent (here, or by the
/// rate limit service, which then gets what it needs), or it is refused.
fn forwarded<'a>(
    plan: &'a Plan,
    shared: &mut dyn SharedData,
    req: &Request<'a>,
    mut fwd: super::Forward<'a>,
    cors: Vec<(&'static str, String)>,
) -> Verdict<'a> {
    let mut request_url = None;
    // With the service, Envoy's rate limit filter decides, for the
    // whole fleet; its refusal's body names the path as the client
    // sent it. Without it, the filter counts.
    if budget::hand_to_service(plan, req.headers, &mut fwd) {
        request_url = Some(req.path.unwrap_or_default());
    }
    let counted_here = plan.gateway.rate_limit_service.is_none();
    if let Some(r) = counted_here
        .then(|| budget::spend(plan, shared, req, &fwd))
        .flatten()
    {
        return Verdict::Answer(Answer {
            reply: with_cors(r, &cors),
            record: Record {
                outcome: Outcome::Denied(Reason::RateLimited),
                endpoint: Some(fwd.endpoint),
                principal: fwd.principal,
                permission: fwd.permission,
            },
        });
    }
    Verdict::Continue(Continue {
        remove: fwd.remove,
        set: fwd.set,
        record: Record {
            outcome: Outcome::Allowed,
            endpoint: Some(fwd.endpoint),
            principal: fwd.principal,
            permission: fwd.permission,
        },
        request_url,
        after: After {
            endpoint: Some(fwd.endpoint),
            cors,
        },
    })
}

/// The answer to a request whose key set could not be had (the fetch
/// failed, or too many requests already wait): 401, as a token nobody can
/// verify is.
pub fn key_set_unavailable(plan: &Plan, req: &Request<'_>) -> Answer {
    let cors = cors(plan, req).unwrap_or_default();
    let reply = reply::unauthenticated(
        Reason::KeySetUnavailable,
        "Invalid token",
        req.method,
        req.path.unwrap_or_default(),
    );
    Answer {
        reply: with_cors(reply, &cors),
        record: Record {
            outcome: Outcome::Denied(Reason::KeySetUnavailable),
            endpoint: None,
            principal: None,
            permission: None,
        },
    }
}

/// The answer to a request whose permission question got no usable
/// answer (the backend was down, slow or answered something else, or too
/// many requests already wait): 503, fail closed.
pub fn permission_unavailable(plan: &Plan, req: &Request<'_>, asking: &Asking) -> Answer {
    let cors = cors(plan, req).unwrap_or_default();
    Answer {
        reply: with_cors(super::permissions::unavailable(req), &cors),
        record: Record {
            outcome: Outcome::Denied(Reason::PermissionUnavailable),
            endpoint: Some(asking.endpoint),
            principal: asking.principal.clone(),
            permission: Some(format!(
                "{}=UNAVAILABLE",
                asking.question.permission.label()
            )),
        },
    }
}

/// `backend.cors` (`docs/cors.md`) for a request under the prefix (other
/// applications behind the same gateway keep their own CORS and
/// preflights): `Err` is a preflight's
/// answer; `Ok` the headers every other answer carries (none when the
/// origin is not allowed or CORS is not configured).
fn cors(plan: &Plan, req: &Request<'_>) -> Result<Vec<(&'static str, String)>, Box<Answer>> {
    let Some(policy) = &plan.cors else {
        return Ok(Vec::new());
    };
    let origin = req.joined("origin");
    let asked = req.joined("access-control-request-headers");
    match policy.answer(req.method, origin.as_deref(), asked.as_deref()) {
        Cors::None => Ok(Vec::new()),
        Cors::Decorate(headers) => Ok(headers),
        Cors::Preflight { status, headers } => Err(Box::new(Answer {
            reply: Reply {
                status,
                headers: headers
                    .into_iter()
                    .map(|(n, v)| (n.to_string(), v))
                    .collect(),
                body: Vec::new(),
                reason: None,
            },
            record: Record {
                outcome: Outcome::CorsPreflight,
                endpoint: None,
                principal: None,
                permission: None,
            },
        })),
    }
}

/// A local reply with CORS's headers, where it does not set them itself.
fn with_cors(mut reply: Reply, cors: &[(&'static str, String)]) -> Reply {
    for (n, v) in cors {
        if !reply.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n)) {
            reply.headers.push((n.to_string(), v.clone()));
        }
    }
    reply
}

#[cfg(test)]
mod tests;
