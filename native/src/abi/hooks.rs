//! The hooks Envoy calls (the module's exports). Each runs its body in
//! [`guard`] or catches a panic itself: nothing unwinds into Envoy.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

use super::define_counter;
use super::sched::{answer_of, ConfigScheduler, MainThread};
use super::{
    envoy_bytes, log, EnvoyBuffer, EnvoyHeader, Level, Stream, ABI_VERSION, CONTINUE,
    STOP_ITERATION,
};
use crate::config::Config;
use crate::filter::{self, Filter, Flow};
use crate::metrics::Metrics;

/// Runs a hook's body; a panic in it is caught (it must not unwind into
/// Envoy), logged, and turned into `failed`.
pub(super) fn guard<T>(hook: &str, failed: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(_) => {
            // The panic's own message is left out: it may quote a value.
            log(
                Level::Error,
                &format!("backstage-proxy-native: panic caught in {hook}; failing closed"),
            );
            failed
        }
    }
}

/// The stream's filter, from the pointer [`envoy_dynamic_module_on_http_filter_new`] returned.
///
/// # Safety
/// `module` is that pointer, not yet destroyed, and used by one hook at a
/// time (Envoy runs a stream's hooks on its one worker, one after another).
unsafe fn filter_of<'a>(module: *const c_void) -> Option<&'a mut Filter> {
    // SAFETY: the caller's contract; `Box<Filter>` made the pointer.
    unsafe { module.cast::<Filter>().cast_mut().as_mut() }
}

/// A local 500 then stop: what a request or response hook does when its
/// body panicked (the stream goes no further).
fn fail_closed(envoy: *mut c_void) -> i32 {
    let reply = filter::internal_error();
    let mut s = Stream { envoy };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        filter::Host::send(&mut s, reply.status, &reply.headers, &reply.body);
    }));
    STOP_ITERATION
}

/// Called once, on the main thread, when Envoy loads the module: returns
/// the ABI version (a NUL-terminated string the module owns for good).
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    guard("program_init", ptr::null(), || {
        crate::logging::install();
        ABI_VERSION.as_ptr()
    })
}

/// A filter configuration (main thread): `config` is the filter's JSON
/// configuration, Envoy's for the call only. A null return makes Envoy
/// refuse the configuration; the reasons are logged first.
///
/// # Safety
/// `name` and `config` are Envoy buffers valid during the call.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    filter_config_envoy_ptr: *mut c_void,
    _name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> *const c_void {
    guard("config_new", ptr::null(), || {
        // SAFETY: Envoy's buffer, valid for this call; parsed before return.
        let bytes = unsafe { envoy_bytes(config.ptr, config.length) };
        let Some(mut c) = Config::new(bytes) else {
            return ptr::null();
        };
        c.main = ConfigScheduler::new(filter_config_envoy_ptr);
        c.metrics = Metrics::define(&c.plan, &mut |name| {
            // SAFETY: inside `config_new`, with its configuration.
            unsafe { define_counter(filter_config_envoy_ptr, name) }
        });
        Box::into_raw(Box::new(Arc::new(c))).cast_const().cast()
    })
}

/// The configuration goes away (every stream using it is gone).
///
/// # Safety
/// `filter_config_ptr` came from `config_new` and is destroyed once.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(
    filter_config_ptr: *const c_void,
) {
    guard("config_destroy", (), || {
        if !filter_config_ptr.is_null() {
            // SAFETY: `Box<Arc<Config>>` made it, and this is its one drop.
            drop(unsafe { Box::from_raw(filter_config_ptr.cast::<Arc<Config>>().cast_mut()) });
        }
    })
}

/// A new stream (worker thread): its filter, or null (Envoy then fails
/// the stream).
///
/// # Safety
/// `filter_config_ptr` came from `config_new` and is alive.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_new(
    filter_config_ptr: *const c_void,
    _filter_envoy_ptr: *mut c_void,
) -> *const c_void {
    guard("filter_new", ptr::null(), || {
        // SAFETY: the live `Box<Arc<Config>>` of `config_new`, shared read-only.
        let Some(config) = (unsafe { filter_config_ptr.cast::<Arc<Config>>().as_ref() }) else {
            return ptr::null();
        };
        Box::into_raw(Box::new(Filter::new(Arc::clone(config))))
            .cast_const()
            .cast()
    })
}

