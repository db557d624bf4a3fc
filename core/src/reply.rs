//! Local replies: Backstage's JSON error bodies and the reason codes that
//! name every outcome in logs and metrics.

use serde_json::{json, Value};

/// Why a request was answered by the filter. The code appears in metric
/// names (`backstage_proxy.denied.<code>`) and in the debug log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    UnsafePath,
    MissingCredentials,
    MultipleCredentials,
    TokenTooLarge,
    IllegalToken,
    IllegalLimitedUserToken,
    InvalidToken,
    InvalidPluginToken,
    AccessRestricted,
    NotFound,
    MethodNotAllowed,
    InvalidRewrite,
    UpgradeNotAllowed,
    KeySetUnavailable,
    /// `gateway.access`: the caller is not among those the endpoint allows.
    NotAllowedByPolicy,
    /// `gateway.access`: a Backstage permission the caller does not hold.
    PermissionDenied,
    /// `gateway.access`: a permission asked of a plugin acting for a user,
    /// which nobody can answer.
    PermissionOnBehalf,
    /// `gateway.access`: the permission backend gave no usable answer.
    PermissionUnavailable,
    /// `gateway.rateLimits`: over the endpoint's budget.
    RateLimited,
    /// `gateway.rateLimitService` with `failureModeDeny`: the service did
    /// not answer (Envoy's rate limit filter refused the request).
    RateLimitServiceError,
}

impl Reason {
    pub const ALL: [Reason; 20] = [
        Reason::UnsafePath,
        Reason::MissingCredentials,
        Reason::MultipleCredentials,
        Reason::TokenTooLarge,
        Reason::IllegalToken,
        Reason::IllegalLimitedUserToken,
        Reason::InvalidToken,
        Reason::InvalidPluginToken,
        Reason::AccessRestricted,
        Reason::NotFound,
        Reason::MethodNotAllowed,
        Reason::InvalidRewrite,
        Reason::UpgradeNotAllowed,
        Reason::KeySetUnavailable,
        Reason::NotAllowedByPolicy,
        Reason::PermissionDenied,
        Reason::PermissionOnBehalf,
        Reason::PermissionUnavailable,
        Reason::RateLimited,
        Reason::RateLimitServiceError,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::UnsafePath => "unsafe_path",
            Reason::MissingCredentials => "missing_credentials",
            Reason::MultipleCredentials => "multiple_credentials",
            Reason::TokenTooLarge => "token_too_large",
            Reason::IllegalToken => "illegal_token",
            Reason::IllegalLimitedUserToken => "illegal_limited_user_token",
            Reason::InvalidToken => "invalid_token",
            Reason::InvalidPluginToken => "invalid_plugin_token",
            Reason::AccessRestricted => "access_restricted",
            Reason::NotFound => "not_found",
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::InvalidRewrite => "invalid_rewrite",
            Reason::UpgradeNotAllowed => "upgrade_not_allowed",
            Reason::KeySetUnavailable => "key_set_unavailable",
            Reason::NotAllowedByPolicy => "not_allowed_by_policy",
            Reason::PermissionDenied => "permission_denied",
            Reason::PermissionOnBehalf => "permission_on_behalf",
            Reason::PermissionUnavailable => "permission_unavailable",
            Reason::RateLimited => "rate_limited",
            Reason::RateLimitServiceError => "rate_limit_service_error",
        }
    }
}

/// A response the filter sends itself instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `None` for answers that are not denials (the proxy's own key set).
    pub reason: Option<Reason>,
}

pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// Backstage's error body: `{"error":{"name","message"},"request":{"method","url"},"response":{"statusCode"}}`.
pub fn error_body(status: u16, name: &str, message: &str, method: &str, url: &str) -> Vec<u8> {
    let v: Value = json!({
        "error": { "name": name, "message": message },
        "request": { "method": method, "url": url },
        "response": { "statusCode": status },
    });
    v.to_string().into_bytes()
}

/// A denial with Backstage's JSON body (400, 401, 403, 405).
pub fn error(
    status: u16,
    reason: Reason,
    name: &str,
    message: &str,
    method: &str,
    url: &str,
) -> Reply {
    let mut headers = vec![("content-type".to_string(), JSON_CONTENT_TYPE.to_string())];
    if status == 401 {
        headers.push(("www-authenticate".to_string(), "Bearer".to_string()));
    }
    Reply {
        status,
        headers,
        body: error_body(status, name, message, method, url),
        reason: Some(reason),
    }
}

/// 401 `AuthenticationError`.
pub fn unauthenticated(reason: Reason, message: &str, method: &str, url: &str) -> Reply {
    error(401, reason, "AuthenticationError", message, method, url)
}

/// 404 with an empty body, as Backstage's root `notFound` handler answers.
pub fn not_found() -> Reply {
    Reply {
        status: 404,
        headers: Vec::new(),
        body: Vec::new(),
        reason: Some(Reason::NotFound),
    }
}

/// The proxy plugin's own (empty) public key set.
pub fn own_jwks() -> Reply {
    Reply {
        status: 200,
        headers: vec![("content-type".to_string(), JSON_CONTENT_TYPE.to_string())],
        body: br#"{"keys":[]}"#.to_vec(),
        reason: None,
    }
}

/// 503 with an empty body: the filter has no configuration to decide by
/// (Envoy created a stream for a VM whose configuration it refused).
pub fn unconfigured() -> Reply {
    Reply {
        status: 503,
        headers: Vec::new(),
        body: Vec::new(),
        reason: None,
    }
}

#[cfg(test)]
mod tests;
