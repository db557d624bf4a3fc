//! Bindings for what crosses threads: the schedulers (a stream's, which
//! brings a call back onto the stream's worker; a configuration's, which
//! brings one onto Envoy's main thread), the continuation of a paused
//! request, and the configuration-level HTTP callout, which Envoy sends
//! and answers on its main thread.
//!
//! Envoy's rules (ABI header, 1.38 and 1.39 alike): a scheduler is made by
//! Envoy and deleted by the module, exactly once; `commit` is safe from
//! any thread and does nothing once the stream (or configuration) is gone;
//! the event comes back as `on_http_filter_scheduled` (or
//! `on_http_filter_config_scheduled`). The configuration callout's headers
//! must carry `:method`, `:path` and the host (`:authority`); its answer
//! comes to `on_http_filter_config_http_callout_done`, with headers and
//! body chunks that are Envoy's until that hook returns.

use std::ffi::c_void;

use super::{envoy_bytes, EnvoyBuffer, EnvoyHeader, ModuleBuffer, ModuleHeader, Stream};
use crate::callout::{answer_from, Answer, Callout, Post};

extern "C" {
    /// Resumes a request the module stopped in its request-headers hook.
    fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter_envoy_ptr: *mut c_void);

    /// A scheduler for the stream (worker thread, inside one of its hooks).
    fn envoy_dynamic_module_callback_http_filter_scheduler_new(
        filter_envoy_ptr: *mut c_void,
    ) -> *mut c_void;

    /// Schedules `on_http_filter_scheduled(event_id)` on the stream's
    /// worker; from any thread; a no-op once the stream is gone.
    fn envoy_dynamic_module_callback_http_filter_scheduler_commit(
        scheduler_module_ptr: *mut c_void,
        event_id: u64,
    );

    /// Deletes a stream scheduler (once).
    fn envoy_dynamic_module_callback_http_filter_scheduler_delete(
        scheduler_module_ptr: *mut c_void,
    );

    /// A scheduler for the configuration (onto the main thread).
    fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        filter_config_envoy_ptr: *mut c_void,
    ) -> *mut c_void;

    /// Schedules `on_http_filter_config_scheduled(event_id)` on the main
    /// thread; from any thread.
    fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler_module_ptr: *mut c_void,
        event_id: u64,
    );

    /// Deletes a configuration scheduler (once).
    fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
        scheduler_module_ptr: *mut c_void,
    );

    /// Sends an HTTP request through `cluster_name` (main thread): its id
    /// into `callout_id_out`; the array and buffers are read during the
    /// call. Returns an `http_callout_init_result` (0 = success).
    fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        filter_config_envoy_ptr: *mut c_void,
        callout_id_out: *mut u64,
        cluster_name: ModuleBuffer,
        headers: *mut ModuleHeader,
        headers_size: usize,
        body: ModuleBuffer,
        timeout_milliseconds: u64,
    ) -> i32;
}

/// A stream's scheduler: rings its worker from any thread.
pub struct StreamScheduler(*mut c_void);

// SAFETY: Envoy states `commit` is safe from any thread; the pointer is
// deleted once, by `Drop`, and the mailroom drops it under its lock.
unsafe impl Send for StreamScheduler {}

impl StreamScheduler {
    pub fn commit(&self, event: u64) {
        // SAFETY: a live scheduler (deleted only by `Drop`).
        unsafe { envoy_dynamic_module_callback_http_filter_scheduler_commit(self.0, event) }
    }
}

impl Drop for StreamScheduler {
    fn drop(&mut self) {
        // SAFETY: made by `scheduler_new`, deleted here once.
        unsafe { envoy_dynamic_module_callback_http_filter_scheduler_delete(self.0) }
    }
}

/// A configuration's scheduler: asks the main thread to run the
/// configuration's scheduled hook, from any thread.
pub struct ConfigScheduler(*mut c_void);

// SAFETY: as for `StreamScheduler`; commit is a post to the main thread's
// dispatcher, and the pointer is deleted once, when the configuration goes.
unsafe impl Send for ConfigScheduler {}
// SAFETY: `commit` takes `&self` and is safe from any thread at once.
unsafe impl Sync for ConfigScheduler {}

impl ConfigScheduler {
    /// The scheduler of the configuration Envoy is creating (call only
    /// from `on_http_filter_config_new`, with its pointer).
    pub(super) fn new(config_envoy: *mut c_void) -> Option<ConfigScheduler> {
        if config_envoy.is_null() {
            return None;
        }
        // SAFETY: the live configuration of the running hook.
        let p =
            unsafe { envoy_dynamic_module_callback_http_filter_config_scheduler_new(config_envoy) };
        (!p.is_null()).then_some(ConfigScheduler(p))
    }

