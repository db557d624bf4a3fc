//! Who a request speaks for, once its credentials are verified: the
//! principal policies, budgets and the access log name, and the entity
//! references a user owns through.

/// Who a valid token speaks for. The kind comes from the kind of token
/// that was verified, never from what its subject says: a static token
/// whose subject is `plugin:scaffolder` is an external caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A Backstage user (`user:default/jane`): a user token, or a plugin
    /// token acting for the user (`obo`).
    User(String),
    /// A Backstage plugin (`plugin:catalog`): a plugin token.
    Plugin(String),
    /// A caller outside Backstage: a static token's or a legacy secret's
    /// configured subject, or a `jwks` entry's `external:[<prefix>:]<sub>`.
    External(String),
}

impl Principal {
    /// The principal as the access log names it: a user's or plugin's
    /// entity reference, or a service principal's subject.
    pub fn name(&self) -> &str {
        match self {
            Principal::User(s) | Principal::Plugin(s) | Principal::External(s) => s,
        }
    }
}

/// Entity references a principal owns through (a full user token's `ent`
/// claim, lower-cased; its groups among them), shared, not copied, by
/// every request that presents the token. `None` for every other token.
pub type Ownership = Option<std::sync::Arc<[String]>>;
