//! Test-only: Envoy's side of the callbacks the module imports, over a
//! thread-local stream, so the bindings' conversions run in unit tests
//! (the test binary has no Envoy to link against).

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::cell::RefCell;
use std::ffi::c_void;

use super::{EnvoyBuffer, EnvoyHeader, ModuleBuffer, ModuleHeader};

/// A local reply as sent: status, headers, body.
pub type Sent = (u32, Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>);

#[derive(Default)]
pub struct FakeStream {
    pub request: Vec<(Vec<u8>, Vec<u8>)>,
    pub response: Vec<(Vec<u8>, Vec<u8>)>,
    /// Envoy refuses every header edit (`set`/`add` return false).
    pub refuse_edits: bool,
    pub sent: Option<Sent>,
    pub state: Vec<(Vec<u8>, Vec<u8>)>,
    pub logs: Vec<(i32, String)>,
    pub source: Option<Vec<u8>>,
}

thread_local! {
    pub static STREAM: RefCell<FakeStream> = RefCell::new(FakeStream::default());
    /// Run once by the next local reply, after it is recorded: what Envoy
    /// may do inside the call (the response hook, the destroy hook).
    pub static ON_SEND: RefCell<Option<Box<dyn FnOnce()>>> = RefCell::new(None);
}

/// The map `t` names (0 request, 2 response).
fn map(s: &mut FakeStream, t: i32) -> &mut Vec<(Vec<u8>, Vec<u8>)> {
    match t {
        0 => &mut s.request,
        2 => &mut s.response,
        _ => panic!("map {t} is not faked"),
    }
}

