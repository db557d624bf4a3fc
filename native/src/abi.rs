//! The project's own bindings to Envoy's dynamic-module ABI: exactly the
//! functions the module uses, written by hand from the header Envoy 1.39
//! publishes (`source/extensions/dynamic_modules/abi/abi.h`, ABI
//! `v0.1.0`), and the hooks Envoy calls. Every `unsafe` of the crate is in
//! this module; the rest of the crate sees [`Stream`] (one HTTP stream's
//! host calls, behind [`crate::filter::Host`]) and plain Rust values.
//!
//! The rules Envoy states, which every function here relies on:
//!
//! - Strings cross as `(pointer, length)` pairs, never NUL-terminated and
//!   not necessarily UTF-8; only the ABI version is a C string.
//! - A buffer Envoy hands over (`envoy_buffer`) is Envoy's and valid until
//!   the current hook returns, or until a setter edits the same map: the
//!   module copies what it keeps, and reads a map before it edits it.
//! - A buffer the module hands over (`module_buffer`) is the module's and
//!   only needs to live for the call.
//! - A filter's hooks all run on the worker thread that created it; a
//!   configuration is created on the main thread and read by every worker.
//! - A panic must never unwind into Envoy (it would end the whole proxy):
//!   every hook runs its body in [`guard`], which catches it and fails
//!   closed (a local 500 where a reply is still possible, else stop).

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

use crate::config::Config;
use crate::filter::{self, Filter, Flow, HeaderMap};

/// The ABI version Envoy 1.39 checks when it loads the module
/// (`ENVOY_DYNAMIC_MODULES_ABI_VERSION`): a mismatch is only warned about,
/// a null return refuses the module.
const ABI_VERSION: &[u8] = b"v0.1.0\0";

/// `envoy_dynamic_module_type_envoy_buffer`: bytes Envoy owns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    ptr: *const u8,
    length: usize,
}

/// `envoy_dynamic_module_type_module_buffer`: bytes the module owns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleBuffer {
    ptr: *const u8,
    length: usize,
}

/// `envoy_dynamic_module_type_module_http_header`.
#[repr(C)]
struct ModuleHeader {
    key_ptr: *const u8,
    key_length: usize,
    value_ptr: *const u8,
    value_length: usize,
}

/// `envoy_dynamic_module_type_envoy_http_header`.
#[repr(C)]
#[derive(Clone, Copy)]
struct EnvoyHeader {
    key_ptr: *const u8,
    key_length: usize,
    value_ptr: *const u8,
    value_length: usize,
}