    pub fn commit(&self, event: u64) {
        // SAFETY: a live scheduler (deleted only by `Drop`).
        unsafe { envoy_dynamic_module_callback_http_filter_config_scheduler_commit(self.0, event) }
    }
}

impl Drop for ConfigScheduler {
    fn drop(&mut self) {
        // SAFETY: made by `config_scheduler_new`, deleted here once.
        unsafe { envoy_dynamic_module_callback_http_filter_config_scheduler_delete(self.0) }
    }
}

impl Stream {
    /// A scheduler for this stream.
    pub fn scheduler(&mut self) -> Option<StreamScheduler> {
        // SAFETY: the live stream of the running hook.
        let p = unsafe { envoy_dynamic_module_callback_http_filter_scheduler_new(self.envoy) };
        (!p.is_null()).then_some(StreamScheduler(p))
    }

    /// Resumes the request this stream paused.
    pub fn continue_decoding(&mut self) {
        // SAFETY: the live stream of the running hook.
        unsafe { envoy_dynamic_module_callback_http_filter_continue_decoding(self.envoy) }
    }
}

/// Envoy's main thread, inside a configuration hook: sends callouts.
pub struct MainThread {
    pub(super) config_envoy: *mut c_void,
}

/// `http_callout_init_result`'s values, by number.
fn init_error(code: i32) -> String {
    match code {
        1 => "missing :method, :path or host".to_string(),
        2 => "no such cluster".to_string(),
        3 => "duplicate callout id".to_string(),
        4 => "the request could not be created (no healthy host?)".to_string(),
        n => format!("callout refused ({n})"),
    }
}

impl Post for MainThread {
    type Bell = StreamScheduler;

    fn send(&mut self, c: &Callout) -> Result<u64, String> {
        let mut all: Vec<(&str, &str)> = vec![
            (":method", c.method.as_str()),
            (":path", c.path.as_str()),
            (":authority", c.authority.as_str()),
        ];
        all.extend(c.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let mut list: Vec<ModuleHeader> = all
            .iter()
            .map(|(n, v)| ModuleHeader {
                key_ptr: n.as_ptr(),
                key_length: n.len(),
                value_ptr: v.as_ptr(),
                value_length: v.len(),
            })
            .collect();
        let body = c.body.as_deref().unwrap_or_default();
        let mut id: u64 = 0;
        // SAFETY: the live configuration of the running main-thread hook;
        // the array, the buffers it points to and `id` outlive the call.
        let code = unsafe {
            envoy_dynamic_module_callback_http_filter_config_http_callout(
                self.config_envoy,
                &mut id,
                ModuleBuffer::of(c.cluster.as_bytes()),
                list.as_mut_ptr(),
                list.len(),
                ModuleBuffer::of(body),
                c.timeout_ms,
            )
        };
        if code == 0 {
            Ok(id)
        } else {
            Err(init_error(code))
        }
    }

    fn ring(bell: &StreamScheduler, event: u64) {
        bell.commit(event);
    }
}

/// A callout's answer from what Envoy hands the callout-done hook (read
/// by [`crate::callout::answer_from`]).
///
/// # Safety
/// `headers` and `chunks` are null or point to `n` and `m` entries whose
/// buffers are Envoy's and valid during the call.
pub(super) unsafe fn answer_of(
    result: i32,
    headers: *const EnvoyHeader,
    n: usize,
    chunks: *const EnvoyBuffer,
    m: usize,
    max_body: usize,
) -> Answer {
    let headers: &[EnvoyHeader] = if headers.is_null() || n == 0 {
        &[]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(headers, n) }
    };
    let chunks: &[EnvoyBuffer] = if chunks.is_null() || m == 0 {
        &[]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(chunks, m) }
    };
    // SAFETY (both maps): Envoy's buffers, valid during the call.
    let headers: Vec<(&[u8], &[u8])> = headers
        .iter()
        .map(|h| unsafe {
            (
                envoy_bytes(h.key_ptr, h.key_length),
                envoy_bytes(h.value_ptr, h.value_length),
            )
        })
        .collect();
    let chunks: Vec<&[u8]> = chunks
        .iter()
        .map(|c| unsafe { envoy_bytes(c.ptr, c.length) })
        .collect();
    answer_from(result, &headers, &chunks, max_body)
}
