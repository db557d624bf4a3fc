//! Step 7's second half: the Backstage permissions the access policies of
//! the endpoints a request lands under ask for
//! (`docs/permissions.md#how-a-request-is-decided`), answered by the
//! caller's [`Standing`]: locally for a service principal, from the cache
//! or by asking the permission backend for a user, never for a plugin
//! acting for a user.

use super::{Caller, Decision, Request};
use crate::auth::extract::{self, Extracted};
use crate::identity::Principal;
use crate::permission::ask::{question_key, Question};
use crate::permission::{service_allows, Answer, Permission, Standing};
use crate::reply::{Reason, Reply};

/// What became of a request's permissions.
pub enum Checked {
    /// Every one holds; the access log's account of them (`None` when none
    /// was needed).
    Held(Option<String>),
    /// The decision to return: a refusal, or a question to ask first.
    Decided(Decision<'static>),
}

/// Checks `needed`, in order; the first that does not hold decides.
pub fn check(
    caller: &mut Caller<'_>,
    standing: Option<&Standing>,
    req: &Request<'_>,
    endpoint: usize,
    principal: Option<&Principal>,
    needed: &[&Permission],
) -> Checked {
    if needed.is_empty() {
        return Checked::Held(None);
    }
    let mut asked: Vec<String> = Vec::with_capacity(needed.len());
    let refuse = |reply: Reply, asked: Vec<String>| {
        Checked::Decided(
            Decision::refused_as(reply, Some(endpoint), principal.cloned())
                .with_permission(Some(asked.join(","))),
        )
    };
    for p in needed {
        let answer = match standing {
            // A policy always has credentials (step 4): no standing is no
            // principal, which no permission admits.
            None => Answer::Deny,
            Some(Standing::Service(restriction)) => {
                if service_allows(restriction.as_deref(), p) {
                    Answer::Allow
                } else {
                    Answer::Deny
                }
            }
            Some(Standing::OnBehalf) => {
                asked.push(format!("{}=UNCHECKABLE", p.label()));
                return refuse(on_behalf(req, p), asked);
            }
            Some(Standing::User) => match user_answer(caller, req, p) {
                Ok(a) => a,
                Err(question) => {
                    return Checked::Decided(Decision::NeedPermission {
                        question,
                        endpoint,
                        principal: principal.cloned(),
                    })
                }
            },
        };
        asked.push(format!("{}={}", p.label(), answer.code()));
        if answer == Answer::Deny {
            return refuse(denied(req, p), asked);
        }
    }
    Checked::Held(Some(asked.join(",")))
}

/// A user's answer from the cache, or the question to ask.
fn user_answer(
    caller: &mut Caller<'_>,
    req: &Request<'_>,
    p: &Permission,
) -> Result<Answer, Question> {
    let values = req.header_values("authorization");
    let token = match extract::extract(&values) {
        Extracted::Token(t) => t,
        // A caller taken as verified (the tool's `explain`) has no token:
        // its question is only described.
        _ => "",
    };
    match caller {
        Caller::Token(auth) => auth
            .permissions
            .get(&question_key(token, p), req.now_ms)
            .ok_or_else(|| Question::new(token, p)),
        Caller::Assumed(..) => Err(Question::new(token, p)),
    }
}

/// 403 for a permission the caller does not hold.
fn denied(req: &Request<'_>, p: &Permission) -> Reply {
    req.error(
        403,
        Reason::PermissionDenied,
        "NotAllowedError",
        &format!("Permission '{}' is not granted to this caller", p.name),
    )
}

/// 403 for a plugin acting for a user: the permission backend accepts no
/// token it holds, so the user's permission cannot be asked.
fn on_behalf(req: &Request<'_>, p: &Permission) -> Reply {
    req.error(
        403,
        Reason::PermissionOnBehalf,
        "NotAllowedError",
        &format!(
            "Permission '{}' cannot be checked for a plugin acting on a user's behalf",
            p.name
        ),
    )
}

/// 503 when the permission backend gave no usable answer (fail closed).
pub fn unavailable(req: &Request<'_>) -> Reply {
    req.error(
        503,
        Reason::PermissionUnavailable,
        "ServiceUnavailableError",
        "The permission backend could not be asked",
    )
}
