//! backstage-proxy-wasm: from the app-config.yaml you already have to a
//! gateway that enforces it.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use backstage_proxy_wasm_cli::appconfig::{self, ConfigFile, Loaded};
use backstage_proxy_wasm_cli::error::Error;
use backstage_proxy_wasm_cli::{kube, oci, render};
use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
FILE may be - for standard input. Files are read as Backstage's config loader
reads them, in the sections the gateway uses (proxy, backend.baseUrl,
backend.auth, backend.cors, gateway): later files win, nulls are absent,
${VAR}, {$env: VAR}, $file and $include are resolved (relative to the file
that holds them), an unset variable makes its value absent (an error where
the gateway needs it), and APP_CONFIG_<path> environment variables override.
In endpoint headers ${VAR} is left for Envoy's Wasm VM (listed in
vm_config.environment_variables.host_env_keys).";

/// Backstage's proxy rules enforced at the Envoy edge.
#[derive(Parser)]
#[command(name = "backstage-proxy-wasm", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate app-config files (merged in order, as Backstage merges them)
    /// with the filter's own validation; print every error with its file
    /// and JSON path. Exits 1 on any error.
    Check {
        #[arg(value_name = "FILE", required = true)]
        files: Vec<String>,
    },
    /// Write a complete envoy.yaml: listener, the filter and its JSON
    /// configuration (with backend.cors, which the filter answers),
    /// routes, one cluster per destination.
    Render(RenderArgs),
    /// Write everything an Istio ingress gateway needs: the WasmPlugin (or
    /// TrafficExtension; phase AUTHN, FAIL_CLOSE), the routing (a
    /// VirtualService on a classic gateway, HTTPRoutes with --gateway-api),
    /// a ServiceEntry per external host and a DestinationRule with TLS per
    /// port.
    Istio(IstioArgs),
    /// Write everything an Envoy Gateway needs: the EnvoyExtensionPolicy
    /// with the image, HTTPRoutes, a Backend per destination and a
    /// BackendTLSPolicy per verified TLS destination.
    EnvoyGateway(EnvoyGatewayArgs),
    /// Write envoyproxy/ratelimit's configuration for gateway.rateLimits
    /// under gateway.rateLimitService: the descriptors the gateway sends
    /// and the budget of each (one file in the service's config directory).
    RatelimitConfig(RatelimitConfigArgs),
    /// Build the compat OCI image layout (one tar+gzip layer holding
    /// plugin.wasm) and print its manifest digest.
    Oci(OciArgs),
}

#[derive(Args)]
struct RenderArgs {
    #[arg(value_name = "FILE", required = true)]
    files: Vec<String>,
    /// Where to write (default standard output).
    #[arg(short, long)]
    output: Option<String>,
    /// The listener's address and port.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:10000")]
    listen: String,
    /// Envoy's admin port (on 127.0.0.1).
    #[arg(long, value_name = "PORT", default_value_t = 9901)]
    admin_port: u16,
    /// The .wasm, as Envoy sees it.
    #[arg(long, value_name = "PATH", default_value = "build/plugin.wasm")]
    wasm: String,
    /// CA bundle for https upstreams.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/etc/ssl/certs/ca-certificates.crt"
    )]
    ca_file: String,
    /// Where Envoy writes the access log, one JSON line per request with
    /// the principal, the endpoint and the decision ("none": no log).
    #[arg(long, value_name = "PATH", default_value = "/dev/stdout")]
    access_log: String,
}

#[derive(Args)]
struct IstioArgs {
    #[arg(value_name = "FILE", required = true)]
    files: Vec<String>,
    /// The image: oci://REGISTRY/REPO:TAG.
    #[arg(long)]
    url: String,
    /// The image's manifest digest (what `oci` prints).
    #[arg(long, value_name = "DIGEST")]
    sha256: Option<String>,
    #[arg(long, value_name = "NS", default_value = "istio-system")]
    namespace: String,
    /// Classic gateway: the gateway workload's label (repeatable; default
    /// istio=ingressgateway).
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    selector: Vec<(String, String)>,
    /// The gateway: the classic Istio Gateway the VirtualService binds
    /// ([NS/]NAME), or with --gateway-api the Gateway API Gateway.
    #[arg(long, value_name = "[NS/]NAME", default_value = "backstage-gateway")]
    gateway: String,
    /// Hostnames Backstage is served on (repeatable; VirtualService hosts,
    /// default "*"; HTTPRoute hostnames, default all of the listener's).
    #[arg(long = "hostname", value_name = "HOST")]
    hostnames: Vec<String>,
    /// A Gateway API deployment of Istio: targetRefs and HTTPRoutes.
    #[arg(long)]
    gateway_api: bool,
    /// Istio 1.30's TrafficExtension instead of WasmPlugin.
    #[arg(long)]
    traffic_extension: bool,
    #[arg(short, long)]
    output: Option<String>,
}

