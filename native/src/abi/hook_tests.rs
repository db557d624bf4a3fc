//! The hooks as Envoy calls them, over the fake Envoy (`fake.rs`): a
//! stream's hooks called from inside one another, edits Envoy refuses,
//! panics, and paused streams that go away.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::cell::Cell;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::fake::{Call, CALLS, ON_SEND, STREAM};
use super::hooks::*;
use super::*;
use crate::callout::{EVENT_MAIL, EVENT_REDECIDE};

const TOKEN: &str = "hook-tests-static-token-0123";

/// A configuration made through its hook (`envoy` non-null: it has a
/// main-thread scheduler).
fn config(json: &str) -> *const c_void {
    let b = EnvoyBuffer {
        ptr: json.as_ptr(),
        length: json.len(),
    };
    // SAFETY: the buffers live during the call.
    let c = unsafe {
        envoy_dynamic_module_on_http_filter_config_new(0x20 as *mut c_void, EnvoyBuffer::empty(), b)
    };
    assert!(
        !c.is_null(),
        "{:?}",
        STREAM.with(|s| s.borrow().logs.clone())
    );
    c
}

fn static_config() -> *const c_void {
    config(&format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":{{"target":"http://127.0.0.1:1/svc","allowedHeaders":["X-Ok"]}}}}}},
            "backend":{{"auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{TOKEN}","subject":"ci"}}}}]}}}}}}"#
    ))
}

fn stream_of(config: *const c_void) -> *const c_void {
    // SAFETY: a live configuration.
    let m = unsafe { envoy_dynamic_module_on_http_filter_new(config, ptr::null_mut()) };
    assert!(!m.is_null());
    m
}

fn request(auth: Option<&str>) {
    let mut h = vec![
        (b":method".to_vec(), b"GET".to_vec()),
        (b":path".to_vec(), b"/api/proxy/svc/x".to_vec()),
        (b":authority".to_vec(), b"gw".to_vec()),
    ];
    if let Some(a) = auth {
        h.push((b"authorization".to_vec(), a.as_bytes().to_vec()));
    }
    STREAM.with(|s| {
        let mut s = s.borrow_mut();
        s.request = h;
        s.sent = None;
    });
}

const ENVOY: *mut c_void = 0x30 as *mut c_void;

fn on_request(m: *const c_void) -> i32 {
    // SAFETY: a live stream.
    unsafe { envoy_dynamic_module_on_http_filter_request_headers(ENVOY, m, true) }
}

fn on_response(m: *const c_void) -> i32 {
    // SAFETY: a live stream.
    unsafe { envoy_dynamic_module_on_http_filter_response_headers(ENVOY, m, true) }
}

fn destroy(m: *const c_void) {
    // SAFETY: a live stream, destroyed once.
    unsafe { envoy_dynamic_module_on_http_filter_destroy(m) }
}

fn scheduled(m: *const c_void, event: u64) {
    // SAFETY: a live stream.
    unsafe { envoy_dynamic_module_on_http_filter_scheduled(ENVOY, m, event) }
}

fn sent() -> Option<u32> {
    STREAM.with(|s| s.borrow().sent.as_ref().map(|r| r.0))
}

fn freed() -> u32 {
    FREED.with(Cell::get)
}

#[test]
fn a_local_reply_that_re_enters_the_stream_and_ends_it_frees_it_only_after_the_hook() {
    let c = static_config();
    let m = stream_of(c);
    request(None);
    let before = freed();
    let inside = Rc::new(Cell::new((0, 0)));
    let seen = Rc::clone(&inside);
    // Envoy runs the encoder chain inside the reply, then ends the stream.
    ON_SEND.with(|f| {
        *f.borrow_mut() = Some(Box::new(move || {
            let status = on_response(m);
            destroy(m);
            seen.set((status, freed()));
        }))
    });
    assert_eq!(on_request(m), STOP_ITERATION);
    assert_eq!(sent(), Some(401));
    let (status, freed_inside) = inside.get();
    // its own reply is not filtered, and the state outlived the call
    assert_eq!(status, CONTINUE);
    assert_eq!(freed_inside, before);
    assert_eq!(freed(), before + 1);
}

#[test]
fn a_stream_destroyed_with_no_hook_running_is_freed_at_once() {
    let c = static_config();
    let m = stream_of(c);
    let before = freed();
    destroy(m);
    assert_eq!(freed(), before + 1);
}

#[test]
fn a_request_header_edit_envoy_refuses_is_answered_500_and_never_let_on() {
    let c = static_config();
    let m = stream_of(c);
    request(Some(&format!("Bearer {TOKEN}")));
    STREAM.with(|s| s.borrow_mut().refuse_edits = true);
    // the credentials could not be removed: not forwarded
    assert_eq!(on_request(m), STOP_ITERATION);
    assert_eq!(sent(), Some(500));
    STREAM.with(|s| s.borrow_mut().refuse_edits = false);
    destroy(m);
    // and with Envoy making the edits, the same request goes on
    let m = stream_of(c);
    request(Some(&format!("Bearer {TOKEN}")));
    assert_eq!(on_request(m), CONTINUE);
    assert_eq!(sent(), None);
    destroy(m);
}

