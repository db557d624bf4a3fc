//! Parses `gateway.rateLimits` into [`crate::ratelimit::RateLimit`] per
//! endpoint.

use super::endpoint::for_each_endpoint_entry;
use super::json::*;
use super::Endpoint;
use crate::ratelimit::{Budget, RateLimit, SERVICE_WINDOWS};
use serde_json::Value;

/// `gateway.rateLimits`: `{"/key": {"perPrincipal": {"requests": n,
/// "seconds": s}, "total": {...}}}`. `service`: budgets go to the rate limit service, whose windows are
/// whole units.
pub(super) fn parse_rate_limits(
    errs: &mut Errors,
    v: &Value,
    endpoints: &mut [Endpoint],
    service: bool,
) {
    for_each_endpoint_entry(
        errs,
        "gateway.rateLimits",
        v,
        endpoints,
        |errs, kp, endpoint, spec_obj| {
            check_keys(errs, kp, spec_obj, &["perPrincipal", "total"]);
            let budget = |errs: &mut Errors, name: &str| -> Option<Budget> {
                let bp = join(kp, name);
                let b = as_object(errs, &bp, spec_obj.get(name)?)?;
                check_keys(errs, &bp, b, &["requests", "seconds"]);
                let requests = opt_uint(errs, b, &bp, "requests", 1, 1_000_000_000);
                let seconds = opt_uint(errs, b, &bp, "seconds", 1, 86_400);
                match (requests, seconds) {
                    (Some(_), Some(seconds))
                        if service && !SERVICE_WINDOWS.iter().any(|(s, _)| *s == seconds) =>
                    {
                        errs.add(
                            &join(&bp, "seconds"),
                            "with gateway.rateLimitService the window must be one of the service's units: 1, 60, 3600 or 86400 seconds",
                        );
                        None
                    }
                    (Some(requests), Some(seconds)) => Some(Budget {
                        requests,
                        window_ms: seconds * 1000,
                    }),
                    _ => {
                        errs.add(
                            &bp,
                            "needs requests (1 to 1000000000) and seconds (1 to 86400)",
                        );
                        None
                    }
                }
            };
            if spec_obj.is_empty() {
                // Said explicitly: no budget of its own (the budgets of the
                // targets it lies under still apply).
                endpoint.rate_limit = Some(RateLimit {
                    per_principal: None,
                    total: None,
                });
                return;
            }
            let per_principal = budget(errs, "perPrincipal");
            let total = budget(errs, "total");
            if per_principal.is_none() && total.is_none() {
                errs.add(
                    kp,
                    "needs perPrincipal or total (or {} for no budget of its own)",
                );
                return;
            }
            endpoint.rate_limit = Some(RateLimit {
                per_principal,
                total,
            });
        },
    );
}