#[derive(Args)]
struct EnvoyGatewayArgs {
    #[arg(value_name = "FILE", required = true)]
    files: Vec<String>,
    /// The image: oci://REGISTRY/REPO:TAG (or REGISTRY/REPO:TAG).
    #[arg(long)]
    url: String,
    /// The image's manifest digest (what `oci` prints).
    #[arg(long, value_name = "DIGEST")]
    sha256: Option<String>,
    /// The Gateway's namespace; every resource goes there.
    #[arg(long, value_name = "NS", default_value = "envoy-gateway-system")]
    namespace: String,
    /// The Gateway API Gateway the policy and routes attach to.
    #[arg(long, value_name = "NAME", default_value = "backstage-gateway")]
    gateway: String,
    /// Hostnames Backstage is served on (repeatable; default all of the
    /// listener's).
    #[arg(long = "hostname", value_name = "HOST")]
    hostnames: Vec<String>,
    /// Also write an EnvoyProxy "backstage-proxy" whose access log is one
    /// JSON line per request with the principal, endpoint and decision;
    /// the Gateway takes it with spec.infrastructure.parametersRef.
    #[arg(long)]
    envoy_proxy: bool,
    #[arg(short, long)]
    output: Option<String>,
}

#[derive(Args)]
struct RatelimitConfigArgs {
    #[arg(value_name = "FILE", required = true)]
    files: Vec<String>,
    #[arg(short, long)]
    output: Option<String>,
}

#[derive(Args)]
struct OciArgs {
    /// The .wasm to package.
    #[arg(long, value_name = "PATH", default_value = "build/plugin.wasm")]
    wasm: PathBuf,
    #[arg(long, default_value = "latest")]
    tag: String,
    /// The OCI image layout directory (replaced).
    #[arg(short, long, value_name = "DIR", default_value = "build/oci")]
    output: PathBuf,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| "takes KEY=VALUE".to_string())
}

fn listen_address(s: &str) -> Option<(String, u16)> {
    let (addr, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    Some((addr.to_string(), port))
}

fn read_sources(files: &[String]) -> Result<Vec<ConfigFile>, String> {
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

/// Loads and validates; every warning and error goes to standard error.
fn load(files: &[String]) -> Result<Loaded, ExitCode> {
    let sources = read_sources(files).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    })?;
    let mut sources = sources;
    let vars: Vec<(String, String)> = std::env::vars().collect();
    match appconfig::env_overrides(&vars) {
        Ok(Some(overrides)) => sources.push(overrides),
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(1));
        }
    }
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
        return Err(ExitCode::from(1));
    }
    Ok(loaded)
}

fn write_out(output: Option<&str>, text: &str) -> ExitCode {
    match output {
        None | Some("-") => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(format!("{path}: {e}")),
        },
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(1)
}