/// The request's headers: decided here, and answered, edited or let on.
///
/// # Safety
/// Both pointers are the live stream's (`filter_new`'s result for `module`).
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    filter_envoy_ptr: *mut c_void,
    filter_module_ptr: *const c_void,
    _end_of_stream: bool,
) -> i32 {
    let run = || {
        // SAFETY: the caller's contract.
        let Some(f) = (unsafe { filter_of(filter_module_ptr) }) else {
            return fail_closed(filter_envoy_ptr);
        };
        let mut s = Stream {
            envoy: filter_envoy_ptr,
        };
        match filter::on_request(f, &mut s) {
            Flow::Continue => CONTINUE,
            Flow::Stop | Flow::Pause => STOP_ITERATION,
        }
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(status) => status,
        Err(_) => {
            log(
                Level::Error,
                "backstage-proxy-native: panic caught in request_headers; answered 500",
            );
            fail_closed(filter_envoy_ptr)
        }
    }
}

/// The response's headers: the endpoint's allow-list and CORS applied.
///
/// # Safety
/// Both pointers are the live stream's.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    filter_envoy_ptr: *mut c_void,
    filter_module_ptr: *const c_void,
    _end_of_stream: bool,
) -> i32 {
    let run = || {
        // SAFETY: the caller's contract.
        if let Some(f) = unsafe { filter_of(filter_module_ptr) } {
            let mut s = Stream {
                envoy: filter_envoy_ptr,
            };
            filter::on_response(f, &mut s);
        }
        CONTINUE
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(status) => status,
        Err(_) => {
            log(
                Level::Error,
                "backstage-proxy-native: panic caught in response_headers; answered 500",
            );
            fail_closed(filter_envoy_ptr)
        }
    }
}

/// The stream is gone: its filter is dropped.
///
/// # Safety
/// `filter_module_ptr` came from `filter_new` and is destroyed once.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(
    filter_module_ptr: *const c_void,
) {
    guard("filter_destroy", (), || {
        if !filter_module_ptr.is_null() {
            // SAFETY: `Box<Filter>` made it, and this is its one drop.
            let mut f = unsafe { Box::from_raw(filter_module_ptr.cast::<Filter>().cast_mut()) };
            filter::on_destroy(&mut f);
        }
    })
}

/// A request body while the request is paused is held back (Envoy
/// buffers it): letting it on would let the held headers on with it.
///
/// # Safety
/// Both pointers are the live stream's.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    filter_envoy_ptr: *mut c_void,
    filter_module_ptr: *const c_void,
    _end_of_stream: bool,
) -> i32 {
    let _ = filter_envoy_ptr;
    guard("request_body", STOP_ITERATION, || {
        // SAFETY: the caller's contract.
        match unsafe { filter_of(filter_module_ptr) } {
            Some(f) if !f.is_paused() => CONTINUE,
            _ => STOP_ITERATION,
        }
    })
}

/// Request trailers while the request is paused are held back likewise.
///
/// # Safety
/// Both pointers are the live stream's.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    filter_envoy_ptr: *mut c_void,
    filter_module_ptr: *const c_void,
) -> i32 {
    let _ = filter_envoy_ptr;
    guard("request_trailers", STOP_ITERATION, || {
        // SAFETY: the caller's contract.
        match unsafe { filter_of(filter_module_ptr) } {
            Some(f) if !f.is_paused() => CONTINUE,
            _ => STOP_ITERATION,
        }
    })
}

/// An event the module scheduled for this stream (its doorbell): read the
/// worker's mail, decide the paused request again.
///
/// # Safety
/// Both pointers are the live stream's.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    filter_envoy_ptr: *mut c_void,
    filter_module_ptr: *const c_void,
    event_id: u64,
) {
    let run = || {
        // SAFETY: the caller's contract.
        if let Some(f) = unsafe { filter_of(filter_module_ptr) } {
            let mut s = Stream {
                envoy: filter_envoy_ptr,
            };
            filter::on_scheduled(f, &mut s, event_id);
        }
    };
    if catch_unwind(AssertUnwindSafe(run)).is_err() {
        log(
            Level::Error,
            "backstage-proxy-native: panic caught in scheduled; answered 500",
        );
        let _ = fail_closed(filter_envoy_ptr);
    }
}