#[test]
fn a_response_header_edit_envoy_refuses_is_answered_500() {
    let c = static_config();
    for refuse in [false, true] {
        let m = stream_of(c);
        request(Some(&format!("Bearer {TOKEN}")));
        assert_eq!(on_request(m), CONTINUE);
        STREAM.with(|s| {
            let mut s = s.borrow_mut();
            s.response = vec![
                (b":status".to_vec(), b"200".to_vec()),
                (b"x-ok".to_vec(), b"1".to_vec()),
                (b"x-internal".to_vec(), b"secret".to_vec()),
            ];
            s.refuse_edits = refuse;
        });
        let status = on_response(m);
        STREAM.with(|s| s.borrow_mut().refuse_edits = false);
        if refuse {
            // the disallowed header could not be removed: never passed on
            assert_eq!(status, STOP_ITERATION);
            assert_eq!(sent(), Some(500));
        } else {
            assert_eq!(status, CONTINUE);
            assert_eq!(sent(), None);
            let kept = STREAM.with(|s| s.borrow().response.clone());
            assert!(kept.iter().all(|(k, _)| k != b"x-internal"), "{kept:?}");
        }
        destroy(m);
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A configuration whose user tokens need a key set from `base` (each
/// test its own: the fetch lease is process-wide), and a user token.
fn key_set_config(base: &str) -> (*const c_void, String) {
    let c = config(&format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":"http://127.0.0.1:1/svc"}}}},"backend":{{"baseUrl":"{base}"}}}}"#
    ));
    let key = backstage_proxy_mint::Es256::new(3, "hook-kid");
    let t = backstage_proxy_mint::user_token(&key, "user:default/a", now(), now() + 600);
    (c, format!("Bearer {t}"))
}

fn bells() -> Vec<usize> {
    CALLS.with(|l| {
        l.borrow()
            .iter()
            .filter_map(|c| match c {
                Call::SchedulerNew(p) => Some(*p),
                _ => None,
            })
            .collect()
    })
}

fn rung(bell: usize) -> Vec<u64> {
    CALLS.with(|l| {
        l.borrow()
            .iter()
            .filter_map(|c| match c {
                Call::Commit(p, e) if *p == bell => Some(*e),
                _ => None,
            })
            .collect()
    })
}

/// Main thread: the queued callouts go, and the one sent (fake id 42) is
/// answered with `status` and a body.
fn answer_callout(c: *const c_void, status: &[u8]) {
    // SAFETY: a live configuration.
    unsafe { envoy_dynamic_module_on_http_filter_config_scheduled(0x20 as *mut c_void, c, 0) };
    let headers = [EnvoyHeader {
        key_ptr: b":status".as_ptr(),
        key_length: 7,
        value_ptr: status.as_ptr(),
        value_length: status.len(),
    }];
    let body = b"{\"keys\":[]}";
    let chunks = [EnvoyBuffer {
        ptr: body.as_ptr(),
        length: body.len(),
    }];
    // SAFETY: live configuration; arrays and buffers live during the call.
    unsafe {
        envoy_dynamic_module_on_http_filter_config_http_callout_done(
            0x20 as *mut c_void,
            c,
            42,
            0,
            headers.as_ptr(),
            1,
            chunks.as_ptr(),
            1,
        )
    };
}

#[test]
fn a_paused_stream_that_goes_after_its_bell_rang_passes_the_mail_to_the_others() {
    let (c, auth) = key_set_config("http://hook-tests-a.internal:7007");
    CALLS.with(|l| l.borrow_mut().clear());
    let (m1, m2) = (stream_of(c), stream_of(c));
    request(Some(&auth));
    assert_eq!(on_request(m1), STOP_ITERATION);
    assert_eq!(on_request(m2), STOP_ITERATION);
    assert_eq!(sent(), None);
    let b = bells();
    assert_eq!(b.len(), 2, "{:?}", CALLS.with(|l| l.borrow().clone()));
    answer_callout(c, b"200");
    // the answer rang the first paused stream ...
    assert_eq!(rung(b[0]), vec![EVENT_MAIL]);
    assert!(rung(b[1]).is_empty());
    // ... whose client hangs up before its event runs (the event is then
    // dropped by Envoy): the second stream is rung at once all the same
    destroy(m1);
    let second = rung(b[1]);
    assert!(
        !second.is_empty(),
        "{:?}",
        CALLS.with(|l| l.borrow().clone())
    );
    // and, when its event runs, decided (the set has no key for its token)
    scheduled(m2, second[0]);
    assert_eq!(sent(), Some(401));
    destroy(m2);
}

#[test]
fn a_panic_in_the_scheduled_hook_answers_500_only_a_paused_request() {
    let (c, auth) = key_set_config("http://hook-tests-b.internal:7007");
    let paused = stream_of(c);
    request(Some(&auth));
    assert_eq!(on_request(paused), STOP_ITERATION);
    let idle = stream_of(c);
    crate::filter::test_panic::SCHEDULED.with(|p| p.set(true));
    // a stream that is not paused (its request went on or was answered)
    scheduled(idle, EVENT_MAIL);
    assert_eq!(sent(), None);
    // a paused one: it would wait for ever, so it is refused
    scheduled(paused, EVENT_REDECIDE);
    crate::filter::test_panic::SCHEDULED.with(|p| p.set(false));
    assert_eq!(sent(), Some(500));
    let logs = STREAM.with(|s| s.borrow().logs.clone());
    let caught: Vec<_> = logs
        .iter()
        .filter(|(_, m)| m.contains("panic caught in scheduled"))
        .collect();
    assert_eq!(caught.len(), 2, "{logs:?}");
    assert!(caught[0].1.contains("left as it was"));
    assert!(caught[1].1.contains("answered 500"));
    destroy(paused);
    destroy(idle);
}

#[test]
fn the_panic_line_names_the_place_and_never_the_message() {
    let at = std::panic::Location::caller();
    let line = panic_line(Some(at));
    assert!(
        line.contains(&format!("{}:{}", at.file(), at.line())),
        "{line}"
    );
    assert!(line.contains("message withheld"));
    assert_eq!(
        panic_line(None),
        "backstage-proxy-native: panic (message withheld)"
    );
}
