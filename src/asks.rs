//! Carries out the permission asker's commands (`docs/permissions.md`):
//! questions go to the permission backend from the root context, through
//! the Backstage backend's cluster, with the user's own token; answers
//! decide the waiting streams again, and no usable answer refuses them.
//! No policy lives here.

use std::collections::VecDeque;
use std::time::Duration;

use backstage_proxy_core::decision;
use backstage_proxy_core::permission::ask::{Command, Question};
use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use crate::http;
use crate::root::redecide;
use crate::runtime::{now_ms, Shared};

/// Sends every question queued, and carries out what follows.
pub fn pump(rt: &Shared) {
    let cmds = {
        let mut r = rt.borrow_mut();
        let timeout = r.plan.gateway.permission_timeout_ms;
        r.asker.pump(timeout)
    };
    execute_asks(rt, cmds);
}

/// Refuses the waiters of questions the host never answered.
pub fn tick(rt: &Shared) {
    let cmds = {
        let mut r = rt.borrow_mut();
        let timeout = r.plan.gateway.permission_timeout_ms;
        r.asker.tick(now_ms(), timeout)
    };
    execute_asks(rt, cmds);
}

/// Carries out the asker's commands, and those their results bring.
pub fn execute_asks(rt: &Shared, cmds: Vec<Command>) {
    let mut todo = VecDeque::from(cmds);
    while let Some(cmd) = todo.pop_front() {
        match cmd {
            Command::Ask {
                question,
                id,
                body,
                timeout_ms,
            } => {
                let call = send(rt, &question, &body, timeout_ms);
                todo.extend(
                    rt.borrow_mut()
                        .asker
                        .dispatched(&question, id, call, now_ms()),
                );
            }
            Command::Redecide(ids) => {
                redecide(rt, ids);
                if rt.borrow().asker.wants_pump() {
                    let mut r = rt.borrow_mut();
                    let timeout = r.plan.gateway.permission_timeout_ms;
                    todo.extend(r.asker.pump(timeout));
                }
            }
            Command::Refuse(ids) => refuse(rt, ids),
            Command::Count(c) => rt.borrow().metrics.ask(c),
        }
    }
}

/// POSTs a question to the permission backend; the token goes only into
/// the call's `Authorization`, never into a log.
fn send(rt: &Shared, question: &Question, body: &str, timeout_ms: u64) -> Result<u32, String> {
    let Some(target) = decision::permission_target(&rt.borrow().plan) else {
        return Err("no Backstage backend is configured".to_string());
    };
    let bearer = format!("Bearer {}", question.token);
    let headers = vec![
        (":method", "POST"),
        (":path", target.path.as_str()),
        (":authority", target.authority.as_str()),
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("authorization", bearer.as_str()),
    ];
    hostcalls::dispatch_http_call(
        &target.cluster,
        headers,
        Some(body.as_bytes()),
        vec![],
        Duration::from_millis(timeout_ms),
    )
    .map_err(|status| format!("{status:?} (cluster {})", target.cluster))
}

/// Answers each stream `permission_unavailable` in its own context, then
/// restores the root's.
fn refuse(rt: &Shared, ids: Vec<u32>) {
    let root_id = rt.borrow().root_id;
    for id in ids {
        let stream = {
            let mut r = rt.borrow_mut();
            r.asker.forget(id);
            r.streams.remove(&id)
        };
        let Some(stream) = stream else { continue };
        if hostcalls::set_effective_context(id).is_err() {
            warn!(
                "backstage-proxy-wasm: a stream refused for want of a permission answer was gone"
            );
            continue;
        }
        let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
        http::refuse_unanswered(rt, &stream, &headers);
    }
    let _ = hostcalls::set_effective_context(root_id);
}
