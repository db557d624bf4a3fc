//! The hooks Envoy calls (the module's exports). Each runs its body in
//! [`guard`] or catches a panic itself: nothing unwinds into Envoy.

use std::cell::{Cell, RefCell};
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

/// A stream's state as Envoy holds it (the pointer
/// [`envoy_dynamic_module_on_http_filter_new`] returns). Envoy can call a
/// hook of the stream from inside another: a local reply runs the response
/// hook at once, and a reply or resuming the request can end the stream
/// and call the destroy hook before the call returns (Envoy 1.39.0 does not
/// defer it). So hooks share it (`&Wrapper`), the filter is borrowed only
/// while deciding, never across such a call, and a destroy that comes
/// while a hook runs only marks it: the outermost hook frees it on exit.
pub(super) struct Wrapper {
    /// Hooks of this stream running now, nested ones included.
    in_hook: Cell<u32>,
    /// Envoy destroyed the stream while a hook ran.
    dead: Cell<bool>,
    filter: RefCell<Filter>,
}

impl Wrapper {
    pub(super) fn new(filter: Filter) -> Wrapper {
        Wrapper {
            in_hook: Cell::new(0),
            dead: Cell::new(false),
            filter: RefCell::new(filter),
        }
    }
}

/// One hook's hold on its stream's state: counted in when made, out when
/// dropped; the last one out of a destroyed stream frees the state.
pub(super) struct Entered {
    ptr: *const Wrapper,
}

impl Entered {
    /// # Safety
    /// `module` is null or the pointer `filter_new` returned, whose destroy
    /// hook has not freed it (Envoy calls no hook of a stream after its
    /// destroy hook returned), on the stream's worker thread.
    pub(super) unsafe fn new(module: *const c_void) -> Option<Entered> {
        let ptr = module.cast::<Wrapper>();
        // SAFETY: the caller's contract: null, or a live `Box<Wrapper>`.
        let w = unsafe { ptr.as_ref() }?;
        w.in_hook.set(w.in_hook.get().saturating_add(1));
        Some(Entered { ptr })
    }

    pub(super) fn wrapper(&self) -> &Wrapper {
        // SAFETY: live while any `Entered` of it exists: the destroy hook
        // frees it only when no hook runs, and `drop` below only once the
        // count is back to zero, after which no `Entered` of it is left.
        unsafe { &*self.ptr }
    }

    /// Envoy destroyed the stream meanwhile: nothing may call it now.
    pub(super) fn dead(&self) -> bool {
        self.wrapper().dead.get()
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let w = self.wrapper();
        let n = w.in_hook.get().saturating_sub(1);
        w.in_hook.set(n);
        if n == 0 && w.dead.get() {
            // SAFETY: the destroy hook came while hooks ran and left the
            // freeing to the last of them: this one. `w` is not used after.
            unsafe { free(self.ptr) }
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Streams' states freed on this thread.
    pub(super) static FREED: Cell<u32> = const { Cell::new(0) };
}

/// Drops a stream's state, after forgetting a paused request (a panic in
/// that is caught here: this may run while a panic unwinds).
///
/// # Safety
/// `ptr` came from `Box<Wrapper>` and no reference to it is used after.
unsafe fn free(ptr: *const Wrapper) {
    // SAFETY: the caller's contract; this is its one drop.
    let w = unsafe { Box::from_raw(ptr.cast_mut()) };
    #[cfg(test)]
    FREED.with(|n| n.set(n.get().saturating_add(1)));
    let _ = catch_unwind(AssertUnwindSafe(move || {
        let mut f = w.filter.into_inner();
        filter::on_destroy(&mut f);
    }));
}

/// A local 500 then stop: what a request or response hook does when its
/// body panicked (the stream goes no further).
fn fail_closed(envoy: *mut c_void) -> i32 {
    let mut s = Stream { envoy };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        Flow::Reply(filter::internal_error()).perform(&mut s);
    }));
    STOP_ITERATION
}

/// After a hook's body panicked: a 500 if the stream is still there and
/// `reply` (a reply is still possible and owed), else only a log line.
pub(super) fn after_panic(hook: &str, e: &Entered, envoy: *mut c_void, reply: bool) -> i32 {
    let reply = reply && !e.dead();
    log(
        Level::Error,
        &format!(
            "backstage-proxy-native: panic caught in {hook}; {}",
            if reply {
                "answered 500"
            } else {
                "stream left as it was"
            }
        ),
    );
    if reply {
        fail_closed(envoy)
    } else {
        STOP_ITERATION
    }
}

/// The one line a panic prints to Envoy's standard error: where, never
/// what (the message may quote a header or token).
pub(super) fn panic_line(location: Option<&std::panic::Location<'_>>) -> String {
    match location {
        Some(l) => format!(
            "backstage-proxy-native: panic at {}:{} (message withheld)",
            l.file(),
            l.line()
        ),
        None => "backstage-proxy-native: panic (message withheld)".to_string(),
    }
}

/// Replaces Rust's default panic hook, which prints the message, with one
/// that prints [`panic_line`] only. Not in the unit tests, whose failures
/// need their messages.
fn install_panic_hook() {
    #[cfg(not(test))]
    std::panic::set_hook(Box::new(|info| {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{}", panic_line(info.location()));
    }));
}

