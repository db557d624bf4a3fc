//! backstage-proxy-wasm: from the app-config.yaml you already have to a
//! gateway that enforces it.
fn main() {
    std::process::exit(cli::run(std::env::args().skip(1).collect()));
}

mod cli {
    use std::io::{Read, Write};

    use backstage_proxy_wasm_cli::appconfig::{self, Loaded, Source};
    use backstage_proxy_wasm_cli::{oci, render};

    const USAGE: &str = "\
backstage-proxy-wasm: Backstage's proxy rules enforced at the Envoy edge

Usage:
  backstage-proxy-wasm check  [FILE...]
  backstage-proxy-wasm render [--output FILE] [--listen ADDR:PORT] [--admin-port PORT]
                              [--wasm PATH] [--ca-file PATH] FILE...
  backstage-proxy-wasm istio  --url oci://REGISTRY/REPO:TAG [--sha256 DIGEST]
                              [--namespace NS] [--selector KEY=VALUE] [--output FILE] FILE...
  backstage-proxy-wasm oci    [--wasm PATH] [--tag TAG] [--output DIR]

Commands:
  check    Validate app-config files (merged in order, as Backstage merges them)
           with the filter's own validation; print every error with its file
           and JSON path. Exits 1 on any error.
  render   Write a complete envoy.yaml: listener, the filter and its JSON
           configuration, routes, one cluster per destination, CORS from
           backend.cors.
  istio    Write a WasmPlugin (phase AUTHN, FAIL_CLOSE) and the ServiceEntry
           and DestinationRule resources for the targets.
  oci      Build the compat OCI image layout (one tar+gzip layer holding
           plugin.wasm) and print its manifest digest.

Options:
  -o, --output FILE   write to FILE instead of standard output (a directory for oci)
  --listen ADDR:PORT  listener address (default 0.0.0.0:10000)
  --admin-port PORT   Envoy admin port on 127.0.0.1 (default 9901)
  --wasm PATH         the .wasm, as Envoy sees it (render; default build/plugin.wasm)
                      or as this tool reads it (oci; default build/plugin.wasm)
  --ca-file PATH      CA bundle for https upstreams (default /etc/ssl/certs/ca-certificates.crt)
  --tag TAG           image tag (oci; default latest)
  -h, --help          this help
  -V, --version       the version

FILE may be - for standard input. ${VAR} and {$env: VAR} are resolved from
this tool's environment, except in endpoint headers, where they are left for
Envoy's Wasm VM (listed in vm_config.environment_variables.host_env_keys).
$file and $include are not supported.
";

    struct Args {
        command: String,
        files: Vec<String>,
        opts: Vec<(String, String)>,
    }

