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
use crate::path::{lands_exactly, lands_under};
use crate::permission::Permission;

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
    /// As written (visible ASCII, leading `/`, no trailing `/`); `None`:
    /// every path.
    pub path: Option<String>,
    /// `None`: any principal the credentials admit (a rule that names only
    /// a permission).
    pub allow: Option<Vec<Matcher>>,
    /// A Backstage permission the caller must also hold.
    pub permission: Option<Permission>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `None`: any principal the credentials admit.
    pub allow: Option<Vec<Matcher>>,
    /// A Backstage permission the caller must also hold where no rule
    /// decides.
    pub permission: Option<Permission>,
    pub rules: Vec<Rule>,
}

/// What a policy asks of one request: whether its principal lists admit
/// the caller, and the permissions the caller must hold besides (those of
/// the rule, or the endpoint, that decides under each reading).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Demand<'p> {
    pub admitted: bool,
    pub permissions: Vec<&'p Permission>,
}

impl<'p> Demand<'p> {
    fn add(&mut self, (admitted, permission): (bool, Option<&'p Permission>)) {
        self.admitted &= admitted;
        if let Some(p) = permission {
            if !self.permissions.contains(&p) {
                self.permissions.push(p);
            }
        }
    }
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
    /// endpoint, by its principal lists alone; `rest` is the path below the
    /// endpoint's key (`/incidents/1`, or empty).
    pub fn allows(
        &self,
        method: &str,
        rest: &str,
        principal: &Principal,
        ownership: &Ownership,
    ) -> bool {
        let d = self.demands(method, rest, principal, ownership);
        d.admitted && d.permissions.is_empty()
    }

    /// What this request through the policy's own endpoint needs.
    pub fn demands(
        &self,
        method: &str,
        rest: &str,
        principal: &Principal,
        ownership: &Ownership,
    ) -> Demand<'_> {
        let mut out = Demand {
            admitted: true,
            permissions: Vec::new(),
        };
        for reading in Reading::BOTH {
            out.add(self.decide(
                reading,
                method,
                |p| reading.under(rest, p),
                principal,
                ownership,
            ));
        }
        out
    }

    /// What a request that lands under this policy's endpoint's target
    /// (`base`) through another endpoint needs: `upstream` is the path the
    /// upstream receives, and rule paths are read below `base`, as they are
    /// below the policy's own endpoint.
    pub fn demands_landed(
        &self,
        method: &str,
        upstream: &str,
        base: &str,
        principal: &Principal,
        ownership: &Ownership,
    ) -> Demand<'_> {
        let base = base.trim_end_matches('/');
        let mut out = Demand {
            admitted: true,
            permissions: Vec::new(),
        };
        for reading in Reading::BOTH {
            out.add(self.decide(
                reading,
                method,
                |p| reading.under(upstream, &format!("{base}{p}")),
                principal,
                ownership,
            ));
        }
        out
    }

    /// Which rule decides a request through the policy's own endpoint
    /// (its index; `None`: the endpoint's `allow`), as the widest and as
    /// the exact reading find it: for the tool's `explain`, which names
    /// both when they differ.
    pub fn deciding_rules(&self, method: &str, rest: &str) -> [Option<usize>; 2] {
        Reading::BOTH.map(|reading| self.rule(reading, method, |p| reading.under(rest, p)))
    }

    /// The first rule whose methods and path match.
    fn rule(&self, reading: Reading, method: &str, under: impl Fn(&str) -> bool) -> Option<usize> {
        self.rules.iter().position(|r| {
            r.methods
                .as_ref()
                .is_none_or(|m| m.iter().any(|m| reading.method(m, method)))
                && r.path.as_ref().is_none_or(|p| under(p))
        })
    }

    /// The first rule whose methods and path match decides, else the
    /// endpoint: whether its principals admit the caller, and its
    /// permission.
    fn decide(
        &self,
        reading: Reading,
        method: &str,
        under: impl Fn(&str) -> bool,
        principal: &Principal,
        ownership: &Ownership,
    ) -> (bool, Option<&Permission>) {
        let rule = self
            .rule(reading, method, under)
            .and_then(|i| self.rules.get(i));
        let (allow, permission) = match rule {
            Some(r) => (r.allow.as_ref(), r.permission.as_ref()),
            None => (self.allow.as_ref(), self.permission.as_ref()),
        };
        let admitted = allow.is_none_or(|list| list.iter().any(|m| m.holds(principal, ownership)));
        (admitted, permission)
    }
}

/// How a request's method and path are read against a rule. A rule may
/// allow more than its endpoint or refuse more, and the upstream behind it
/// may read a request more widely (methods in any case, `\` as `/`,
/// letters folded) or exactly as sent: a policy admits a request only when
/// it admits it under both readings, so no rule reaches further than the
/// narrowest server reads it when it allows, or less far than the widest
/// when it refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// As the most lenient servers read it ([`method_matches`],
    /// [`lands_under`]).
    Widest,
    /// Byte for byte: the method as sent, the path's segments as sent.
    Exact,
}

impl Reading {
    const BOTH: [Reading; 2] = [Reading::Widest, Reading::Exact];

    fn method(self, rule: &str, request: &str) -> bool {
        match self {
            Reading::Widest => method_matches(rule, request),
            Reading::Exact => rule == request,
        }
    }

    fn under(self, path: &str, base: &str) -> bool {
        match self {
            Reading::Widest => lands_under(path, base),
            Reading::Exact => lands_exactly(path, base),
        }
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