/// Called once, on the main thread, when Envoy loads the module: returns
/// the ABI version (a NUL-terminated string the module owns for good).
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    guard("program_init", ptr::null(), || {
        install_panic_hook();
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

/// A new stream (worker thread): its state, or null (Envoy then fails
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
        let w = Wrapper::new(Filter::new(Arc::clone(config)));
        Box::into_raw(Box::new(w)).cast_const().cast()
    })
}

/// The request's headers: decided here, then answered, edited or let on.
///
/// # Safety
/// Both pointers are the live stream's (`filter_new`'s result for `module`).
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    filter_envoy_ptr: *mut c_void,
    filter_module_ptr: *const c_void,
    _end_of_stream: bool,
) -> i32 {
    if cfg!(feature = "bench-noop") {
        return CONTINUE;
    }
    // SAFETY: the caller's contract.
    let Some(e) = (unsafe { Entered::new(filter_module_ptr) }) else {
        return fail_closed(filter_envoy_ptr);
    };
    let mut s = Stream {
        envoy: filter_envoy_ptr,
    };
    let run = || {
        let flow = match e.wrapper().filter.try_borrow_mut() {
            Ok(mut f) => filter::on_request(&mut f, &mut s),
            Err(_) => Flow::Reply(filter::internal_error()),
        };
        // The filter is let go of: the reply may re-enter and end the stream.
        match flow {
            Flow::Continue => CONTINUE,
            Flow::Pause => STOP_ITERATION,
            reply @ Flow::Reply(_) => {
                reply.perform(&mut s);
                STOP_ITERATION
            }
        }
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(status) => status,
        Err(_) => after_panic("request_headers", &e, filter_envoy_ptr, true),
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
    if cfg!(feature = "bench-noop") {
        return CONTINUE;
    }
    // SAFETY: the caller's contract.
    let Some(e) = (unsafe { Entered::new(filter_module_ptr) }) else {
        return CONTINUE;
    };
    let mut s = Stream {
        envoy: filter_envoy_ptr,
    };
    let run = || {
        // Borrowed already: this is the module's own reply, sent from
        // inside another hook of the stream, which is not filtered.
        let refused = match e.wrapper().filter.try_borrow_mut() {
            Ok(mut f) => filter::on_response(&mut f, &mut s),
            Err(_) => None,
        };
        match refused {
            None => CONTINUE,
            Some(reply) => {
                Flow::Reply(reply).perform(&mut s);
                STOP_ITERATION
            }
        }
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(status) => status,
        Err(_) => after_panic("response_headers", &e, filter_envoy_ptr, true),
    }
}

/// The stream is gone: its state is dropped, or, if one of its hooks is
/// running (this came from inside it), by that hook when it returns.
///
/// # Safety
/// `filter_module_ptr` came from `filter_new` and is destroyed once.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(
    filter_module_ptr: *const c_void,
) {
    guard("filter_destroy", (), || {
        let ptr = filter_module_ptr.cast::<Wrapper>();
        // SAFETY: `Box<Wrapper>` made it and it is not freed yet.
        let Some(w) = (unsafe { ptr.as_ref() }) else {
            return;
        };
        if w.in_hook.get() > 0 {
            w.dead.set(true);
        } else {
            // SAFETY: no hook runs, and Envoy calls none after this one.
            unsafe { free(ptr) }
        }
    })
}

/// Whether the stream's request is paused (its body and trailers are then
/// held back); `true` when that cannot be read.
///
/// # Safety
/// As [`Entered::new`].
unsafe fn held(module: *const c_void) -> bool {
    // SAFETY: the caller's contract.
    let Some(e) = (unsafe { Entered::new(module) }) else {
        return true;
    };
    let held = e
        .wrapper()
        .filter
        .try_borrow()
        .map_or(true, |f| f.is_paused());
    held
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
        if unsafe { held(filter_module_ptr) } {
            STOP_ITERATION
        } else {
            CONTINUE
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
        if unsafe { held(filter_module_ptr) } {
            STOP_ITERATION
        } else {
            CONTINUE
        }
    })
}

/// An event the module scheduled for this stream (its doorbell): read the
/// worker's mail, decide the paused request again, then resume or answer
/// it. A panic answers 500 only a request paused when the hook began (one
/// already let on or answered is left as it is).
///
/// # Safety
/// Both pointers are the live stream's.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    filter_envoy_ptr: *mut c_void,
    filter_module_ptr: *const c_void,
    event_id: u64,
) {
    // SAFETY: the caller's contract.
    let Some(e) = (unsafe { Entered::new(filter_module_ptr) }) else {
        return;
    };
    let mut s = Stream {
        envoy: filter_envoy_ptr,
    };
    let paused = e.wrapper().filter.try_borrow().is_ok_and(|f| f.is_paused());
    let run = || {
        let flow = match e.wrapper().filter.try_borrow_mut() {
            Ok(mut f) => filter::on_scheduled(&mut f, &mut s, event_id),
            Err(_) => Flow::Pause,
        };
        // The filter is let go of: resuming or the reply may end the stream.
        flow.perform(&mut s);
    };
    if catch_unwind(AssertUnwindSafe(run)).is_err() {
        let _ = after_panic("scheduled", &e, filter_envoy_ptr, paused);
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
            let sent = catch_unwind(AssertUnwindSafe(|| config.mailroom.send_queued(&mut main)));
            if sent.is_err() {
                log(
                    Level::Error,
                    "backstage-proxy-native: panic caught in config_scheduled; that callout answered lost",
                );
                // The callouts still queued go at the next turn.
                if let (true, Some(main)) = (config.mailroom.has_queued(), &config.main) {
                    main.commit(0);
                }
            }
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
