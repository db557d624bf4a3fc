//! Envoy's own remote source for the native module
//! (docs/native.md#envoys-remote-source): `dynamic_module_config.module.remote`
//! with an `http_uri` and the module's `sha256`, the source Envoy
//! Gateway's `Remote` module becomes. Envoy 1.39.3 fetches the module over
//! HTTP (here from a server on loopback), checks its SHA-256 and loads it;
//! with a wrong SHA-256 it still starts, without the filter: the route is
//! served as if there were none. These tests hold Envoy to both, so the
//! warning in the docs stays true. Needs `make native` and `make envoy`.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use backstage_proxy_core::config::DEFAULT_CLUSTER_HEADER;
use backstage_proxy_testkit::{cluster_for_port, native_path, unique, Envoy, TempDir, Upstream};
use backstage_proxy_wasm_cli::oci;
use common::native::{assert_backstage_401, gateway, loopback_cluster};
use serde_json::json;

/// Serves `body` at `/libbackstage_proxy.so` on loopback, counting GETs.
struct ModuleServer {
    port: u16,
    gets: Arc<AtomicUsize>,
}

fn serve(body: Vec<u8>) -> ModuleServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let gets = Arc::new(AtomicUsize::new(0));
    let counted = gets.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let found = head.starts_with(b"GET /libbackstage_proxy.so ");
            if found {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            let (status, data): (&str, &[u8]) = if found {
                ("200 OK", &body)
            } else {
                ("404 Not Found", b"")
            };
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    data.len()
                )
                .as_bytes(),
            );
            let _ = s.write_all(data);
        }
    });
    ModuleServer { port, gets }
}

/// Envoy with the module fetched from `server` with `sha256`, its fetch
/// cache (`$TMPDIR`) in `cache`; `nack` sets `nack_on_cache_miss`.
fn start(
    server: &ModuleServer,
    up: &Upstream,
    sha256: &str,
    cache: &Path,
    nack: bool,
) -> Result<Envoy, String> {
    let mut source = json!({ "module": { "remote": {
        "http_uri": {
            "uri": format!("http://127.0.0.1:{}/libbackstage_proxy.so", server.port),
            "cluster": "modules",
            "timeout": "5s"
        },
        "sha256": sha256
    } } });
    if nack {
        source["nack_on_cache_miss"] = json!(true);
    }
    let dir = TempDir::new("native-remote");
    let cfg = dir.0.join("envoy.yaml");
    let text = gateway(up.port, source, &[loopback_cluster("modules", server.port)]);
    std::fs::write(&cfg, text).unwrap();
    let tmp = cache.display().to_string();
    Envoy::run_file(&cfg, 1, dir, &[], &[("TMPDIR", &tmp)]).map_err(|(log, _)| log)
}

#[test]
fn envoy_fetches_the_module_by_url_checks_its_sha256_and_runs_it() {
    let so = std::fs::read(native_path()).unwrap();
    let sha256 = oci::sha256_hex(&so);
    let server = serve(so.clone());
    let up = Upstream::start(&[]);
    let cache = TempDir::new("native-remote-cache");
    let envoy = start(&server, &up, &sha256, &cache.0, false).unwrap_or_else(|log| panic!("{log}"));
    assert_eq!(server.gets.load(Ordering::SeqCst), 1, "fetched once");
    let m = unique();
    let url = format!("/api/proxy/svc/a?{m}");
    assert_backstage_401(&envoy.get(&url, &[]), &url);
    up.assert_never(&m);
    // Envoy keeps what it fetched under $TMPDIR, named by the SHA-256, and
    // loads that file instead of fetching while it is there.
    let cached = cache.0.join(format!("envoy_dynamic_module_{sha256}.so"));
    assert!(std::fs::read(&cached).unwrap() == so);
    drop(envoy);
    let again = start(&server, &up, &sha256, &cache.0, false).unwrap_or_else(|log| panic!("{log}"));
    assert_eq!(
        server.gets.load(Ordering::SeqCst),
        1,
        "the second start used the cache"
    );
    assert_backstage_401(&again.get(&url, &[]), &url);
}

/// Envoy 1.39.3 fails open here: a module whose SHA-256 does not match is
/// not loaded, Envoy starts all the same, counts the failure, and the
/// routes serve without the filter: a request without credentials that
/// names its destination reaches the upstream. Its one fail-closed switch, `nack_on_cache_miss`, refuses
/// a static configuration whenever the module is not cached yet, the right
/// SHA-256 or not, so a freshly started Envoy never starts.
#[test]
fn a_wrong_sha256_leaves_the_route_without_the_filter_and_nack_refuses_a_cold_start() {
    let so = std::fs::read(native_path()).unwrap();
    let sha256 = oci::sha256_hex(&so);
    let wrong = oci::sha256_hex(b"another module");
    let server = serve(so);
    let up = Upstream::start(&[]);
    let cache = TempDir::new("native-remote-cache");

    let envoy = start(&server, &up, &wrong, &cache.0, false).unwrap_or_else(|log| panic!("{log}"));
    assert!(server.gets.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        envoy.counter("dynamic_modules.remote_fetch_error.config_name.backstage_proxy"),
        1
    );
    // Not Backstage's 401: no filter decides. The routes take the
    // destination the filter would have set from the request itself, so a
    // client that names it reaches the upstream without credentials.
    let m = unique();
    let url = format!("/api/proxy/svc/a?{m}");
    assert_ne!(envoy.get(&url, &[]).status, 401);
    let cluster = cluster_for_port(up.port);
    let r = envoy.get(&url, &[(DEFAULT_CLUSTER_HEADER, cluster.as_str())]);
    assert_eq!(r.status, 200, "fails open: {}", r.text());
    assert!(
        up.find(&m).is_some(),
        "the request went upstream without credentials"
    );
    assert!(
        std::fs::read_dir(&cache.0).unwrap().next().is_none(),
        "nothing cached"
    );
    drop(envoy);

    for sha in [&sha256, &wrong] {
        let cold = TempDir::new("native-remote-cold");
        let log = start(&server, &up, sha, &cold.0, true)
            .err()
            .expect("nack_on_cache_miss refuses a module not cached yet");
        assert!(log.contains("Remote module not cached"), "{log}");
    }
}
