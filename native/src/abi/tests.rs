//! The bindings' conversions, over the fake Envoy (`fake.rs`).

use super::fake::STREAM;
use super::*;
use crate::filter::Host;

fn stream() -> Stream {
    Stream {
        envoy: ptr::null_mut(),
    }
}

#[test]
fn headers_are_copied_whole_and_bytes_that_are_not_utf8_survive_in_values() {
    STREAM.with(|s| {
        s.borrow_mut().request = vec![
            (b":path".to_vec(), b"/a?b".to_vec()),
            (b"x-bin".to_vec(), vec![0xff, 0x00, b'a']),
            (b"x-empty".to_vec(), Vec::new()),
            (vec![b'x', 0xff], b"v".to_vec()),
        ]
    });
    let map = stream().headers(Map::Request);
    let got = map.view();
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], (":path", &b"/a?b"[..]));
    assert_eq!(got[1].1, [0xff, 0x00, b'a']);
    assert_eq!(got[2], ("x-empty", &b""[..]));
    // a name that is not UTF-8 (Envoy refuses those on the wire) stays distinct
    assert_eq!(got[3].0, "x\u{fffd}");
    // the copy does not depend on Envoy's buffers afterwards
    STREAM.with(|s| s.borrow_mut().request.clear());
    assert_eq!(got[0].1, b"/a?b");
    assert!(stream().headers(Map::Request).view().is_empty());
}

#[test]
fn a_map_larger_than_the_stack_array_is_read_whole_in_order() {
    // 32 entries fit the hook's stack array; a hostile request has more
    let sent: Vec<(Vec<u8>, Vec<u8>)> = (0..100)
        .map(|i| (format!("x-h{i}").into_bytes(), format!("v{i}").into_bytes()))
        .collect();
    STREAM.with(|s| s.borrow_mut().request = sent.clone());
    for n in [31, 32, 33, 100] {
        STREAM.with(|s| s.borrow_mut().request = sent[..n].to_vec());
        let map = stream().headers(Map::Request);
        let got = map.view();
        assert_eq!(got.len(), n);
        for (g, (name, value)) in got.iter().zip(&sent) {
            assert_eq!(g.0.as_bytes(), &name[..]);
            assert_eq!(g.1, &value[..]);
        }
    }
}

#[test]
fn set_with_none_removes_and_local_replies_carry_headers_and_body() {
    STREAM
        .with(|s| s.borrow_mut().request = vec![(b"authorization".to_vec(), b"Bearer x".to_vec())]);
    let mut s = stream();
    s.set(Map::Request, "authorization", None);
    s.set(Map::Request, ":path", Some(b"/up"));
    STREAM.with(|f| {
        assert_eq!(
            f.borrow().request,
            vec![(b":path".to_vec(), b"/up".to_vec())]
        )
    });
    s.send(
        401,
        &[("www-authenticate".to_string(), "Bearer".to_string())],
        b"{}",
    );
    let sent = STREAM.with(|f| f.borrow_mut().sent.take()).unwrap();
    assert_eq!(sent.0, 401);
    assert_eq!(
        sent.1,
        vec![(b"www-authenticate".to_vec(), b"Bearer".to_vec())]
    );
    assert_eq!(sent.2, b"{}");
    // an empty header list is a valid (dangling, zero-length) array
    s.send(500, &[], b"");
    assert_eq!(STREAM.with(|f| f.borrow_mut().sent.take()).unwrap().0, 500);
}

#[test]
fn attributes_absent_are_none_and_present_ones_copied() {
    STREAM.with(|f| f.borrow_mut().source = None);
    assert_eq!(stream().attribute(Attribute::SourceAddress), None);
    STREAM.with(|f| f.borrow_mut().source = Some(b"10.0.0.1:5".to_vec()));
    assert_eq!(
        stream().attribute(Attribute::SourceAddress).as_deref(),
        Some(&b"10.0.0.1:5"[..])
    );
    assert_eq!(stream().attribute(Attribute::ConnectionTlsVersion), None);
}

#[test]
fn the_abi_version_is_a_c_string_envoy_accepts() {
    let p = envoy_dynamic_module_on_program_init();
    // SAFETY: a static NUL-terminated string.
    let s = unsafe { std::ffi::CStr::from_ptr(p.cast()) };
    assert_eq!(s.to_str().unwrap(), "v0.1.0");
}

#[test]
fn envoy_bytes_reads_null_and_empty_as_empty_and_never_past_the_length() {
    // SAFETY: null and zero-length inputs read nothing.
    assert!(unsafe { envoy_bytes(ptr::null(), 5) }.is_empty());
    let data = b"abcdef";
    // SAFETY: `data` outlives the slice; length within bounds.
    assert!(unsafe { envoy_bytes(data.as_ptr(), 0) }.is_empty());
    // SAFETY: as above.
    assert_eq!(unsafe { envoy_bytes(data.as_ptr(), 3) }, b"abc");
}

#[test]
fn a_panicking_body_becomes_the_fail_closed_value() {
    #[allow(clippy::panic)]
    let v = guard("test", 7, || -> i32 { panic!("boom") });
    assert_eq!(v, 7);
    let logged = STREAM.with(|f| f.borrow().logs.clone());
    assert!(logged
        .iter()
        .any(|(level, m)| *level == Level::Error as i32 && m.contains("panic caught in test")));
}
