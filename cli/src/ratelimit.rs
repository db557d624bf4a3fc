//! Global rate limiting (`gateway.rateLimitService`): what Envoy's rate
//! limit filter and envoyproxy/ratelimit need so that `gateway.rateLimits`
//! holds for a whole fleet of gateways rather than per replica.
//!
//! The filter sets two request headers for an endpoint with budgets (the
//! endpoint key and the principal, percent-encoded where a header could not
//! carry them: `backstage_proxy_core::ratelimit::descriptor_value`); each
//! route turns them into two descriptors, `[endpoint]` for `total` and
//! `[endpoint, principal]` for `perPrincipal`, and removes them before the
//! upstream ([`descriptors`]). Envoy's rate limit filter asks the service
//! ([`envoy_filter`]), whose own configuration file ([`service`]) gives
//! each descriptor its budget.

pub mod descriptors;
pub mod envoy_filter;
pub mod service;

pub use descriptors::HEADERS;
pub use service::service_config;
