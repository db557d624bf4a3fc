//! Configuration pushes to a running Envoy, as a control plane makes them
//! (LDS from a file Envoy watches): requests keep being served, and the
//! filter's per-instance names (its memory gauge, its wake-up queue) are
//! reused instead of growing with every push. Envoy never forgets a stat
//! name; a gateway configured often used to define new ones forever.

use backstage_proxy_testkit as support;

use std::collections::BTreeSet;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const TOKEN: &str = "static-token-pushes-0123";
const WORKERS: u32 = 2;
const PUSHES: usize = 12;

/// The listener `render` writes for this filter configuration, as an LDS
/// resource on a fixed port.
fn listener(upstream: u16, port: u16, round: usize) -> Value {
    let config = json!({
        "proxy": {"endpoints": {
            "/svc": {"target": format!("http://127.0.0.1:{upstream}"), "headers": {"X-Round": round.to_string()}}
        }},
        "backend": {"auth": {"externalAccess": [{"type": "static", "options": {"token": TOKEN, "subject": "ci"}}]}}
    });
    let opts = EnvoyOptions::new(config.to_string()).cluster(cluster_for_port(upstream), upstream);
    let rendered: Value = serde_json::from_str(&render_config(&opts, &wasm_path())).unwrap();
    let mut l = rendered["static_resources"]["listeners"][0].clone();
    l["address"]["socket_address"]["port_value"] = json!(port);
    l["@type"] = json!("type.googleapis.com/envoy.config.listener.v3.Listener");
    l
}

fn push(dir: &Path, listener: &Value) {
    let tmp = dir.join("lds.tmp");
    std::fs::write(&tmp, json!({ "resources": [listener] }).to_string()).unwrap();
    // Envoy watches the directory for a file moved into place.
    std::fs::rename(&tmp, dir.join("lds.yaml")).unwrap();
}

fn gauge_names(envoy: &Envoy) -> BTreeSet<String> {
    envoy
        .stats()
        .into_keys()
        .filter(|k| k.contains("backstage_proxy.vm_memory_bytes."))
        .collect()
}

#[test]
fn twelve_pushes_serve_every_request_and_define_no_new_names() {
    let up = Upstream::start(&[]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = TempDir::new("pushes");
    let rendered: Value = serde_json::from_str(&render_config(
        &EnvoyOptions::new("{}").cluster(cluster_for_port(up.port), up.port),
        &wasm_path(),
    ))
    .unwrap();
    push(&dir.0, &listener(up.port, port, 0));
    let bootstrap = json!({
        "node": {"id": "pushes", "cluster": "pushes"},
        "admin": rendered["admin"],
        "dynamic_resources": {"lds_config": {"resource_api_version": "V3", "path_config_source": {
            "path": dir.0.join("lds.yaml"),
            "watched_directory": {"path": dir.0}
        }}},
        "static_resources": {"clusters": rendered["static_resources"]["clusters"]}
    });
    let cfg = dir.0.join("bootstrap.json");
    std::fs::write(&cfg, bootstrap.to_string()).unwrap();
    let envoy = Envoy::run_file(
        &cfg,
        WORKERS,
        TempDir::new("pushes-envoy"),
        &["--drain-time-s", "1"],
        &[],
    )
    .unwrap_or_else(|(log, code)| panic!("envoy exited {code:?}:\n{log}"));
    let bearer = format!("Bearer {TOKEN}");
    let call = |round: usize| {
        let mark = unique();
        let r = http(
            port,
            &format!("GET /api/proxy/svc/x?{mark} HTTP/1.1\r\nhost: gw\r\nauthorization: {bearer}\r\nconnection: close\r\n\r\n"),
        )
        .unwrap();
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        up.find(&mark)
            .unwrap()
            .header("x-round")
            .map(str::to_string)
    };
    call(0);
    let mut halfway = BTreeSet::new();
    for round in 1..=PUSHES {
        push(&dir.0, &listener(up.port, port, round));
        // Requests keep being served while the new configuration arrives,
        // and then carry it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while call(round).as_deref() != Some(round.to_string().as_str()) {
            assert!(Instant::now() < deadline, "push {round} never took effect");
            thread::sleep(Duration::from_millis(50));
        }
        // The previous configuration's instances drain (--drain-time-s 1)
        // and release their slots.
        thread::sleep(Duration::from_millis(1500));
        if round == PUSHES / 2 {
            halfway = gauge_names(&envoy);
        }
    }
    let names = gauge_names(&envoy);
    eprintln!("after {PUSHES} pushes on {WORKERS} workers: {names:?}");
    // Envoy runs an instance per worker and one on its main thread; while
    // a push drains, old and new instances are alive together.
    let bound = 2 * (WORKERS as usize + 1);
    assert!(
        names.len() <= bound,
        "{} gauge names after {PUSHES} pushes (bound {bound}): {names:?}",
        names.len()
    );
    assert_eq!(
        names,
        halfway,
        "names defined after push {} (none may be)",
        PUSHES / 2
    );
}
