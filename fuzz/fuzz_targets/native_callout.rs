//! The native module's only parsing of what Envoy hands it: a callout's
//! answer (result code, response headers, body chunks) read by
//! `answer_from`, delivered through the mailroom to the worker that asked.
//! Invariants: nothing panics; a kept body is exactly the chunks joined and
//! within the limit; the size is the chunks' total; a status is 100-999
//! and came from the first `:status`; every answer reaches its worker once.
#![no_main]
use backstage_proxy_native::callout::{answer_from, Answer, Callout, Mailroom, Post};
use libfuzzer_sys::fuzz_target;

struct Fake(u64);

impl Post for Fake {
    type Bell = ();
    fn send(&mut self, _: &Callout) -> Result<u64, String> {
        self.0 += 1;
        Ok(self.0)
    }
    fn ring(_: &(), _: u64) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&code, rest)) = data.split_first() else {
        return;
    };
    let Some((&max, rest)) = rest.split_first() else {
        return;
    };
    // headers and chunks: fields split by 0xff, pairs and chunks by 0xfe
    let (head, body) = match rest.iter().position(|b| *b == 0xfd) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let headers: Vec<(&[u8], &[u8])> = head
        .split(|b| *b == 0xfe)
        .map(|p| match p.iter().position(|b| *b == 0xff) {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &[][..]),
        })
        .collect();
    let chunks: Vec<&[u8]> = body.split(|b| *b == 0xfe).collect();
    let answer = answer_from(i32::from(code % 5) - 1, &headers, &chunks, usize::from(max));
    if let Answer::Answered { status, body, size } = &answer {
        assert!((100..=999).contains(status));
        let first = headers.iter().find(|(k, _)| *k == b":status").unwrap();
        assert_eq!(first.1, status.to_string().as_bytes());
        assert_eq!(*size, chunks.iter().map(|c| c.len()).sum::<usize>());
        match body {
            Some(b) => {
                assert!(b.len() <= usize::from(max));
                assert_eq!(*b, chunks.concat());
            }
            None => assert!(*size > usize::from(max)),
        }
    }
    let room: Mailroom<()> = Mailroom::default();
    room.register(7, 1, ());
    room.submit(7, 42, Callout {
        cluster: "c".into(),
        method: "GET".into(),
        path: "/".into(),
        authority: "a".into(),
        headers: vec![],
        body: None,
        timeout_ms: 1,
        max_body: usize::from(max),
    });
    room.send_queued(&mut Fake(0));
    room.answered::<Fake>(1, |_| answer.clone());
    assert_eq!(room.take_mail(7), vec![(42, answer)]);
    assert!(room.take_mail(7).is_empty());
});
