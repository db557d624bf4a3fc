//! The proxy-wasm filter: the only code that calls the host. It holds no
//! policy of its own.
//!
//! - [`root`]: loads the configuration into the core's immutable plan,
//!   carries out the key-set fetch coordinator's commands, ticks.
//! - [`http`]: reads each request's headers, asks the core, and applies
//!   its answer, in both directions.
//! - [`runtime`]: the per-VM state both share, and the clock.
//! - [`metrics`]: the counters Envoy shows as `backstage_proxy.*`.
//! - [`shared_data`]: the host's shared data, as the core's trait.

mod asks;
mod http;
mod metrics;
mod root;
mod runtime;
mod shared_data;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Trace);
    proxy_wasm::set_root_context(|id| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::Root::new(id))
    });
}}
