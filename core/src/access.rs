//! Who may call an endpoint (`gateway.access`), beyond Backstage's "any
//! valid credential": the policy's type and its check. Parsing is
//! [`crate::config`]'s.
//!
//! ```json
//! "gateway": { "access": {
//!   "/pagerduty": {
//!     "allow": ["user"],
//!     "rules": [{ "methods": ["POST", "PUT"], "path": "/incidents",
//!                 "allow": ["group:default/sre", "plugin:scaffolder"] }]
//!   } } }
//! ```
//!
//! A principal matches `user`, `plugin` or `external` (its kind, from the
//! kind of token verified, never from what a subject says: static tokens,
//! legacy secrets and `jwks` callers are external whatever their subject),
//! `user:<ref>`, `plugin:<id>` (a plugin token's), `subject:<s>` (an
//! external caller's subject as Backstage gives it, e.g. a static token's
//! configured subject) or `group:<ref>`, which holds when the user token's
//! `ent` claim lists the group. Only full user tokens carry `ent`; a plugin
//! token acting for a user (`obo`) carries a limited user token, which does
//! not: for it no `group:` matcher holds (the request is refused unless
//! another matcher allows it). Entity references compare without regard to
//! case, as Backstage's do.
//!
//! The first rule whose methods and path both match the request decides
//! (the path below the endpoint, read as servers read it: segment by
//! segment, unreserved `%XX` and `%2F` decoded, `;` parameters dropped, any
//! letter case, so `/%69ncidents` is `/incidents`); with none,
//! the endpoint's `allow` does; with no `allow` either, any principal the
//! endpoint's credentials admit. A policy always needs credentials, even
//! with `dangerouslyDisableDefaultAuthPolicy`; an endpoint that is
//! `dangerously-allow-unauthenticated` cannot have one.

use crate::identity::{Ownership, Principal};
use crate::path::lands_under;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    AnyUser,
    AnyPlugin,
    AnyExternal,
    User(String),
    Plugin(String),
    Subject(String),
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `None`: every method.
    pub methods: Option<Vec<String>>,
    /// Lower-cased, leading `/`, no trailing `/`; `None`: every path.
    pub path: Option<String>,
    pub allow: Vec<Matcher>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `None`: any principal the credentials admit.
    pub allow: Option<Vec<Matcher>>,
    pub rules: Vec<Rule>,
}

impl Matcher {
    fn holds(&self, principal: &Principal, ownership: &Ownership) -> bool {
        match (self, principal) {
            (Matcher::AnyUser, Principal::User(_)) => true,
            (Matcher::User(r), Principal::User(sub)) => sub.eq_ignore_ascii_case(r),
            (Matcher::Group(g), Principal::User(_)) => ownership
                .as_ref()
                .is_some_and(|ent| ent.iter().any(|e| e.eq_ignore_ascii_case(g))),
            (Matcher::AnyPlugin, Principal::Plugin(_)) => true,
            (Matcher::AnyExternal, Principal::External(_)) => true,
            (Matcher::Plugin(id), Principal::Plugin(s)) => s
                .strip_prefix("plugin:")
                .is_some_and(|p| p.eq_ignore_ascii_case(id)),
            (Matcher::Subject(subject), Principal::External(s)) => s == subject,
            _ => false,
        }
    }
}

impl Policy {
    /// Whether `principal` may make this request through the policy's own
    /// endpoint; `rest` is the path below the endpoint's key
    /// (`/incidents/1`, or empty).
    pub fn allows(
        &self,
        method: &str,
        rest: &str,
        principal: &Principal,
        ownership: &Ownership,
    ) -> bool {
        self.decide(
            method,
            |rule_path| lands_under(rest, rule_path),
            principal,
            ownership,
        )
    }

    /// Whether `principal` may make a request that lands under this
    /// policy's endpoint's target (`base`) through another endpoint:
    /// `upstream` is the path the upstream receives, and rule paths are
    /// read below `base`, as they are below the policy's own endpoint.
    pub fn allows_landed(
        &self,
        method: &str,
        upstream: &str,
        base: &str,
        principal: &Principal,
        ownership: &Ownership,
    ) -> bool {
        let base = base.trim_end_matches('/');
        self.decide(
            method,
            |rule_path| lands_under(upstream, &format!("{base}{rule_path}")),
            principal,
            ownership,
        )
    }

    /// The first rule whose methods and path match decides, else the
    /// endpoint's `allow`.
    fn decide(
        &self,
        method: &str,
        under: impl Fn(&str) -> bool,
        principal: &Principal,
        ownership: &Ownership,
    ) -> bool {
        let rule = self.rules.iter().find(|r| {
            r.methods
                .as_ref()
                .is_none_or(|m| m.iter().any(|m| method_matches(m, method)))
                && r.path.as_ref().is_none_or(|p| under(p))
        });
        let allow = match rule {
            Some(r) => Some(&r.allow),
            None => self.allow.as_ref(),
        };
        allow.is_none_or(|list| list.iter().any(|m| m.holds(principal, ownership)))
    }
}

/// Whether a rule's method (upper-case, as configuration requires) holds
/// for a request's, as servers compare them: in any letter case (HTTP/2
/// lets a client send `post`, and ASP.NET compares ignoring case, Django
/// and Werkzeug upper-case it), and a rule for `GET` holds for `HEAD`
/// (Express and Go's mux run the GET handler for HEAD).
pub fn method_matches(rule: &str, request: &str) -> bool {
    rule.eq_ignore_ascii_case(request) || (rule == "GET" && request.eq_ignore_ascii_case("HEAD"))
}