fn bytes(b: ModuleBuffer) -> Option<Vec<u8>> {
    if b.ptr.is_null() {
        return None;
    }
    // SAFETY: the module's live buffer, read during the call.
    Some(unsafe { std::slice::from_raw_parts(b.ptr, b.length) }.to_vec())
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_log(level: i32, message: ModuleBuffer) {
    let m = String::from_utf8(bytes(message).unwrap_or_default()).unwrap();
    STREAM.with(|s| s.borrow_mut().logs.push((level, m)));
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_get_headers_size(_: *mut c_void, t: i32) -> usize {
    STREAM.with(|s| map(&mut s.borrow_mut(), t).len())
}

#[no_mangle]
unsafe extern "C" fn envoy_dynamic_module_callback_http_get_headers(
    _: *mut c_void,
    t: i32,
    out: *mut EnvoyHeader,
) -> bool {
    STREAM.with(|s| {
        let mut s = s.borrow_mut();
        for (i, (k, v)) in map(&mut s, t).iter().enumerate() {
            // SAFETY: the module sized `out` for every entry; the fake's
            // buffers live in the thread-local as long as the test reads them.
            unsafe {
                *out.add(i) = EnvoyHeader {
                    key_ptr: k.as_ptr(),
                    key_length: k.len(),
                    value_ptr: v.as_ptr(),
                    value_length: v.len(),
                };
            }
        }
    });
    true
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_set_header(
    _: *mut c_void,
    t: i32,
    key: ModuleBuffer,
    value: ModuleBuffer,
) -> bool {
    let key = bytes(key).unwrap();
    STREAM.with(|s| {
        let mut s = s.borrow_mut();
        if s.refuse_edits {
            return false;
        }
        let m = map(&mut s, t);
        m.retain(|(k, _)| *k != key);
        if let Some(v) = bytes(value) {
            m.push((key, v));
        }
        true
    })
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_add_header(
    _: *mut c_void,
    t: i32,
    key: ModuleBuffer,
    value: ModuleBuffer,
) -> bool {
    let pair = (bytes(key).unwrap(), bytes(value).unwrap());
    STREAM.with(|s| {
        let mut s = s.borrow_mut();
        if s.refuse_edits {
            return false;
        }
        map(&mut s, t).push(pair);
        true
    })
}

#[no_mangle]
unsafe extern "C" fn envoy_dynamic_module_callback_http_send_response(
    _: *mut c_void,
    status: u32,
    headers: *mut ModuleHeader,
    n: usize,
    body: ModuleBuffer,
    _details: ModuleBuffer,
) {
    // SAFETY: the module's array of `n` headers, live during the call.
    let list = unsafe { std::slice::from_raw_parts(headers, n) };
    let list = list
        .iter()
        .map(|h| {
            (
                bytes(ModuleBuffer {
                    ptr: h.key_ptr,
                    length: h.key_length,
                })
                .unwrap(),
                bytes(ModuleBuffer {
                    ptr: h.value_ptr,
                    length: h.value_length,
                })
                .unwrap(),
            )
        })
        .collect();
    let body = bytes(body).unwrap_or_default();
    STREAM.with(|s| s.borrow_mut().sent = Some((status, list, body)));
    if let Some(then) = ON_SEND.with(|f| f.borrow_mut().take()) {
        then();
    }
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
    _: *mut c_void,
    key: ModuleBuffer,
    value: ModuleBuffer,
) -> bool {
    let pair = (bytes(key).unwrap(), bytes(value).unwrap_or_default());
    STREAM.with(|s| s.borrow_mut().state.push(pair));
    true
}

#[no_mangle]
unsafe extern "C" fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
    _: *mut c_void,
    id: i32,
    out: *mut EnvoyBuffer,
) -> bool {
    STREAM.with(|s| {
        let s = s.borrow();
        match (&s.source, id) {
            (Some(v), 24) => {
                // SAFETY: `out` is the module's place to write.
                unsafe {
                    *out = EnvoyBuffer {
                        ptr: v.as_ptr(),
                        length: v.len(),
                    }
                };
                true
            }
            _ => false,
        }
    })
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_clear_route_cache(_: *mut c_void) {}

/// Scheduler and callout calls the module made, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    SchedulerNew(usize),
    Commit(usize, u64),
    Delete(usize),
    ConfigCommit(u64),
    Continue,
    Callout(String, Vec<(String, String)>),
}

thread_local! {
    pub static CALLS: RefCell<Vec<Call>> = const { RefCell::new(Vec::new()) };
    static NEXT: std::cell::Cell<usize> = const { std::cell::Cell::new(0x1000) };
    /// What the next callout returns (0 = success).
    pub static CALLOUT_RESULT: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

fn call(c: Call) {
    CALLS.with(|l| l.borrow_mut().push(c));
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_continue_decoding(_: *mut c_void) {
    call(Call::Continue);
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_scheduler_new(
    _: *mut c_void,
) -> *mut c_void {
    let p = NEXT.with(|n| {
        n.set(n.get() + 8);
        n.get()
    });
    call(Call::SchedulerNew(p));
    p as *mut c_void
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_scheduler_commit(s: *mut c_void, e: u64) {
    call(Call::Commit(s as usize, e));
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_scheduler_delete(s: *mut c_void) {
    call(Call::Delete(s as usize));
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
    _: *mut c_void,
) -> *mut c_void {
    0x10 as *mut c_void
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
    _: *mut c_void,
    e: u64,
) {
    call(Call::ConfigCommit(e));
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(_: *mut c_void) {}

#[no_mangle]
unsafe extern "C" fn envoy_dynamic_module_callback_http_filter_config_http_callout(
    _: *mut c_void,
    id: *mut u64,
    cluster: ModuleBuffer,
    headers: *mut ModuleHeader,
    n: usize,
    _body: ModuleBuffer,
    _timeout: u64,
) -> i32 {
    // SAFETY: the module's array of `n` headers, live during the call.
    let list = unsafe { std::slice::from_raw_parts(headers, n) };
    let text = |p: *const u8, l: usize| {
        String::from_utf8(bytes(ModuleBuffer { ptr: p, length: l }).unwrap()).unwrap()
    };
    let list = list
        .iter()
        .map(|h| {
            (
                text(h.key_ptr, h.key_length),
                text(h.value_ptr, h.value_length),
            )
        })
        .collect();
    let cluster = String::from_utf8(bytes(cluster).unwrap()).unwrap();
    call(Call::Callout(cluster, list));
    // SAFETY: the module's place to write.
    unsafe { *id = 42 };
    CALLOUT_RESULT.with(|r| r.get())
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_config_define_counter(
    _: *mut c_void,
    _: ModuleBuffer,
    _: *mut ModuleBuffer,
    _: usize,
    id: *mut usize,
) -> i32 {
    // SAFETY: the module's place to write.
    unsafe { *id = 1 };
    0
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_http_filter_increment_counter(
    _: *mut c_void,
    _: usize,
    _: *mut ModuleBuffer,
    _: usize,
    _: u64,
) -> i32 {
    0
}
