//! backstage-proxy-wasm: from the app-config.yaml you already have to a
//! gateway that enforces it. The arguments are [`args`]'s; each command
//! here loads the files ([`console`]), asks the library for its output and
//! writes it.

mod args;
mod console;

use std::process::ExitCode;

use args::{
    CheckArgs, Cli, Command, EnvoyGatewayArgs, ExplainArgs, Format, IstioArgs, KubeArgs, OciArgs,
    RatelimitConfigArgs, RenderArgs,
};
use backstage_proxy_wasm_cli::appconfig::Loaded;
use backstage_proxy_wasm_cli::error::Error;
use backstage_proxy_wasm_cli::json::yaml_documents;
use backstage_proxy_wasm_cli::{kube, oci, ratelimit, render, report};
use clap::Parser;
use console::{fail, gather, load, print_findings, warn_once, write_out};

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check(args) => check(&args),
        Command::Render(args) => render(args),
        Command::Istio(args) => istio(args),
        Command::EnvoyGateway(args) => envoy_gateway(args),
        Command::RatelimitConfig(args) => ratelimit_config(args),
        Command::Explain(args) => explain(args),
        Command::Oci(args) => oci(args),
    }
}

fn explain(args: ExplainArgs) -> ExitCode {
    use backstage_proxy_wasm_cli::explain::{self, Question, Who};
    let who = match (&args.principal, &args.token_env) {
        (Some(p), _) => explain::parse_principal(p, &args.groups),
        (None, Some(var)) => std::env::var(var)
            .map(Who::Token)
            .map_err(|_| format!("--token-env: environment variable '{var}' is not set")),
        (None, None) => Ok(Who::Nobody),
    };
    let headers: Result<Vec<(String, String)>, String> = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("--header '{h}': expected NAME:VALUE"))
        })
        .collect();
    let (who, headers) = match (who, headers) {
        (Ok(w), Ok(h)) => (w, h),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let loaded = match load(&args.files) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let Some(plan) = loaded.plan.as_ref() else {
        return fail("the configuration is not valid");
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let q = Question {
        method: &args.method,
        path: &args.path,
        headers,
        who,
        now_ms,
    };
    let v = explain::explain(plan, &q);
    match args.format.as_str() {
        "json" => write_out(None, &format!("{v:#}\n")),
        "text" => write_out(None, &explain::text(&v)),
        other => {
            eprintln!("error: --format {other}: expected text or json");
            ExitCode::from(2)
        }
    }
}

/// `check`: every finding, each once; exit 1 on an error, and with
/// `--strict` on a warning.
fn check(args: &CheckArgs) -> ExitCode {
    let g = gather(&args.files);
    let endpoints = g
        .loaded
        .as_ref()
        .and_then(|l| l.plan.as_ref())
        .map(|p| p.endpoints.len());
    let ok = g.errors.is_empty() && (g.warnings.is_empty() || !args.strict);
    let machine = match args.format {
        Format::Human => None,
        Format::Json => Some(report::json(&g.errors, &g.warnings, endpoints, ok)),
        Format::Sarif => Some(report::sarif(&g.errors, &g.warnings)),
    };
    match machine {
        Some(v) => {
            let text = serde_json::to_string_pretty(&v).unwrap_or_default();
            write_out(None, &format!("{text}\n"));
        }
        None => {
            print_findings(&g);
            if ok {
                write_out(
                    None,
                    &format!("OK: {} endpoint(s)\n", endpoints.unwrap_or(0)),
                );
            } else if g.errors.is_empty() {
                eprintln!(
                    "{} warning(s), which --strict makes errors",
                    g.warnings.len()
                );
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `--wasm`, or build/plugin.wasm here when it exists (as its absolute
/// path, so that Envoy finds it from any directory).
fn wasm_path(given: Option<String>) -> Result<String, String> {
    if let Some(p) = given {
        return Ok(p);
    }
    match std::fs::canonicalize("build/plugin.wasm") {
        Ok(p) if p.is_file() => Ok(p.display().to_string()),
        _ => Err("--wasm PATH is required: the .wasm as Envoy sees it (there is no build/plugin.wasm in the current directory)".to_string()),
    }
}

fn render(args: RenderArgs) -> ExitCode {
    let Some((listen_address, listen_port)) = args::listen_address(&args.listen) else {
        eprintln!("error: --listen takes ADDR:PORT");
        return ExitCode::from(2);
    };
    let wasm_path = match args
        .native
        .as_ref()
        .map_or_else(|| wasm_path(args.wasm), |_| Ok(String::new()))
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let loaded = match load(&args.files) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let opts = render::Options {
        listen_address,
        listen_port,
        admin_port: args.admin_port,
        wasm_path,
        native: args.native,
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

/// `load`, and the warning every Kubernetes output needs.
fn load_for_kubernetes(files: &[String]) -> Result<Loaded, ExitCode> {
    let loaded = load(files)?;
    if several_rewrites(&loaded) {
        eprintln!("{KEY_ORDER_WARNING}");
    }
    Ok(loaded)
}

/// The options both Kubernetes outputs take from their common arguments,
/// for a Gateway API gateway without a selector (Envoy Gateway's; Istio
/// sets its own).
fn kube_options(
    common: &KubeArgs,
    namespace: String,
    gateway: String,
) -> Result<kube::KubeOptions, Error> {
    let upstream_ca = common
        .upstream_ca
        .as_deref()
        .map(kube::UpstreamCa::read)
        .transpose()?;
    let native = common
        .native
        .as_deref()
        .map(kube::NativeModule::parse)
        .transpose()?;
    Ok(kube::KubeOptions {
        url: common.url.clone().unwrap_or_default(),
        native,
        sha256: common.sha256.clone(),
        namespace,
        gateway,
        hostnames: common.hostnames.clone(),
        selector: Vec::new(),
        gateway_api: true,
        traffic_extension: false,
        envoy_proxy: false,
        allow_unpinned: common.allow_unpinned,
        secret_name: common.secret_name.clone(),
        gateway_deployment: String::new(),
        upstream_ca,
    })
}

/// A Kubernetes output's documents (or with `--kustomize` its base), its
/// warnings on standard error.
fn kube_out(
    what: &str,
    (loaded, opts): (&Loaded, &kube::KubeOptions),
    docs: Result<(Vec<serde_json::Value>, kube::Warnings), Error>,
    common: &KubeArgs,
) -> ExitCode {
    let (docs, warnings) = match docs {
        Ok(d) => d,
        Err(e) => return fail(e.to_string()),
    };
    warn_once(&warnings);
    let Some(dir) = &common.kustomize else {
        return match yaml_documents(what, &docs, true) {
            Ok(yaml) => write_out(common.output.as_deref(), &yaml),
            Err(e) => fail(e),
        };
    };
    let from_env = |v: &str| std::env::var(v).ok();
    let values: kube::kustomize::Values = if common.secret_values_from_env {
        Some(&from_env)
    } else {
        None
    };
    let classic = what == "istio" && !opts.gateway_api;
    match kube::kustomize::write(dir, &docs, loaded, opts, classic, values) {
        Ok(written) => {
            for n in written.notes {
                eprintln!("note: {n}");
            }
            eprintln!("wrote {}: {}", dir.display(), written.files.join(", "));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.to_string()),
    }
}

fn istio(args: IstioArgs) -> ExitCode {
    if args.common.native.is_some() {
        return fail(
            "--native: Istio has no resource that loads an Envoy dynamic module (WasmPlugin and TrafficExtension load Wasm only); use the Wasm image with Istio (docs/native.md#istio)"
                .to_string(),
        );
    }
    let loaded = match load_for_kubernetes(&args.common.files) {
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
    let opts = match kube_options(&args.common, args.namespace, args.gateway) {
        Ok(o) => kube::KubeOptions {
            selector,
            gateway_api: args.gateway_api,
            traffic_extension: args.traffic_extension,
            gateway_deployment: args.gateway_deployment,
            ..o
        },
        Err(e) => return fail(e),
    };
    let docs = kube::istio(&loaded, &opts);
    kube_out("istio", (&loaded, &opts), docs, &args.common)
}

fn envoy_gateway(args: EnvoyGatewayArgs) -> ExitCode {
    let loaded = match load_for_kubernetes(&args.common.files) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let opts = match kube_options(&args.common, args.namespace, args.gateway) {
        Ok(o) => kube::KubeOptions {
            envoy_proxy: args.envoy_proxy,
            ..o
        },
        Err(e) => return fail(e),
    };
    let docs = kube::envoy_gateway(&loaded, &opts);
    kube_out("envoy-gateway", (&loaded, &opts), docs, &args.common)
}

fn ratelimit_config(args: RatelimitConfigArgs) -> ExitCode {
    let loaded = match load(&args.files) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let Some(plan) = loaded.plan.as_ref() else {
        return fail("the configuration is not valid");
    };
    match ratelimit::service_config(plan) {
        None => fail("gateway.rateLimitService is not set: the filter counts gateway.rateLimits itself, and there is no service to configure"),
        Some(Err(e)) => fail(e),
        Some(Ok(v)) => match yaml_documents("ratelimit-config (envoyproxy/ratelimit)", &[v], false) {
            Ok(yaml) => write_out(args.output.as_deref(), &yaml),
            Err(e) => fail(e),
        },
    }
}

fn oci(args: OciArgs) -> ExitCode {
    type Build = fn(&[u8], &std::path::Path, &str) -> std::io::Result<oci::Image>;
    // clap lets exactly one of the two through
    let (path, build, default): (_, Build, _) = match (&args.wasm, &args.native) {
        (Some(wasm), None) => (wasm, oci::build, "build/oci"),
        (None, Some(so)) => (so, oci::build_native, "build/oci-native"),
        _ => return fail("oci: give exactly one of --wasm PATH and --native PATH"),
    };
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => return fail(format!("{}: {e}", path.display())),
    };
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(default));
    match build(&data, &output, &args.tag) {
        Ok(img) => {
            println!("{}", img.manifest_digest);
            if args.native.is_some() {
                println!("{}", img.file_sha256);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("{}: {e}", path.display())),
    }
}
