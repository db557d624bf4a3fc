//! The only code that talks to the proxy-wasm host. The root context loads
//! the configuration into an immutable plan; each HTTP context feeds the
//! request's headers to [`decision::decide`] and applies what it returns.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use log::{debug, error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

use crate::config::{self, Plan};
use crate::decision::{self, Decision, Request};
use crate::reply::{Reason, Reply};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// Counter ids, defined once per VM. Names appear in Envoy's stats as
/// `backstage_proxy.<…>`.
#[derive(Default)]
struct Metrics {
    allowed: Option<u32>,
    passthrough: Option<u32>,
    own_jwks: Option<u32>,
    denied: HashMap<Reason, u32>,
}

impl Metrics {
    fn define() -> Metrics {
        let counter = |name: &str| hostcalls::define_metric(MetricType::Counter, name).ok();
        Metrics {
            allowed: counter("backstage_proxy.allowed"),
            passthrough: counter("backstage_proxy.passthrough"),
            own_jwks: counter("backstage_proxy.own_jwks_served"),
            denied: Reason::ALL
                .iter()
                .filter_map(|r| {
                    counter(&format!("backstage_proxy.denied.{}", r.code())).map(|id| (*r, id))
                })
                .collect(),
        }
    }

    fn bump(id: Option<u32>) {
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }
}

#[derive(Default)]
struct Root {
    plan: Option<Rc<Plan>>,
    metrics: Rc<Metrics>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(bytes) = self.get_plugin_configuration() else {
            error!(
                "backstage-proxy-wasm: no configuration given (set the filter's `configuration`)"
            );
            return false;
        };
        match config::parse(&bytes, &|name| std::env::var(name).ok()) {
            Ok(plan) => {
                for w in &plan.warnings {
                    warn!("backstage-proxy-wasm: {w}");
                }
                info!(
                    "backstage-proxy-wasm: loaded {} endpoint(s) under {}",
                    plan.endpoints.len(),
                    plan.gateway.prefix
                );
                self.metrics = Rc::new(Metrics::define());
                self.plan = Some(Rc::new(plan));
                true
            }
            Err(errors) => {
                for e in &errors {
                    error!("backstage-proxy-wasm: invalid configuration: {e}");
                }
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            plan: self.plan.clone(),
            metrics: self.metrics.clone(),
            endpoint: None,
            local_reply: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    /// `None` only if Envoy created a stream for a VM whose configuration
    /// was refused; such streams are answered 503.
    plan: Option<Rc<Plan>>,
    metrics: Rc<Metrics>,
    /// The endpoint a forwarded request went to (for the response policy).
    endpoint: Option<usize>,
    /// Set once the filter answered locally: its own reply is not filtered.
    local_reply: bool,
}

impl Context for Http {}

impl Http {
    fn send(&mut self, reply: &Reply) -> Action {
        self.local_reply = true;
        let headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.send_http_response(u32::from(reply.status), headers, Some(&reply.body));
        Action::Pause
    }
}

fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(plan) = self.plan.clone() else {
            return self.send(&Reply {
                status: 503,
                headers: Vec::new(),
                body: Vec::new(),
                reason: None,
            });
        };
        let headers = self.get_http_request_headers_bytes();
        let text =
            |name: &str| header(&headers, name).map(|v| String::from_utf8_lossy(v).into_owned());
        let method = text(":method").unwrap_or_default();
        let path = text(":path");
        let authority = text(":authority").unwrap_or_default();
        let scheme = text(":scheme").unwrap_or_else(|| "http".to_string());
        let client = self
            .get_property(vec!["source", "address"])
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let now = self
            .get_current_time()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let request = Request {
            method: &method,
            path: path.as_deref(),
            authority: &authority,
            scheme: &scheme,
            headers: &headers,
            client_address: client.as_deref(),
            now,
        };
        match decision::decide(&plan, &request) {
            Decision::PassThrough { remove } => {
                Metrics::bump(self.metrics.passthrough);
                for name in remove {
                    if header(&headers, &name).is_some() {
                        self.set_http_request_header(&name, None);
                    }
                }
                Action::Continue
            }
            Decision::Reply { reply, endpoint } => {
                match reply.reason {
                    Some(reason) => {
                        Metrics::bump(self.metrics.denied.get(&reason).copied());
                        let key = endpoint
                            .and_then(|i| plan.endpoints.get(i))
                            .map(|e| e.raw_key.as_str())
                            .unwrap_or("-");
                        debug!(
                            "backstage-proxy-wasm: denied status={} reason={} endpoint={}",
                            reply.status,
                            reason.code(),
                            key
                        );
                    }
                    None => Metrics::bump(self.metrics.own_jwks),
                }
                self.send(&reply)
            }
            Decision::Forward(fwd) => {
                Metrics::bump(self.metrics.allowed);
                for name in &fwd.remove {
                    self.set_http_request_header(name, None);
                }
                for (name, value) in &fwd.set {
                    self.set_http_request_header(name, Some(value));
                }
                self.endpoint = Some(fwd.endpoint);
                Action::Continue
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.local_reply {
            return Action::Continue;
        }
        if let (Some(plan), Some(idx)) = (self.plan.as_ref(), self.endpoint) {
            let headers = self.get_http_response_headers_bytes();
            for name in
                decision::response_removals(plan, idx, headers.iter().map(|(n, _)| n.as_str()))
            {
                self.set_http_response_header(&name, None);
            }
        }
        Action::Continue
    }
}
