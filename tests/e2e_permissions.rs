//! Permissions at the edge against the real thing (`docs/permissions.md`):
//! a real Backstage (`tests/backstage/policy-backend.js`: the demo's
//! backend with the permission backend deciding by a real policy the test
//! rewrites while it runs), real users signed in, a plugin token Backstage
//! itself minted for a user, static tokens with and without access
//! restrictions, and the filter in Envoy, configured from the docs' worked
//! example. Also: one call for concurrent requests, the cache and its
//! stated time, nothing kept across a configuration push, and fail closed
//! when the permission backend is slow or gone.

use backstage_proxy_testkit as support;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use backstage_proxy_wasm_cli::appconfig::{load, load_yaml};
use serde_json::{json, Value};
use support::backstage::Backstage;
use support::*;

/// The worked example's static token (restricted to the endpoint's
/// permission) and the injected header's secret.
const CI: &str = "permissions-ci-pipeline-token-01";
const PAGERDUTY: &str = "pagerduty-secret-0123";

/// The docs' worked example, as the docs show it.
fn worked_example() -> String {
    let doc = std::fs::read_to_string(repo_root().join("docs/permissions.md")).unwrap();
    let section = doc
        .split("## Worked example")
        .nth(1)
        .expect("docs/permissions.md has a worked example");
    section
        .split("```yaml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap()
        .to_string()
}

/// The worked example with its hosts on loopback.
fn example_here(backstage: u16, upstream: u16) -> String {
    let example = worked_example();
    for host in [
        "http://backstage.backstage.svc.cluster.local:7007",
        "https://api.pagerduty.com",
    ] {
        assert!(example.contains(host), "the worked example names {host}");
    }
    example
        .replace(
            "http://backstage.backstage.svc.cluster.local:7007",
            &format!("http://127.0.0.1:{backstage}"),
        )
        .replace(
            "https://api.pagerduty.com",
            &format!("http://127.0.0.1:{upstream}/pagerduty"),
        )
}

/// What the test adds: the test plugin's key set, and short times.
fn overlay(cache_seconds: u64) -> String {
    format!(
        "gateway:\n  plugins: [probe]\n  permissionCacheSeconds: {cache_seconds}\n  permissionTimeoutMs: 1000\n"
    )
}

/// The filter's JSON for the worked example, as the tool reads it.
fn filter_config(backstage: u16, upstream: u16, cache_seconds: u64) -> String {
    let env = |name: &str| match name {
        "CI_PROXY_TOKEN" => Some(CI.to_string()),
        "PAGERDUTY_TOKEN" => Some(PAGERDUTY.to_string()),
        _ => None,
    };
    let loaded = load(
        &[
            load_yaml("permissions.md", &example_here(backstage, upstream)).unwrap(),
            load_yaml("test.yaml", &overlay(cache_seconds)).unwrap(),
        ],
        &env,
    );
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    loaded.filter_config.to_string()
}

fn write_policy(file: &Path, rules: Value) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, json!({ "allow": rules }).to_string()).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// A user's token, once the catalog lists `group` among their refs.
fn sign_in(backstage: &Backstage, who: &str, group: &str) -> String {
    let (path, forwarded) = match who {
        "ada" => ("/api/auth/guest/refresh", None),
        _ => ("/api/auth/oauth2Proxy/refresh", Some(who)),
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut headers = vec![("x-requested-with", "XMLHttpRequest")];
        if let Some(w) = forwarded {
            headers.push(("x-forwarded-user", w));
        }
        let (status, body) = backstage.fetch("GET", path, &headers);
        if status == 200 {
            let v: Value = serde_json::from_str(&body).unwrap();
            let id = &v["backstageIdentity"];
            let refs = id["identity"]["ownershipEntityRefs"].to_string();
            if refs.contains(group) {
                return id["token"].as_str().unwrap().to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{who} never signed in with {group}: {status} {body}\n{}",
            backstage.log()
        );
        thread::sleep(Duration::from_millis(500));
    }
}

/// How many times Backstage's policy decided.
fn decisions(backstage: &Backstage) -> u64 {
    let (status, body) = backstage.fetch("GET", "/api/probe/decisions", &[]);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["decisions"]
        .as_u64()
        .unwrap()
}

struct Gateway {
    port: u16,
    dir: TempDir,
    envoy: Envoy,
    access_log: std::path::PathBuf,
}

impl Gateway {
    /// Envoy with one worker, its listener from a file it watches (LDS), so
    /// the test can push a new configuration as a control plane does.
    fn start(filter: String, backstage: u16, upstream: u16) -> Gateway {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = TempDir::new("permissions-lds");
        let access_log = dir.0.join("access.log");
        let rendered = Gateway::rendered(filter, backstage, upstream, &access_log);
        Gateway::push_rendered(&dir.0, &rendered, port);
        let bootstrap = json!({
            "node": {"id": "permissions", "cluster": "permissions"},
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
            1,
            TempDir::new("permissions-envoy"),
            &["--drain-time-s", "1"],
            // the native module reads the header's secret from Envoy's own
            // environment (the Wasm VM has it in its configuration)
            &[("PAGERDUTY_TOKEN", PAGERDUTY)],
        )
        .unwrap_or_else(|(log, code)| panic!("envoy exited {code:?}:\n{log}"));
        Gateway {
            port,
            dir,
            envoy,
            access_log,
        }
    }

    fn rendered(filter: String, backstage: u16, upstream: u16, log: &Path) -> Value {
        let mut opts = EnvoyOptions::new(filter)
            .cluster(cluster_for_port(upstream), upstream)
            .cluster(cluster_for_port(backstage), backstage)
            // The tool leaves a header's secret to the VM's environment.
            .env("PAGERDUTY_TOKEN", PAGERDUTY);
        opts.access_log = Some(log.to_path_buf());
        // This test renders its gateway itself: the artifact switch here.
        let wasm = match artifact() {
            Artifact::Wasm => wasm_path(),
            Artifact::Native => {
                opts.native = Some(native_path());
                std::path::PathBuf::new()
            }
        };
        serde_json::from_str(&render_config(&opts, &wasm)).unwrap()
    }

    fn push_rendered(dir: &Path, rendered: &Value, port: u16) {
        let mut l = rendered["static_resources"]["listeners"][0].clone();
        l["address"]["socket_address"]["port_value"] = json!(port);
        l["@type"] = json!("type.googleapis.com/envoy.config.listener.v3.Listener");
        let tmp = dir.join("lds.tmp");
        std::fs::write(&tmp, json!({ "resources": [l] }).to_string()).unwrap();
        std::fs::rename(&tmp, dir.join("lds.yaml")).unwrap();
    }

    /// Pushes a new filter configuration and waits until it serves
    /// (Envoy's listener-update counter moves).
    fn push(&self, filter: String, backstage: u16, upstream: u16) {
        let before = self.envoy.counter("listener_manager.lds.update_success");
        let rendered = Gateway::rendered(filter, backstage, upstream, &self.access_log);
        Gateway::push_rendered(&self.dir.0, &rendered, self.port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.envoy.counter("listener_manager.lds.update_success") == before {
            assert!(Instant::now() < deadline, "the push never took effect");
            thread::sleep(Duration::from_millis(50));
        }
        // The old listener drains; give the new one a moment to take over.
        thread::sleep(Duration::from_millis(1500));
    }

    /// Status, the reason the body names (its error name), and whether the
    /// upstream was reached.
    fn call(&self, up: &Upstream, method: &str, path: &str, token: &str) -> (u16, String, bool) {
        let mark = unique();
        let r = http(
            self.port,
            &format!("{method} /api/proxy{path}?{mark} HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {token}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
        )
        .unwrap();
        let name = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| v["error"]["name"].as_str().map(str::to_string))
            .unwrap_or_default();
        // The upstream answered before the gateway did: no need to wait
        // for a request that never came.
        let reached = up.all().iter().any(|s| s.target.contains(&mark));
        (r.status, name, reached)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.access_log).unwrap_or_default()
    }
}

#[test]
fn permissions_are_decided_by_backstage_for_users_and_locally_for_services() {
    let up = Upstream::start(&[]);
    let dir = TempDir::new("permissions");
    let policy = dir.0.join("policy.json");
    write_policy(
        &policy,
        json!([{ "principal": "group:default/sre", "permission": "proxy.endpoint.pagerduty" }]),
    );
    // Backstage reads the same app-config (its proxy plugin, the static
    // tokens, and gateway.access, whose permissions the module registers)
    // and the policy's file.
    assert!(
        repo_root().join("backstage/dist/index.js").is_file(),
        "the gateway-permissions module is not built: run `make module-test` (or `cd backstage && npm ci && npm run build`)"
    );
    let backstage_config = format!(
        "{}\npermission:\n  enabled: true\ntest:\n  policyFile: {}\n",
        example_here(0, up.port)
            .replace("  baseUrl: http://127.0.0.1:0\n", "")
            .replace("${CI_PROXY_TOKEN}", CI)
            .replace("${PAGERDUTY_TOKEN}", PAGERDUTY),
        policy.display()
    );
    let mut backstage = Some(Backstage::start_script(
        "../../tests/backstage/policy-backend.js",
        &backstage_config,
    ));
    let bs = backstage.as_ref().unwrap();
    let bport = bs.port;
    let ada = sign_in(bs, "ada", "group:default/sre");
    let grace = sign_in(bs, "grace", "group:default/developers");
    let (obo_status, obo_body) = bs.fetch(
        "GET",
        "/api/probe/obo",
        &[("authorization", &format!("Bearer {ada}"))],
    );
    assert_eq!(obo_status, 200, "{obo_body}");
    let obo = serde_json::from_str::<Value>(&obo_body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = bs.fetch("GET", "/api/probe/service-token", &[]);
    assert_eq!(status, 200, "{body}");
    let service = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    // The module registered the worked example's permissions: Backstage
    // lists them, with their actions, for policy authors and RBAC UIs.
    let (status, body) = bs.fetch(
        "GET",
        "/api/proxy/.well-known/backstage/permissions/metadata",
        &[("authorization", &format!("Bearer {ada}"))],
    );
    assert_eq!(status, 200, "{body}");
    let listed: Value = serde_json::from_str(&body).unwrap();
    let mut names: Vec<String> = listed["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}{}",
                p["name"].as_str().unwrap(),
                p["attributes"]["action"]
                    .as_str()
                    .map(|a| format!(":{a}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "proxy.endpoint.pagerduty",
            "proxy.endpoint.pagerduty.write:update"
        ]
    );

    let gw = Gateway::start(filter_config(bport, up.port, 2), bport, up.port);
    let ok = |r: (u16, String, bool)| {
        assert_eq!((r.0, r.2), (200, true), "{r:?}\n{}", gw.envoy.log());
    };
    let refused = |r: (u16, String, bool), status: u16, name: &str| {
        assert_eq!(
            (r.0, r.1.as_str(), r.2),
            (status, name, false),
            "{r:?}\n{}",
            gw.log()
        );
    };

    // A user the policy allows: asked once, then from the cache.
    let d0 = decisions(bs);
    ok(gw.call(&up, "GET", "/pagerduty/services", &ada));
    assert_eq!(decisions(bs), d0 + 1, "one question asked");
    ok(gw.call(&up, "GET", "/pagerduty/services", &ada));
    ok(gw.call(&up, "HEAD", "/pagerduty/services/x", &ada));
    assert_eq!(decisions(bs), d0 + 1, "the second request asks nothing");

    // A user it does not allow, and a rule's own permission.
    refused(
        gw.call(&up, "GET", "/pagerduty/services", &grace),
        403,
        "NotAllowedError",
    );
    refused(
        gw.call(&up, "POST", "/pagerduty/incidents", &ada),
        403,
        "NotAllowedError",
    );

    // The policy changes: a DENY is kept as long as an ALLOW, then asked again.
    write_policy(
        &policy,
        json!([
            { "principal": "group:default/sre", "permission": "proxy.endpoint.pagerduty" },
            { "principal": "user:default/ada", "permission": "proxy.endpoint.pagerduty.write", "action": "update" }
        ]),
    );
    let asked = decisions(bs);
    refused(
        gw.call(&up, "POST", "/pagerduty/incidents", &ada),
        403,
        "NotAllowedError",
    );
    assert_eq!(decisions(bs), asked, "the DENY came from the cache");
    thread::sleep(Duration::from_millis(2200));
    ok(gw.call(&up, "POST", "/pagerduty/incidents", &ada));
    assert_eq!(
        decisions(bs),
        asked + 1,
        "asked again after the stated time"
    );
    // The rule's permission only: grace is asked about the write, not the endpoint.
    refused(
        gw.call(&up, "PUT", "/pagerduty/incidents/7", &grace),
        403,
        "NotAllowedError",
    );

    // Concurrent requests with one question wait for one call.
    thread::sleep(Duration::from_millis(2200));
    let before = decisions(bs);
    let results: Vec<(u16, String, bool)> = thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| gw.call(&up, "GET", "/pagerduty/schedules", &ada)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in results {
        ok(r);
    }
    assert_eq!(decisions(bs), before + 1, "eight requests, one question");

    // Service principals are decided here, never asked: a plugin for
    // itself (no restrictions), the static token (the endpoint's
    // permission only).
    let before = decisions(bs);
    ok(gw.call(&up, "POST", "/pagerduty/incidents", &service));
    ok(gw.call(&up, "GET", "/pagerduty/services", CI));
    refused(
        gw.call(&up, "POST", "/pagerduty/incidents", CI),
        403,
        "NotAllowedError",
    );
    assert_eq!(
        decisions(bs),
        before,
        "no service principal was asked about"
    );

    // A plugin acting for ada: nobody can be asked for it, refused.
    refused(
        gw.call(&up, "GET", "/pagerduty/services", &obo),
        403,
        "NotAllowedError",
    );

    // A push: nothing kept across it. With a long stated time, ada's ALLOW
    // is cached; the policy withdraws it; the same configuration keeps
    // answering from the cache, a pushed one asks again.
    gw.push(filter_config(bport, up.port, 30), bport, up.port);
    ok(gw.call(&up, "GET", "/pagerduty/services", &ada));
    write_policy(&policy, json!([]));
    ok(gw.call(&up, "GET", "/pagerduty/services", &ada));
    gw.push(filter_config(bport, up.port, 29), bport, up.port);
    refused(
        gw.call(&up, "GET", "/pagerduty/services", &ada),
        403,
        "NotAllowedError",
    );

    // Fail closed. Backstage gone, a listener in its place that never
    // answers: refused once the timeout passes, with Backstage's body.
    backstage.take();
    let hang = TcpListener::bind(("127.0.0.1", bport)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let held = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut open = Vec::new();
            hang.set_nonblocking(true).unwrap();
            while !stop.load(Ordering::Relaxed) {
                if let Ok((s, _)) = hang.accept() {
                    open.push(s);
                }
                for s in &mut open {
                    let _ = s.set_nonblocking(true);
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                }
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    let r = gw.call(&up, "POST", "/pagerduty/incidents", &grace);
    let took = started.elapsed();
    refused(r, 503, "ServiceUnavailableError");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "refused after {took:?}"
    );
    stop.store(true, Ordering::Relaxed);
    held.join().unwrap();
    // Nothing listening at all: refused at once; nothing was kept.
    refused(
        gw.call(&up, "PUT", "/pagerduty/incidents", &grace),
        503,
        "ServiceUnavailableError",
    );
    refused(
        gw.call(&up, "GET", "/pagerduty/services", &grace),
        503,
        "ServiceUnavailableError",
    );

    // The access log names each permission and its answer, never a token
    // (Envoy writes it out within a second or so).
    let wants = [
        r#""permission":"proxy.endpoint.pagerduty=ALLOW""#,
        r#""permission":"proxy.endpoint.pagerduty=DENY""#,
        r#""permission":"proxy.endpoint.pagerduty.write:update=DENY""#,
        r#""permission":"proxy.endpoint.pagerduty.write:update=ALLOW""#,
        r#""permission":"proxy.endpoint.pagerduty=UNCHECKABLE""#,
        r#""permission":"proxy.endpoint.pagerduty.write:update=UNAVAILABLE""#,
        r#""decision":"permission_denied""#,
        r#""decision":"permission_on_behalf""#,
        r#""decision":"permission_unavailable""#,
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = gw.log();
    while !wants.iter().all(|w| log.contains(w)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(200));
        log = gw.log();
    }
    for want in wants {
        assert!(log.contains(want), "{want} not in the access log:\n{log}");
    }
    // The injected header reached the upstream; its value is never logged.
    assert!(up
        .all()
        .iter()
        .any(|s| s.header("authorization") == Some(&format!("Token token={PAGERDUTY}"))));
    for secret in [&ada, &grace, &obo] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!log.contains(signature), "a token in the access log");
    }
    assert!(!log.contains(CI) && !log.contains(PAGERDUTY));
    let signature = service.rsplit('.').next().unwrap();
    assert!(!log.contains(signature), "a token in the access log");
    // And the counters.
    assert!(
        gw.envoy
            .counter("wasmcustom.backstage_proxy.permission.asked")
            >= 5
    );
    assert!(
        gw.envoy
            .counter("wasmcustom.backstage_proxy.permission.failed")
            >= 2
    );
    assert!(
        gw.envoy
            .counter("wasmcustom.backstage_proxy.permission_cache.hit")
            >= 2
    );
}