impl ModuleBuffer {
    fn of(bytes: &[u8]) -> ModuleBuffer {
        ModuleBuffer {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }

    /// The null buffer: "remove" for `set_header`, "none" for details.
    fn null() -> ModuleBuffer {
        ModuleBuffer {
            ptr: ptr::null(),
            length: 0,
        }
    }
}

impl EnvoyBuffer {
    fn empty() -> EnvoyBuffer {
        EnvoyBuffer {
            ptr: ptr::null(),
            length: 0,
        }
    }
}

/// Envoy's bytes as a slice, empty for a null pointer.
///
/// # Safety
/// `ptr` is null or points to `len` readable bytes that stay valid and
/// unchanged for `'a` (Envoy's buffers: until the hook returns, or until a
/// setter edits the map they came from).
unsafe fn envoy_bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// `envoy_dynamic_module_type_http_header_type`.
#[derive(Clone, Copy)]
#[repr(i32)]
pub enum Map {
    Request = 0,
    Response = 2,
}

/// `envoy_dynamic_module_type_log_level`.
#[derive(Clone, Copy)]
#[repr(i32)]
pub enum Level {
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
}

/// The attributes read (`envoy_dynamic_module_type_attribute_id`, an
/// enum numbered in declaration order).
#[derive(Clone, Copy)]
#[repr(i32)]
pub enum Attribute {
    /// `response.code_details`.
    ResponseCodeDetails = 16,
    /// `source.address` (`ip:port`).
    SourceAddress = 24,
    /// `connection.tls_version`, empty or absent in the clear.
    ConnectionTlsVersion = 31,
}

/// `on_http_filter_request_headers_status` / `..._response_headers_status`.
const CONTINUE: i32 = 0;
const STOP_ITERATION: i32 = 1;

// The callbacks Envoy exports. Each must exist in the Envoy that loads
// the module (the `.so` binds them when it is loaded): all are in 1.38
// and 1.39.
extern "C" {
    /// Logs under Envoy's `dynamic_modules` logger; the message is copied.
    fn envoy_dynamic_module_callback_log(level: i32, message: ModuleBuffer);

    /// How many entries the map has (0 when it cannot be read).
    fn envoy_dynamic_module_callback_http_get_headers_size(
        filter_envoy_ptr: *mut c_void,
        header_type: i32,
    ) -> usize;

    /// Writes every entry of the map into `result_headers`, which must have
    /// room for `get_headers_size` entries; the key and value buffers are
    /// Envoy's, valid until the hook returns or a setter is called.
    fn envoy_dynamic_module_callback_http_get_headers(
        filter_envoy_ptr: *mut c_void,
        header_type: i32,
        result_headers: *mut EnvoyHeader,
    ) -> bool;

    /// Replaces every value of `key` with `value`; a null `value` removes
    /// the header. Both buffers are read during the call only.
    fn envoy_dynamic_module_callback_http_set_header(
        filter_envoy_ptr: *mut c_void,
        header_type: i32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;

    /// Appends a value to `key`.
    fn envoy_dynamic_module_callback_http_add_header(
        filter_envoy_ptr: *mut c_void,
        header_type: i32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;

    /// Sends a local reply (the array and buffers are read during the call).
    fn envoy_dynamic_module_callback_http_send_response(
        filter_envoy_ptr: *mut c_void,
        status_code: u32,
        headers_vector: *mut ModuleHeader,
        headers_vector_size: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );

    /// Stores `value` as the stream's filter state under `key` (a string
    /// accessor the access log reads with `%FILTER_STATE(key:PLAIN)%`).
    fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter_envoy_ptr: *mut c_void,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;

    /// A string attribute of the stream, into `result` (Envoy's buffer,
    /// valid until the hook returns).
    fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter_envoy_ptr: *mut c_void,
        attribute_id: i32,
        result: *mut EnvoyBuffer,
    ) -> bool;

    /// Makes the router pick the route again (after the destination changed).
    fn envoy_dynamic_module_callback_http_clear_route_cache(filter_envoy_ptr: *mut c_void);
}

/// Logs through Envoy (the message must name no secret).
pub fn log(level: Level, message: &str) {
    // SAFETY: a module buffer over a live `&str`, read during the call.
    unsafe { envoy_dynamic_module_callback_log(level as i32, ModuleBuffer::of(message.as_bytes())) }
}

/// One HTTP stream's host calls: the `filter_envoy_ptr` of the hook
/// running now. Only built inside a hook, and never kept past it.
pub struct Stream {
    envoy: *mut c_void,
}

impl filter::Host for Stream {
    fn headers(&mut self, map: Map) -> HeaderMap {
        // SAFETY: `envoy` is the live stream of the running hook; the array
        // has room for the size Envoy reported, and its buffers are copied
        // before the hook does anything else with the map.
        unsafe {
            let n = envoy_dynamic_module_callback_http_get_headers_size(self.envoy, map as i32);
            let mut raw = vec![
                EnvoyHeader {
                    key_ptr: ptr::null(),
                    key_length: 0,
                    value_ptr: ptr::null(),
                    value_length: 0,
                };
                n
            ];
            if n == 0
                || !envoy_dynamic_module_callback_http_get_headers(
                    self.envoy,
                    map as i32,
                    raw.as_mut_ptr(),
                )
            {
                return Vec::new();
            }
            raw.iter()
                .map(|h| {
                    let k = envoy_bytes(h.key_ptr, h.key_length);
                    let v = envoy_bytes(h.value_ptr, h.value_length);
                    (String::from_utf8_lossy(k).into_owned(), v.to_vec())
                })
                .collect()
        }
    }

    fn set(&mut self, map: Map, name: &str, value: Option<&[u8]>) {
        let value = value.map_or_else(ModuleBuffer::null, ModuleBuffer::of);
        // SAFETY: the live stream; both buffers outlive the call.
        unsafe {
            envoy_dynamic_module_callback_http_set_header(
                self.envoy,
                map as i32,
                ModuleBuffer::of(name.as_bytes()),
                value,
            );
        }
    }

    fn add(&mut self, map: Map, name: &str, value: &[u8]) {
        // SAFETY: the live stream; both buffers outlive the call.
        unsafe {
            envoy_dynamic_module_callback_http_add_header(
                self.envoy,
                map as i32,
                ModuleBuffer::of(name.as_bytes()),
                ModuleBuffer::of(value),
            );
        }
    }

    fn send(&mut self, status: u16, headers: &[(String, String)], body: &[u8]) {
        let mut list: Vec<ModuleHeader> = headers
            .iter()
            .map(|(n, v)| ModuleHeader {
                key_ptr: n.as_ptr(),
                key_length: n.len(),
                value_ptr: v.as_ptr(),
                value_length: v.len(),
            })
            .collect();
        // SAFETY: the live stream; the array and what it points to (owned
        // by `headers` and `body`) outlive the call.
        unsafe {
            envoy_dynamic_module_callback_http_send_response(
                self.envoy,
                u32::from(status),
                list.as_mut_ptr(),
                list.len(),
                ModuleBuffer::of(body),
                ModuleBuffer::null(),
            );
        }
    }

    fn set_filter_state(&mut self, key: &str, value: &[u8]) {
        // SAFETY: the live stream; both buffers outlive the call.
        unsafe {
            envoy_dynamic_module_callback_http_set_filter_state_bytes(
                self.envoy,
                ModuleBuffer::of(key.as_bytes()),
                ModuleBuffer::of(value),
            );
        }
    }

    fn attribute(&mut self, id: Attribute) -> Option<Vec<u8>> {
        let mut out = EnvoyBuffer::empty();
        // SAFETY: the live stream; `out` is a valid place to write, and the
        // buffer it then points to is copied before the hook goes on.
        unsafe {
            if !envoy_dynamic_module_callback_http_filter_get_attribute_string(
                self.envoy, id as i32, &mut out,
            ) {
                return None;
            }
            Some(envoy_bytes(out.ptr, out.length).to_vec())
        }
    }

    fn clear_route_cache(&mut self) {
        // SAFETY: the live stream.
        unsafe { envoy_dynamic_module_callback_http_clear_route_cache(self.envoy) }
    }
}

/// Runs a hook's body; a panic in it is caught (it must not unwind into
/// Envoy), logged, and turned into `failed`.
fn guard<T>(hook: &str, failed: T, body: impl FnOnce() -> T) -> T {
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
    guard("program_init", ptr::null(), || ABI_VERSION.as_ptr())
}

/// A filter configuration (main thread): `config` is the filter's JSON
/// configuration, Envoy's for the call only. A null return makes Envoy
/// refuse the configuration; the reasons are logged first.
///
/// # Safety
/// `name` and `config` are Envoy buffers valid during the call.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    _filter_config_envoy_ptr: *mut c_void,
    _name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> *const c_void {
    guard("config_new", ptr::null(), || {
        // SAFETY: Envoy's buffer, valid for this call; parsed before return.
        let bytes = unsafe { envoy_bytes(config.ptr, config.length) };
        match Config::new(bytes) {
            Some(c) => Box::into_raw(Box::new(Arc::new(c))).cast_const().cast(),
            None => ptr::null(),
        }
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
            Flow::Stop => STOP_ITERATION,
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
            drop(unsafe { Box::from_raw(filter_module_ptr.cast::<Filter>().cast_mut()) });
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

pass!(envoy_dynamic_module_on_http_filter_request_body(e: P, m: M, eos: bool) -> i32 = CONTINUE);
pass!(envoy_dynamic_module_on_http_filter_request_trailers(e: P, m: M) -> i32 = CONTINUE);
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
pass!(envoy_dynamic_module_on_http_filter_scheduled(e: P, m: M, id: u64) -> () = ());
pass!(envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(e: P, m: M) -> () = ());
pass!(envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(e: P, m: M) -> () = ());

#[cfg(test)]
mod fake;

#[cfg(test)]
mod tests;
