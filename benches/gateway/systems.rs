//! The systems under test: bare Envoy and its native filters, the filter
//! with its policies, and Backstage's own proxy under Node.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backstage_proxy_testkit::*;
use serde_json::{json, Value};

use crate::{PATH, STATIC};

pub fn start_yaml(yaml: &str, tag: &str) -> Envoy {
    let dir = TempDir::new(tag);
    let path = dir.0.join("envoy.yaml");
    std::fs::write(&path, yaml).unwrap();
    Envoy::run_file(&path, 1, dir, &[], &[]).unwrap_or_else(|(log, _)| panic!("{log}"))
}

/// The no-op proxy-wasm filter (bench/noop-filter, built by `make bench`).
pub fn noop_wasm() -> Option<std::path::PathBuf> {
    let p = repo_root().join("bench/noop-filter/target/wasm32-wasip1/release/noop_filter.wasm");
    p.is_file().then_some(p)
}

pub enum Native<'a> {
    Bare,
    Noop(&'a Path),
    JwtAuthn(&'a Value, bool),
}

pub fn native(upstream: u16, kind: Native<'_>) -> Envoy {
    let template =
        std::fs::read_to_string(repo_root().join("bench/envoy-native.yaml.tmpl")).unwrap();
    let jwt = match kind {
        Native::JwtAuthn(jwks, cache) => Some((jwks, cache)),
        _ => None,
    };
    let filter = match (jwt, &kind) {
        (None, Native::Noop(wasm)) => {
            let cfg = json!({
                "name": "envoy.filters.http.wasm",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                    "config": {
                        "name": "noop",
                        "failure_policy": "FAIL_CLOSED",
                        "vm_config": {
                            "vm_id": "noop",
                            "runtime": "envoy.wasm.runtime.v8",
                            "code": { "local": { "filename": wasm.display().to_string() } }
                        }
                    }
                }
            });
            format!("\n          - {}", serde_json::to_string(&cfg).unwrap())
        }
        (None, _) => String::new(),
        (Some((jwks, cache)), _) => {
            let mut provider = json!({
                "local_jwks": { "inline_string": jwks.to_string() },
                "forward": false,
            });
            if cache {
                provider["jwt_cache_config"] = json!({ "jwt_cache_size": 100 });
            }
            let cfg = json!({
                "name": "envoy.filters.http.jwt_authn",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                    "providers": { "backstage": provider },
                    "rules": [{ "match": { "prefix": "/api/proxy" }, "requires": { "provider_name": "backstage" } }]
                }
            });
            format!("\n          - {}", serde_json::to_string(&cfg).unwrap())
        }
    };
    let yaml = template
        .replace("{{UPSTREAM_PORT}}", &upstream.to_string())
        .replace("{{JWT_AUTHN}}", &filter);
    start_yaml(&yaml, "native")
}

/// `policies`: more of the `gateway` section (`gateway.access`,
/// `gateway.rateLimits`), after a comma.
pub const POLICY: &str = r#","access":{"/svc":{"allow":["subject:bench","group:default/sre"]}}"#;
pub const RATE_LIMIT: &str = r#","rateLimits":{"/svc":{"perPrincipal":{"requests":1000000000,"seconds":60},"total":{"requests":1000000000,"seconds":60}}}"#;

pub fn filter(
    upstream: u16,
    keys: &KeyServer,
    cache: usize,
    wasm: Option<&Path>,
    policies: &str,
) -> Envoy {
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":"http://127.0.0.1:{upstream}"}}}},
            "backend":{{"baseUrl":"http://127.0.0.1:{}","auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{STATIC}","subject":"bench"}}}}]}}}},
            "gateway":{{"tokenCacheSize":{cache}{policies}}}}}"#,
        keys.port
    );
    let mut opts = EnvoyOptions::new(config)
        .cluster(cluster_for_port(upstream), upstream)
        .cluster(cluster_for_port(keys.port), keys.port);
    opts.wasm = wasm.map(Path::to_path_buf);
    Envoy::start(opts)
}

/// The native dynamic module (`make native`) with the same configuration
/// as [`filter`].
pub fn native_module(upstream: u16, keys: &KeyServer, cache: usize) -> Envoy {
    let config = format!(
        r#"{{"proxy":{{"endpoints":{{"/svc":"http://127.0.0.1:{upstream}"}}}},
            "backend":{{"baseUrl":"http://127.0.0.1:{}","auth":{{"externalAccess":[{{"type":"static","options":{{"token":"{STATIC}","subject":"bench"}}}}]}}}},
            "gateway":{{"tokenCacheSize":{cache}}}}}"#,
        keys.port
    );
    let opts = EnvoyOptions::new(config)
        .cluster(cluster_for_port(upstream), upstream)
        .cluster(cluster_for_port(keys.port), keys.port)
        .native(native_path());
    Envoy::start(opts)
}

pub struct Node {
    pub child: Child,
    pub port: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn backstage(upstream: u16) -> Option<Node> {
    let dir = repo_root().join("bench/backstage");
    if !dir
        .join("node_modules/@backstage/plugin-proxy-backend")
        .is_dir()
    {
        eprintln!("  Backstage's proxy not installed (make bench installs it with npm): skipped");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = std::env::temp_dir().join(format!("bpw-bench-backstage-{}.yaml", std::process::id()));
    std::fs::write(
        &cfg,
        format!(
            "backend:\n  baseUrl: http://127.0.0.1:{port}\n  listen: {{ host: 127.0.0.1, port: {port} }}\n  database: {{ client: better-sqlite3, connection: ':memory:' }}\n  auth:\n    externalAccess:\n      - type: static\n        options: {{ token: {STATIC}, subject: bench }}\nproxy:\n  endpoints:\n    /svc: {{ target: 'http://127.0.0.1:{upstream}', credentials: require }}\n"
        ),
    )
    .unwrap();
    let child = Command::new("node")
        .current_dir(&dir)
        .args(["index.js", "--config"])
        .arg(&cfg)
        // warn: Backstage's per-request access log off, to its advantage
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let node = Node { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = http(port, &format!("GET {PATH} HTTP/1.1\r\nhost: b\r\nauthorization: Bearer {STATIC}\r\nconnection: close\r\n\r\n")).map(|r| r.status == 200).unwrap_or(false);
        if ok {
            return Some(node);
        }
        if Instant::now() > deadline {
            eprintln!("  Backstage did not come up: skipped");
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