/// YAML documents under a header line; with `separated`, each after `---`.
fn yaml_documents(
    header: &str,
    docs: &[serde_json::Value],
    separated: bool,
) -> Result<String, String> {
    let mut out = format!("# Generated by backstage-proxy-wasm {header}\n");
    for d in docs {
        // Long single-line strings (type URLs) stay on their line.
        let options = serde_saphyr::ser_options! { min_fold_chars: usize::MAX, folded_wrap_chars: usize::MAX };
        let y = serde_saphyr::to_string_with_options(d, options).map_err(|e| e.to_string())?;
        if separated {
            out.push_str("---\n");
        }
        out.push_str(&y);
        if !y.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

fn render(args: RenderArgs) -> ExitCode {
    let Some((listen_address, listen_port)) = listen_address(&args.listen) else {
        eprintln!("error: --listen takes ADDR:PORT");
        return ExitCode::from(2);
    };
    let loaded = match load(&args.files) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let opts = render::Options {
        listen_address,
        listen_port,
        admin_port: args.admin_port,
        wasm_path: args.wasm,
        ca_file: args.ca_file,
        access_log: (args.access_log != "none").then_some(args.access_log),
    };
    match render::envoy(&loaded, &opts)
        .map_err(|e| e.to_string())
        .and_then(|v| yaml_documents("render", &[v], false))
    {
        Ok(yaml) => write_out(args.output.as_deref(), &yaml),
        Err(e) => fail(e),
    }
}

const KEY_ORDER_WARNING: &str = "warning: Kubernetes stores the plugin configuration as a JSON object, whose key order is not kept: an endpoint with several pathRewrite rules may see them reordered";

fn several_rewrites(loaded: &Loaded) -> bool {
    loaded.plan.as_ref().is_some_and(|p| {
        p.endpoints
            .iter()
            .any(|e| e.path_rewrite.as_ref().is_some_and(|r| r.len() > 1))
    })
}

fn kube_out(
    what: &str,
    docs: Result<(Vec<serde_json::Value>, kube::Warnings), Error>,
    output: Option<&str>,
) -> ExitCode {
    match docs {
        Ok((docs, warnings)) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            match yaml_documents(what, &docs, true) {
                Ok(yaml) => write_out(output, &yaml),
                Err(e) => fail(e),
            }
        }
        Err(e) => fail(e.to_string()),
    }
}

/// `load`, and the warning every Kubernetes output needs.
fn load_for_kubernetes(files: &[String]) -> Result<Loaded, ExitCode> {
    let loaded = load(files)?;
    if several_rewrites(&loaded) {
        eprintln!("{KEY_ORDER_WARNING}");
    }
    Ok(loaded)
}

fn istio(args: IstioArgs) -> ExitCode {
    let loaded = match load_for_kubernetes(&args.files) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut selector = args.selector;
    if selector.is_empty() && !args.gateway_api {
        selector.push(("istio".to_string(), "ingressgateway".to_string()));
    }
    if args.gateway_api && !selector.is_empty() {
        return fail(
            "--selector is for a classic gateway; with --gateway-api the plugin targets --gateway"
                .to_string(),
        );
    }
    let opts = kube::KubeOptions {
        url: args.url,
        sha256: args.sha256,
        namespace: args.namespace,
        gateway: args.gateway,
        hostnames: args.hostnames,
        selector,
        gateway_api: args.gateway_api,
        traffic_extension: args.traffic_extension,
        envoy_proxy: false,
    };
    kube_out("istio", kube::istio(&loaded, &opts), args.output.as_deref())
}

fn envoy_gateway(args: EnvoyGatewayArgs) -> ExitCode {
    let loaded = match load_for_kubernetes(&args.files) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let opts = kube::KubeOptions {
        url: args.url,
        sha256: args.sha256,
        namespace: args.namespace,
        gateway: args.gateway,
        hostnames: args.hostnames,
        selector: Vec::new(),
        gateway_api: true,
        traffic_extension: false,
        envoy_proxy: args.envoy_proxy,
    };
    kube_out(
        "envoy-gateway",
        kube::envoy_gateway(&loaded, &opts),
        args.output.as_deref(),
    )
}

fn oci(args: OciArgs) -> ExitCode {
    let wasm = match std::fs::read(&args.wasm) {
        Ok(w) => w,
        Err(e) => return fail(format!("{}: {e}", args.wasm.display())),
    };
    match oci::build(&wasm, &args.output, &args.tag) {
        Ok(img) => {
            println!("{}", img.manifest_digest);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { files } => match load(&files) {
            Ok(l) => {
                let n = l.plan.as_ref().map(|p| p.endpoints.len()).unwrap_or(0);
                println!("OK: {n} endpoint(s)");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Render(args) => render(args),
        Command::Istio(args) => istio(args),
        Command::EnvoyGateway(args) => envoy_gateway(args),
        Command::RatelimitConfig(args) => ratelimit_config(args),
        Command::Oci(args) => oci(args),
    }
}

fn ratelimit_config(args: RatelimitConfigArgs) -> ExitCode {
    let loaded = match load(&args.files) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let Some(plan) = loaded.plan.as_ref() else {
        return fail("the configuration is not valid");
    };
    match backstage_proxy_wasm_cli::ratelimit::service_config(plan) {
        None => fail("gateway.rateLimitService is not set: the filter counts gateway.rateLimits itself, and there is no service to configure"),
        Some(Err(e)) => fail(e),
        Some(Ok(v)) => match yaml_documents("ratelimit-config (envoyproxy/ratelimit)", &[v], false) {
            Ok(yaml) => write_out(args.output.as_deref(), &yaml),
            Err(e) => fail(e),
        },
    }
}
