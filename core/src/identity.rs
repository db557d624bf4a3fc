//! Who a request speaks for, once its credentials are verified: the
//! principal policies, budgets and the access log name, and the entity
//! references a user owns through.

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A Backstage user (`user:default/jane`).
    User(String),
    /// A plugin (`plugin:catalog`) or an external caller (`external:…`, or a
    /// static token's configured subject).
    Service(String),
}

impl Principal {
    /// The principal as the access log names it: a user's or plugin's
    /// entity reference, or a service principal's subject.
    pub fn name(&self) -> &str {
        match self {
            Principal::User(s) | Principal::Service(s) => s,
        }
    }
}

/// Entity references a principal owns through (a full user token's `ent`
/// claim, lower-cased; its groups among them), shared, not copied, by
/// every request that presents the token. `None` for every other token.
pub type Ownership = Option<std::sync::Arc<[String]>>;
