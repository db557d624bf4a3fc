//! The key-set fetch coordinator under any ordering of events, on two
//! workers sharing one store of shared data: requests needing sets
//! (configured and learnt), ticks, dispatch results, answers of every kind,
//! streams ending. Invariants: never a second fetch for a URL while one is
//! in flight on a worker; paused streams stay within the bound; every
//! stream redecided was waiting; nothing panics.
#![no_main]
use std::collections::{HashMap, HashSet};

use backstage_proxy_core::auth::jwks::fetch::{
    Command, Coordinator, Park, Response, MAX_PAUSED,
};
use backstage_proxy_core::auth::jwks::store::{KeyStore, Source, Timing};
use backstage_proxy_core::shared_data::InMemory;
use libfuzzer_sys::fuzz_target;

const ED: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}"#;

fn src(i: u8) -> Source {
    let url = match i % 4 {
        0 => "http://b/api/auth/.well-known/jwks.json".to_string(),
        1 => "http://idp/jwks".to_string(),
        n => format!("http://b/api/p{}{n}/.backstage/auth/v1/jwks.json", i / 4),
    };
    Source { url, cluster: "c".into(), authority: "b".into(), path: "/".into() }
}

struct Worker {
    keys: KeyStore,
    coord: Coordinator,
    /// call token → (URL, when), for fetches dispatched and not answered.
    calls: HashMap<u32, (String, u64)>,
    waiting: HashSet<u32>,
}

fuzz_target!(|data: &[u8]| {
    let timing = Timing { refresh_ms: 5_000, cooldown_ms: 2_000, fetch_timeout_ms: 500, retry_after_failure_ms: 100 };
    let pinned = || vec![src(0), src(1)];
    let mut workers: Vec<Worker> = (0..2)
        .map(|_| Worker { keys: KeyStore::new(timing, pinned()), coord: Coordinator::default(), calls: HashMap::new(), waiting: HashSet::new() })
        .collect();
    let mut shared = InMemory::default();
    let mut now = 0u64;
    let mut next_call = 1u32;
    for chunk in data.chunks(3) {
        let [op, a, b] = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let w = &mut workers[usize::from(op & 1)];
        let mut cmds = Vec::new();
        match op >> 1 & 7 {
            0 | 1 => {
                // A new request (a paused one is only decided again when
                // the coordinator says so).
                let stream = u32::from(a) | u32::from(b & 3) << 8;
                if !w.waiting.contains(&stream) {
                    let s = src(b >> 2);
                    let _ = w.keys.lookup(&s, now);
                    if w.coord.park(stream, &s) == Park::Wait {
                        w.waiting.insert(stream);
                    }
                    cmds = w.coord.pump(&mut w.keys, &mut shared, now);
                }
            }
            2 => now += u64::from(a) * 10,
            3 => cmds = w.coord.tick(&mut w.keys, &mut shared, now),
            4 | 5 => {
                if let Some((&call, _)) = w.calls.iter().nth(usize::from(a) % w.calls.len().max(1)) {
                    w.calls.remove(&call);
                    let response = match b % 5 {
                        0 => Response::Answered { status: 200, body: Some(ED.as_bytes().to_vec()), size: ED.len() },
                        1 => Response::Answered { status: 404, body: None, size: 0 },
                        2 => Response::Answered { status: 200, body: Some(b"{}".to_vec()), size: 2 },
                        3 => Response::Answered { status: 200, body: None, size: 1 << 20 },
                        _ => Response::Lost,
                    };
                    cmds = w.coord.answered(&mut w.keys, &mut shared, call, response, 64 * 1024, now);
                }
            }
            6 => {
                let stream = u32::from(a) | u32::from(b & 3) << 8;
                w.coord.forget(stream);
                w.waiting.remove(&stream);
            }
            _ => {}
        }
        // Carry out the commands as the filter would.
        let mut todo: Vec<Command> = cmds;
        while let Some(cmd) = todo.pop() {
            match cmd {
                Command::Fetch { source, .. } => {
                    // A fetch the host has not answered for twice its timeout
                    // (1 s at least) counts as lost, and may be retried.
                    assert!(
                        !w.calls.values().any(|(u, t)| *u == source.url && now - t <= 1_000),
                        "a second fetch for {} while one is in flight",
                        source.url
                    );
                    if b & 0x80 != 0 && source.url.contains("idp") {
                        todo.extend(w.coord.dispatched(&mut w.keys, &mut shared, source, Err("BadArgument".into()), now));
                    } else {
                        let call = next_call;
                        next_call += 1;
                        w.calls.insert(call, (source.url.clone(), now));
                        todo.extend(w.coord.dispatched(&mut w.keys, &mut shared, source, Ok(call), now));
                    }
                }
                Command::Redecide(ids) => {
                    for id in ids {
                        assert!(w.waiting.remove(&id), "stream {id} redecided but not waiting");
                        // Decided again: it may need a set once more (the
                        // obo user's after the plugin's), else it is done.
                        let s = src(b.rotate_left(id % 8) >> 2);
                        if id % 3 == 0 && matches!(w.keys.lookup(&s, now), backstage_proxy_core::auth::jwks::store::Lookup::Wait) {
                            if w.coord.park(id, &s) == Park::Wait {
                                w.waiting.insert(id);
                            }
                        } else {
                            w.coord.forget(id);
                        }
                    }
                    todo.extend(w.coord.pump(&mut w.keys, &mut shared, now));
                }
                Command::Count(_) => {}
            }
        }
        assert!(w.coord.paused() <= MAX_PAUSED);
    }
});
