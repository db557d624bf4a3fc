//! Backstage permissions at the edge (`docs/permissions.md`): what a
//! `permission` in `gateway.access` asks, how each kind of caller gets its
//! answer, and what the answers are kept for.
//!
//! - A user (a full user token) is answered by Backstage's permission
//!   backend, `POST <backend>/api/permission/authorize` with the user's own
//!   token; the filter pauses the request while it asks
//!   ([`ask::Asker`]) and keeps the answer briefly ([`cache::Decisions`]).
//! - A service principal (a static token, a legacy secret, a `jwks`
//!   caller, a plugin token not acting for a user) is answered here, from
//!   its `accessRestrictions`, as Backstage's server-side permission
//!   client answers it without asking the backend ([`service_allows`]).
//! - A plugin acting for a user (`obo`) carries only a limited user token,
//!   which the permission backend refuses as a bearer: the gateway cannot
//!   ask for it, and refuses it ([`Standing::OnBehalf`]).
//!
//! Only basic permissions: resource permissions and conditional answers
//! need a resource the gateway does not have.

pub mod ask;
pub mod cache;

use std::sync::Arc;

/// A permission's `attributes.action`, as the permission backend accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Create, Action::Read, Action::Update, Action::Delete];

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// A basic permission, as `gateway.access` names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Permission {
    pub name: String,
    pub action: Option<Action>,
}

impl Permission {
    /// `name` or `name:action`: how the access log and errors write it.
    pub fn label(&self) -> String {
        match self.action {
            None => self.name.clone(),
            Some(a) => format!("{}:{}", self.name, a.as_str()),
        }
    }

    /// The permission backend's request for this permission alone, under
    /// `id`: `attributes` is always sent (the backend refuses an item
    /// without it).
    pub fn request_body(&self, id: &str) -> String {
        let attributes = match self.action {
            Some(a) => serde_json::json!({ "action": a.as_str() }),
            None => serde_json::json!({}),
        };
        serde_json::json!({
            "items": [{
                "id": id,
                "permission": { "type": "basic", "name": self.name, "attributes": attributes },
            }]
        })
        .to_string()
    }
}

/// The permission part of an `accessRestrictions` entry, for the plugin id
/// this gateway is (`gateway.pluginId`): `None` fields are unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restriction {
    /// `permission`: the only permission names allowed.
    pub names: Option<Vec<String>>,
    /// `permissionAttribute.action`: the only actions allowed.
    pub actions: Option<Vec<Action>>,
}

/// How a caller's permissions are decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// A full user token: the permission backend is asked with it.
    User,
    /// A plugin token acting for a user: nobody can be asked.
    OnBehalf,
    /// A service principal, with its restrictions for this plugin id
    /// (`None`: unrestricted).
    Service(Option<Arc<Restriction>>),
}

/// A service principal's answer, as Backstage's server-side permission
/// client gives it: no restrictions allow everything; listed names allow
/// only those names (whatever the action); listed actions allow only a
/// permission that carries one of them (one without an action is
/// refused); both must hold when both are listed.
pub fn service_allows(restriction: Option<&Restriction>, p: &Permission) -> bool {
    let Some(r) = restriction else {
        return true;
    };
    if let Some(names) = &r.names {
        if !names.contains(&p.name) {
            return false;
        }
    }
    if let Some(actions) = &r.actions {
        return p.action.is_some_and(|a| actions.contains(&a));
    }
    true
}

/// What the permission backend answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Allow,
    Deny,
}

impl Answer {
    pub fn code(self) -> &'static str {
        match self {
            Answer::Allow => "ALLOW",
            Answer::Deny => "DENY",
        }
    }
}

/// Reads the permission backend's answer to a request sent under `id`:
/// exactly one item, with that id and a result of `ALLOW` or `DENY`, as
/// Backstage's own client requires (it refuses an answer whose ids do not
/// match its request). Anything else is an error, never an answer.
pub fn parse_answer(body: &[u8], id: &str) -> Result<Answer, &'static str> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the answer is not JSON")?;
    let items = v
        .get("items")
        .and_then(serde_json::Value::as_array)
        .ok_or("the answer has no items list")?;
    let [item] = items.as_slice() else {
        return Err("the answer does not hold exactly one item");
    };
    if item.get("id").and_then(serde_json::Value::as_str) != Some(id) {
        return Err("the answer's item is not the one asked");
    }
    match item.get("result").and_then(serde_json::Value::as_str) {
        Some("ALLOW") => Ok(Answer::Allow),
        Some("DENY") => Ok(Answer::Deny),
        _ => Err("the answer's result is neither ALLOW nor DENY"),
    }
}

#[cfg(test)]
mod tests;
