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
//! - A local reply or resuming a request can make Envoy call back into
//!   the module for the same stream before the call returns (the
//!   response hook, even the destroy hook): a stream's state is shared
//!   by its hooks, never held mutably across such a call, and freed by
//!   the outermost hook ([`hooks`]).

use std::ffi::c_void;
use std::ptr;

use crate::filter;
use crate::headers::HeaderMap;

pub use sched::{ConfigScheduler, MainThread, StreamScheduler};

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
    /// the header. Both buffers are read during the call only. `false`
    /// when the map cannot be edited (the module then fails closed).
    fn envoy_dynamic_module_callback_http_set_header(
        filter_envoy_ptr: *mut c_void,
        header_type: i32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;

    /// Appends a value to `key`; `false` when it was not.
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

    /// Defines a counter (only inside `on_http_filter_config_new`); its id
    /// into `counter_id_ptr`. Returns a `metrics_result` (0 = success).
    fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        filter_config_envoy_ptr: *mut c_void,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        counter_id_ptr: *mut usize,
    ) -> i32;

    /// Adds `value` to a counter the configuration defined (no labels).
    fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter_envoy_ptr: *mut c_void,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> i32;
}

/// Defines a counter without labels for the configuration Envoy is
/// creating; `None` when Envoy refuses.
///
/// # Safety
/// `config_envoy` is the configuration of the running
/// `on_http_filter_config_new` hook.
unsafe fn define_counter(config_envoy: *mut c_void, name: &str) -> Option<usize> {
    let mut id = 0usize;
    // SAFETY: the caller's contract; the name outlives the call, no labels.
    let code = unsafe {
        envoy_dynamic_module_callback_http_filter_config_define_counter(
            config_envoy,
            ModuleBuffer::of(name.as_bytes()),
            ptr::null_mut(),
            0,
            &mut id,
        )
    };
    (code == 0).then_some(id)
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
            // A request's map usually fits on the stack; a larger one gets
            // a vector.
            let empty = EnvoyHeader {
                key_ptr: ptr::null(),
                key_length: 0,
                value_ptr: ptr::null(),
                value_length: 0,
            };
            let mut small = [empty; 32];
            let mut large = Vec::new();
            let raw: &mut [EnvoyHeader] = match small.get_mut(..n) {
                Some(s) => s,
                None => {
                    large.resize(n, empty);
                    &mut large
                }
            };
            if n == 0
                || !envoy_dynamic_module_callback_http_get_headers(
                    self.envoy,
                    map as i32,
                    raw.as_mut_ptr(),
                )
            {
                return HeaderMap::default();
            }
            let (names, values) = raw.iter().fold((0usize, 0usize), |(n, v), h| {
                (
                    n.saturating_add(h.key_length),
                    v.saturating_add(h.value_length),
                )
            });
            HeaderMap::build(
                raw.iter().map(|h| {
                    (
                        envoy_bytes(h.key_ptr, h.key_length),
                        envoy_bytes(h.value_ptr, h.value_length),
                    )
                }),
                names,
                values,
            )
        }
    }

    fn set(&mut self, map: Map, name: &str, value: Option<&[u8]>) -> bool {
        let value = value.map_or_else(ModuleBuffer::null, ModuleBuffer::of);
        // SAFETY: the live stream; both buffers outlive the call.
        unsafe {
            envoy_dynamic_module_callback_http_set_header(
                self.envoy,
                map as i32,
                ModuleBuffer::of(name.as_bytes()),
                value,
            )
        }
    }

    fn add(&mut self, map: Map, name: &str, value: &[u8]) -> bool {
        // SAFETY: the live stream; both buffers outlive the call.
        unsafe {
            envoy_dynamic_module_callback_http_add_header(
                self.envoy,
                map as i32,
                ModuleBuffer::of(name.as_bytes()),
                ModuleBuffer::of(value),
            )
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

    fn count(&mut self, id: usize, by: u64) {
        // SAFETY: the live stream; an id the configuration defined; no labels.
        unsafe {
            envoy_dynamic_module_callback_http_filter_increment_counter(
                self.envoy,
                id,
                ptr::null_mut(),
                0,
                by,
            );
        }
    }

    fn scheduler(&mut self) -> Option<StreamScheduler> {
        Stream::scheduler(self)
    }

    fn continue_decoding(&mut self) {
        Stream::continue_decoding(self)
    }
}

mod hooks;
mod sched;

#[cfg(test)]
use hooks::{envoy_dynamic_module_on_program_init, guard};

#[cfg(test)]
mod fake;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hook_tests;
