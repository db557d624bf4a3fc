//! The core's log lines (the `log` crate's macros, e.g. a key-set fetch
//! that failed) written through Envoy's `dynamic_modules` logger, as the
//! Wasm filter's go through the VM's.

use crate::abi::{log, Level};

struct EnvoyLog;

static LOGGER: EnvoyLog = EnvoyLog;

impl log::Log for EnvoyLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        // Envoy drops what its logger's level leaves out.
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = match record.level() {
            log::Level::Error => Level::Error,
            log::Level::Warn => Level::Warn,
            log::Level::Info => Level::Info,
            log::Level::Debug | log::Level::Trace => Level::Debug,
        };
        let text = record.args().to_string();
        // The core names the Wasm filter; the line is the module's here.
        let text = match text.strip_prefix("backstage-proxy-wasm:") {
            Some(rest) => format!("backstage-proxy-native:{rest}"),
            None => text,
        };
        log(level, &text);
    }

    fn flush(&self) {}
}

/// Installs the bridge (once per process; later calls change nothing).
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}
