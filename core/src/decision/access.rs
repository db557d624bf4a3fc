//! Step 7's first half: whether the access policies of every endpoint a
//! request lands under admit its principal (`docs/access.md`), and which
//! Backstage permissions they ask for ([`super::permissions`] answers
//! those).

use super::{Located, Request};
use crate::config::Plan;
use crate::identity::{Ownership, Principal};
use crate::permission::Permission;
use crate::reply::{Reason, Reply};

/// Step 7: the refusal when an access policy of an endpoint the request
/// lands under does not admit the principal (its own endpoint's read below
/// the key, every other's below its target); else the permissions those
/// policies ask for.
pub(super) fn check_access<'p>(
    plan: &'p Plan,
    req: &Request<'_>,
    idx: usize,
    at: &Located<'_>,
    upstream: Option<&str>,
    landed: &[usize],
    who: Option<(&Principal, &Ownership)>,
) -> Result<Vec<&'p Permission>, Reply> {
    let mut needed: Vec<&'p Permission> = Vec::new();
    let mut admitted = true;
    for &j in landed {
        let Some(e) = plan.endpoints.get(j) else {
            continue;
        };
        let Some(policy) = &e.access else {
            continue;
        };
        let Some((p, o)) = who else {
            admitted = false;
            break;
        };
        let demand = if j == idx {
            let below = at.rest.get(e.key.len()..).unwrap_or_default();
            policy.demands(req.method, below, p, o)
        } else if let Some(u) = upstream {
            policy.demands_landed(req.method, u, &e.target.path, p, o)
        } else {
            admitted = false;
            break;
        };
        admitted &= demand.admitted;
        for perm in demand.permissions {
            if !needed.contains(&perm) {
                needed.push(perm);
            }
        }
    }
    if admitted {
        return Ok(needed);
    }
    Err(req.error(
        403,
        Reason::NotAllowedByPolicy,
        "NotAllowedError",
        "This endpoint does not allow this caller",
    ))
}