    fn parse(args: Vec<String>) -> Result<Args, String> {
        let mut it = args.into_iter();
        let command = it.next().ok_or("no command given")?;
        let mut files = Vec::new();
        let mut opts = Vec::new();
        while let Some(a) = it.next() {
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) if a.starts_with("--") => (n.to_string(), Some(v.to_string())),
                _ => (a.clone(), None),
            };
            let key = match name.as_str() {
                "-o" | "--output" => "output",
                "--listen" => "listen",
                "--admin-port" => "admin-port",
                "--wasm" => "wasm",
                "--ca-file" => "ca-file",
                "--url" => "url",
                "--sha256" => "sha256",
                "--namespace" => "namespace",
                "--selector" => "selector",
                "--tag" => "tag",
                "-" => {
                    files.push(a);
                    continue;
                }
                s if s.starts_with('-') => return Err(format!("unknown option {s}")),
                _ => {
                    files.push(a);
                    continue;
                }
            };
            let value = match inline {
                Some(v) => v,
                None => it.next().ok_or(format!("{name} needs a value"))?,
            };
            opts.push((key.to_string(), value));
        }
        Ok(Args {
            command,
            files,
            opts,
        })
    }

    impl Args {
        fn get(&self, key: &str) -> Option<&str> {
            self.opts
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }
        fn all(&self, key: &str) -> Vec<&str> {
            self.opts
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect()
        }
    }

    fn read_sources(files: &[String]) -> Result<Vec<Source>, String> {
        if files.is_empty() {
            return Err("no app-config file given".to_string());
        }
        files
            .iter()
            .map(|f| {
                let text = if f == "-" {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .map_err(|e| format!("-: {e}"))?;
                    s
                } else {
                    std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?
                };
                appconfig::load_yaml(if f == "-" { "<stdin>" } else { f }, &text)
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    fn load(files: &[String]) -> Result<Loaded, i32> {
        let sources = read_sources(files).map_err(|e| {
            eprintln!("error: {e}");
            1
        })?;
        let env = |name: &str| std::env::var(name).ok();
        let loaded = appconfig::load(&sources, &env);
        for w in &loaded.warnings {
            eprintln!("warning: {w}");
        }
        if !loaded.errors.is_empty() {
            for e in &loaded.errors {
                eprintln!("error: {e}");
            }
            eprintln!("{} error(s)", loaded.errors.len());
            return Err(1);
        }
        Ok(loaded)
    }

    fn write_out(output: Option<&str>, text: &str) -> i32 {
        match output {
            None | Some("-") => {
                let _ = std::io::stdout().write_all(text.as_bytes());
                0
            }
            Some(path) => match std::fs::write(path, text) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {path}: {e}");
                    1
                }
            },
        }
    }

    pub fn run(args: Vec<String>) -> i32 {
        if args.is_empty()
            || args
                .iter()
                .any(|a| a == "-h" || a == "--help" || a == "help")
        {
            print!("{USAGE}");
            return if args.is_empty() { 2 } else { 0 };
        }
        if args.iter().any(|a| a == "-V" || a == "--version") {
            println!("backstage-proxy-wasm {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        let args = match parse(args) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: {e}\n\n{USAGE}");
                return 2;
            }
        };
        match args.command.as_str() {
            "check" => match load(&args.files) {
                Ok(l) => {
                    let n = l.plan.as_ref().map(|p| p.endpoints.len()).unwrap_or(0);
                    println!("OK: {n} endpoint(s)");
                    0
                }
                Err(code) => code,
            },
            "render" => {
                let loaded = match load(&args.files) {
                    Ok(l) => l,
                    Err(code) => return code,
                };
                let mut opts = render::Options::default();
                if let Some(l) = args.get("listen") {
                    let Some((addr, port)) = l
                        .rsplit_once(':')
                        .and_then(|(a, p)| p.parse().ok().map(|p| (a, p)))
                    else {
                        eprintln!("error: --listen takes ADDR:PORT");
                        return 2;
                    };
                    opts.listen_address = addr
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_string();
                    opts.listen_port = port;
                }
                if let Some(p) = args.get("admin-port") {
                    match p.parse() {
                        Ok(p) => opts.admin_port = p,
                        Err(_) => {
                            eprintln!("error: --admin-port takes a port number");
                            return 2;
                        }
                    }
                }
                if let Some(w) = args.get("wasm") {
                    opts.wasm_path = w.to_string();
                }
                if let Some(c) = args.get("ca-file") {
                    opts.ca_file = c.to_string();
                }
                match render::envoy(&loaded, &opts)
                    .and_then(|v| serde_yaml::to_string(&v).map_err(|e| e.to_string()))
                {
                    Ok(yaml) => write_out(
                        args.get("output"),
                        &format!("# Generated by backstage-proxy-wasm render\n{yaml}"),
                    ),
                    Err(e) => {
                        eprintln!("error: {e}");
                        1
                    }
                }
            }
            "istio" => {
                let Some(url) = args.get("url") else {
                    eprintln!("error: istio needs --url oci://REGISTRY/REPO:TAG");
                    return 2;
                };
                let loaded = match load(&args.files) {
                    Ok(l) => l,
                    Err(code) => return code,
                };
                let mut selector = Vec::new();
                for s in args.all("selector") {
                    match s.split_once('=') {
                        Some((k, v)) => selector.push((k.to_string(), v.to_string())),
                        None => {
                            eprintln!("error: --selector takes KEY=VALUE");
                            return 2;
                        }
                    }
                }
                if selector.is_empty() {
                    selector.push(("istio".to_string(), "ingressgateway".to_string()));
                }
                if loaded.plan.as_ref().is_some_and(|p| {
                    p.endpoints
                        .iter()
                        .any(|e| e.path_rewrite.as_ref().is_some_and(|r| r.len() > 1))
                }) {
                    eprintln!("warning: Istio passes pluginConfig as a protobuf Struct, whose key order is not kept: an endpoint with several pathRewrite rules may see them reordered");
                }
                let opts = render::IstioOptions {
                    url: url.to_string(),
                    sha256: args.get("sha256").map(str::to_string),
                    namespace: args.get("namespace").unwrap_or("istio-system").to_string(),
                    selector,
                };
                match render::istio(&loaded, &opts) {
                    Ok(docs) => {
                        let mut out = String::from("# Generated by backstage-proxy-wasm istio\n");
                        for d in docs {
                            match serde_yaml::to_string(&d) {
                                Ok(y) => {
                                    out.push_str("---\n");
                                    out.push_str(&y);
                                }
                                Err(e) => {
                                    eprintln!("error: {e}");
                                    return 1;
                                }
                            }
                        }
                        write_out(args.get("output"), &out)
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        1
                    }
                }
            }
            "oci" => {
                let wasm_path = args.get("wasm").unwrap_or("build/plugin.wasm");
                let out = args.get("output").unwrap_or("build/oci");
                let tag = args.get("tag").unwrap_or("latest");
                let wasm = match std::fs::read(wasm_path) {
                    Ok(w) => w,
                    Err(e) => {
                        eprintln!("error: {wasm_path}: {e}");
                        return 1;
                    }
                };
                match oci::build(&wasm, std::path::Path::new(out), tag) {
                    Ok(img) => {
                        println!("{}", img.manifest_digest);
                        0
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        1
                    }
                }
            }
            other => {
                eprintln!("error: unknown command '{other}'\n\n{USAGE}");
                2
            }
        }
    }
}
