//! CORS as Backstage answers it (`docs/contract.md#cors`, `docs/cors.md`): the `cors` middleware (expressjs
//! cors 2.8) with the options Backstage reads from `backend.cors`, which
//! runs before anything else on every request.
//!
//! Envoy's CORS filter cannot give these answers: it has no way to reflect
//! `Access-Control-Request-Headers` (Backstage's default when
//! `allowedHeaders` is not set, so a browser's `Authorization` preflight
//! fails there), it matches origins with exact strings or RE2 rather than
//! minimatch globs, and it answers only requests carrying
//! `Access-Control-Request-Method`. So the filter answers CORS itself, the
//! same on every gateway that runs it.
//!
//! The middleware, for a request whose `Origin` is allowed (or any request
//! when `origin` is not configured):
//! - `OPTIONS` (any request with that method, as the middleware has it):
//!   answered at once with `optionsSuccessStatus` (204), `Content-Length:
//!   0`, allow-origin, `Vary`, allow-credentials, allow-methods,
//!   allow-headers (reflected when not configured), max-age and
//!   expose-headers; with `preflightContinue` the request goes on instead
//!   and its response carries them.
//! - any other method: the response (from the upstream, or a local reply)
//!   carries allow-origin, `Vary: Origin`, allow-credentials and
//!   expose-headers.
//!
//! A request whose origin is not allowed, or without `Origin` when origins
//! are configured, gets nothing from CORS and goes on (a preflight then
//! meets the credentials check, as in Backstage).

pub mod glob;

use glob::Pattern;

/// The origin sandboxed iframes, `file:` pages and some redirects send.
pub const NULL_ORIGIN: &str = "null";

/// The middleware's default `methods`.
pub const DEFAULT_METHODS: &str = "GET,HEAD,PUT,PATCH,POST,DELETE";

#[derive(Debug, Clone)]
pub struct Policy {
    /// `None`: every origin, answered with `*` (the middleware's default
    /// when `origin` is not configured).
    pub origins: Option<Vec<Pattern>>,
    /// `origin` lists `null` itself: only then is the `null` origin
    /// allowed (no pattern matches it, unlike in Backstage, where `*`
    /// does).
    pub null_origin: bool,
    /// `Access-Control-Allow-Methods`, joined with `,`.
    pub methods: String,
    /// `None`: reflect `Access-Control-Request-Headers`. `Some("")`: send
    /// none (an empty list).
    pub allowed_headers: Option<String>,
    pub exposed_headers: Option<String>,
    pub credentials: bool,
    /// `Access-Control-Max-Age`, as the middleware prints it.
    pub max_age: Option<String>,
    pub preflight_continue: bool,
    pub success_status: u16,
}

/// What CORS does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Nothing: the origin is not allowed.
    None,
    /// Answer now with this status, `content-length: 0` and these headers.
    Preflight {
        status: u16,
        headers: Vec<(&'static str, String)>,
    },
    /// Go on; the response carries these headers.
    Decorate(Vec<(&'static str, String)>),
}

impl Policy {
    /// `origin` and `request_headers` are the request's `Origin` and
    /// `Access-Control-Request-Headers`, several values joined with `, `.
    pub fn answer(
        &self,
        method: &str,
        origin: Option<&str>,
        request_headers: Option<&str>,
    ) -> Answer {
        let mut headers: Vec<(&'static str, String)> = Vec::new();
        let mut vary: Vec<&str> = Vec::new();
        match &self.origins {
            None => headers.push(("access-control-allow-origin", "*".to_string())),
            Some(patterns) => {
                // The middleware matches `origin ?? ''`; an absent origin
                // matches only a negated pattern, and then there is nothing
                // to reflect: no CORS.
                let Some(origin) = origin else {
                    return Answer::None;
                };
                let allowed = if origin == NULL_ORIGIN {
                    self.null_origin
                } else {
                    patterns.iter().any(|p| p.matches(origin))
                };
                if !allowed {
                    return Answer::None;
                }
                headers.push(("access-control-allow-origin", origin.to_string()));
                vary.push("Origin");
            }
        }
        if self.credentials {
            headers.push(("access-control-allow-credentials", "true".to_string()));
        }
        let preflight = method.eq_ignore_ascii_case("OPTIONS");
        if preflight {
            headers.push(("access-control-allow-methods", self.methods.clone()));
            let allowed = match &self.allowed_headers {
                Some(list) => Some(list.as_str()),
                None => {
                    vary.push("Access-Control-Request-Headers");
                    request_headers
                }
            };
            if let Some(list) = allowed.filter(|l| !l.is_empty()) {
                headers.push(("access-control-allow-headers", list.to_string()));
            }
            if let Some(age) = &self.max_age {
                headers.push(("access-control-max-age", age.clone()));
            }
        }
        if let Some(list) = self.exposed_headers.as_ref().filter(|l| !l.is_empty()) {
            headers.push(("access-control-expose-headers", list.clone()));
        }
        if !vary.is_empty() {
            headers.push(("vary", vary.join(", ")));
        }
        // The middleware never sends an empty value (`methods: []`).
        headers.retain(|(_, v)| !v.is_empty());
        if preflight && !self.preflight_continue {
            Answer::Preflight {
                status: self.success_status,
                headers,
            }
        } else {
            Answer::Decorate(headers)
        }
    }
}

#[cfg(test)]
mod tests;
