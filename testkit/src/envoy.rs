//! Envoy

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::*;

/// The cluster the filter routes a loopback upstream on `port` to when the
/// configuration names none: the core's rule (`Url::cluster_name`), so the
/// tests never spell it themselves.
pub fn cluster_for_port(port: u16) -> String {
    backstage_proxy_core::url::Url::parse(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .cluster_name()
}

pub struct EnvoyOptions {
    /// The filter's JSON configuration.
    pub filter_config: String,
    /// Clusters: name → loopback port.
    pub clusters: Vec<(String, u16)>,
    /// `vm_config.environment_variables.key_values`.
    pub vm_env: Vec<(String, String)>,
    /// HCM path normalisation (normalize_path + merge_slashes).
    pub normalize: bool,
    pub concurrency: u32,
    /// Another build of the filter (the panic feature's); default the release.
    pub wasm: Option<PathBuf>,
    /// The Wasm filter's `failure_policy` (the shipped one: FAIL_CLOSED).
    pub failure_policy: &'static str,
    /// Envoy's access log file; by default one in `BPW_LOG_DIR` (so the
    /// log scan reads it too), else none.
    pub access_log: Option<PathBuf>,
    /// The native dynamic module (`make native`) in place of the Wasm
    /// filter: the same configuration, `vm_env` as Envoy's own environment.
    pub native: Option<PathBuf>,
}

impl EnvoyOptions {
    pub fn new(filter_config: impl Into<String>) -> EnvoyOptions {
        EnvoyOptions {
            filter_config: filter_config.into(),
            clusters: Vec::new(),
            vm_env: Vec::new(),
            normalize: false,
            concurrency: 1,
            wasm: None,
            failure_policy: "FAIL_CLOSED",
            access_log: None,
            native: None,
        }
    }
    /// Runs the native module at `so` instead of the Wasm filter.
    pub fn native(mut self, so: impl Into<PathBuf>) -> Self {
        self.native = Some(so.into());
        self
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
/// VM's environment values, path normalisation, the failure policy, and only the clusters the test names (each on loopback).
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
        native: opts.native.as_ref().map(|so| so.display().to_string()),
        access_log: Some(
            opts.access_log
                .clone()
                .or_else(|| log_dir().map(|d| d.join(format!("access-{}.log", unique()))))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "/dev/null".to_string()),
        ),
        ..render::Options::default()
    };
    let mut v = render::gateway(&plan, &opts.filter_config, &[], &render_opts).unwrap();

    let hcm = &mut v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    hcm["normalize_path"] = json!(opts.normalize);
    hcm["merge_slashes"] = json!(opts.normalize);
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
        // The artifact switch: the gateway of a test that asks for no
        // particular build runs the native module under
        // `BACKSTAGE_PROXY_ARTIFACT=native`.
        let switched;
        let opts = if opts.native.is_none() && opts.wasm.is_none() && artifact() == Artifact::Native
        {
            switched = EnvoyOptions {
                native: Some(native_path()),
                vm_env: opts.vm_env.clone(),
                clusters: opts.clusters.clone(),
                filter_config: opts.filter_config.clone(),
                access_log: opts.access_log.clone(),
                wasm: None,
                ..*opts
            };
            &switched
        } else {
            opts
        };
        // The native module reads Envoy's own environment; it needs no .wasm.
        let wasm = match &opts.native {
            Some(_) => PathBuf::new(),
            None => opts.wasm.clone().unwrap_or_else(wasm_path),
        };
        std::fs::write(&cfg_path, render_config(opts, &wasm)).unwrap();
        let env: Vec<(&str, &str)> = match &opts.native {
            Some(_) => opts
                .vm_env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            None => Vec::new(),
        };
        Envoy::run_file(&cfg_path, opts.concurrency, dir, &[], &env)
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
                "wasm:debug,dynamic_modules:debug",
                // Access logs reach their file within 0.2 s, not 10.
                "--file-flush-interval-msec",
                "200",
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

/// `envoy --mode validate` on a configuration file, run in `dir` (relative
/// paths in it, such as the `.wasm`, resolve there) with `env`; the
/// filter's `on_configure` runs. Panics with Envoy's output when refused.
pub fn envoy_validate(config: &Path, dir: &Path, env: &[(&str, &str)]) {
    let out = Command::new(envoy_bin())
        .current_dir(dir)
        .args(["--mode", "validate", "--disable-hot-restart", "-c"])
        .arg(config)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "envoy refused {}:\n{}",
        config.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