/// Main thread: a worker asked for its callouts to be sent.
///
/// # Safety
/// Both pointers are the live configuration's.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    filter_config_envoy_ptr: *mut c_void,
    filter_config_ptr: *const c_void,
    _event_id: u64,
) {
    guard("config_scheduled", (), || {
        // SAFETY: the live `Box<Arc<Config>>` of `config_new`.
        if let Some(config) = unsafe { filter_config_ptr.cast::<Arc<Config>>().as_ref() } {
            let mut main = MainThread {
                config_envoy: filter_config_envoy_ptr,
            };
            config.mailroom.send_queued(&mut main);
        }
    })
}

/// Main thread: a callout the configuration sent was answered (or failed).
///
/// # Safety
/// The configuration pointers are live; `headers` and `body_chunks` are
/// null or hold `headers_size` and `body_chunks_size` entries of Envoy's,
/// valid during the call.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    _filter_config_envoy_ptr: *mut c_void,
    filter_config_ptr: *const c_void,
    callout_id: u64,
    result: i32,
    headers: *const EnvoyHeader,
    headers_size: usize,
    body_chunks: *const EnvoyBuffer,
    body_chunks_size: usize,
) {
    guard("config_http_callout_done", (), || {
        // SAFETY: the live `Box<Arc<Config>>` of `config_new`.
        if let Some(config) = unsafe { filter_config_ptr.cast::<Arc<Config>>().as_ref() } {
            config
                .mailroom
                .answered::<MainThread>(callout_id, |callout| {
                    // SAFETY: the caller's contract; read before the hook returns.
                    unsafe {
                        answer_of(
                            result,
                            headers,
                            headers_size,
                            body_chunks,
                            body_chunks_size,
                            callout.max_body,
                        )
                    }
                });
        }
    })
}

/// Hooks Envoy requires but the module has no use for (bodies, trailers,
/// callouts, scheduling, flow control): each lets the stream go on.
macro_rules! pass {
    ($name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty = $v:expr) => {
        /// Not used by the module: lets the stream go on.
        #[allow(clippy::unused_unit)]
        #[no_mangle]
        pub extern "C" fn $name($($arg: $ty),*) -> $ret {
            $(let _ = $arg;)*
            guard(stringify!($name), $v, || $v)
        }
    };
}

type P = *mut c_void;
type M = *const c_void;

pass!(envoy_dynamic_module_on_http_filter_response_body(e: P, m: M, eos: bool) -> i32 = CONTINUE);
pass!(envoy_dynamic_module_on_http_filter_response_trailers(e: P, m: M) -> i32 = CONTINUE);
pass!(envoy_dynamic_module_on_http_filter_stream_complete(e: P, m: M) -> () = ());
pass!(envoy_dynamic_module_on_http_filter_http_callout_done(
    e: P, m: M, id: u64, result: i32, h: *mut c_void, hn: usize, b: *mut c_void, bn: usize
) -> () = ());
pass!(envoy_dynamic_module_on_http_filter_http_stream_headers(
    e: P, m: M, id: u64, h: *mut c_void, hn: usize, end: bool
) -> () = ());
pass!(envoy_dynamic_module_on_http_filter_http_stream_data(
    e: P, m: M, id: u64, d: *const c_void, dn: usize, end: bool
) -> () = ());
pass!(envoy_dynamic_module_on_http_filter_http_stream_trailers(
    e: P, m: M, id: u64, t: *mut c_void, tn: usize
) -> () = ());
pass!(envoy_dynamic_module_on_http_filter_http_stream_complete(e: P, m: M, id: u64) -> () = ());
pass!(envoy_dynamic_module_on_http_filter_http_stream_reset(e: P, m: M, id: u64, r: i32) -> () = ());
pass!(envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(e: P, m: M) -> () = ());
pass!(envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(e: P, m: M) -> () = ());
