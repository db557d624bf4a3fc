//! The command line: the commands, their arguments and `--help`, as clap
//! parses them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
FILE may be - for standard input. Files are read as Backstage's config loader
reads them, in the sections the gateway uses (proxy, backend.baseUrl,
backend.auth, backend.cors, gateway): later files win, nulls are absent,
${VAR}, {$env: VAR}, $file and $include are resolved (relative to the file
that holds them), an unset variable makes its value absent (an error where
the gateway needs it), and APP_CONFIG_<path> environment variables override.
In endpoint headers and auth, and in legacy secrets, ${VAR} is left for
Envoy's Wasm VM (listed in vm_config.environment_variables.host_env_keys);
static tokens are written as their SHA-256 (tokenDigest), never as tokens.";

/// Backstage's proxy rules enforced at the Envoy edge.
#[derive(Parser)]
#[command(name = "backstage-proxy-wasm", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Validate app-config files (merged in order, as Backstage merges them)
    /// with the filter's own validation; print every error with its file
    /// and JSON path. Exits 1 on any error (and with --strict on any
    /// warning).
    Check(CheckArgs),
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
    /// Say what the gateway decides for one request and why: the endpoint,
    /// where the request lands upstream, the credentials, the access rule,
    /// the budgets and the upstream URL, with the filter's own decision.
    Explain(ExplainArgs),
    /// Build an OCI image layout and print its manifest digest: with
    /// --wasm the compat Wasm image (one tar+gzip layer holding
    /// plugin.wasm); with --native the native module's image, then the
    /// module's SHA-256 on a second line (sha256sum's).
    Oci(OciArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
    /// Warnings fail the check too (exit status 1), for CI.
    #[arg(long)]
    pub strict: bool,
    /// human: on standard error; json or sarif (SARIF 2.1.0): on standard
    /// output, for CI and code scanning.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
}

/// How `check` prints what it found.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Sarif,
}

#[derive(Args)]
pub struct RenderArgs {
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
    /// Where to write (default standard output).
    #[arg(short, long)]
    pub output: Option<String>,
    /// The listener's address and port; loopback unless asked otherwise
    /// (--listen 0.0.0.0:10000 for every interface).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:10000")]
    pub listen: String,
    /// Envoy's admin port (on 127.0.0.1).
    #[arg(long, value_name = "PORT", default_value_t = 9901)]
    pub admin_port: u16,
    /// The .wasm, as Envoy sees it (the path is written as given). Without
    /// it, build/plugin.wasm in the current directory if it exists, written
    /// as its absolute path; otherwise --wasm is required.
    #[arg(long, value_name = "PATH")]
    pub wasm: Option<String>,
    /// The native Envoy dynamic module (libbackstage_proxy.so), as Envoy
    /// sees it, in place of the Wasm filter (docs/native.md).
    #[arg(long, value_name = "PATH", conflicts_with = "wasm")]
    pub native: Option<String>,
    /// CA bundle for https upstreams.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/etc/ssl/certs/ca-certificates.crt"
    )]
    pub ca_file: String,
    /// Where Envoy writes the access log, one JSON line per request with
    /// the principal, the endpoint and the decision ("none": no log).
    #[arg(long, value_name = "PATH", default_value = "/dev/stdout")]
    pub access_log: String,
}

/// What `istio` and `envoy-gateway` both take: the files, the image, the
/// hostnames and where to write.
#[derive(Args)]
pub struct KubeArgs {
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
    /// The image: oci://REGISTRY/REPO:TAG (or REGISTRY/REPO:TAG).
    #[arg(long, required_unless_present = "native")]
    pub url: Option<String>,
    /// Envoy Gateway 1.8: the native Envoy dynamic module instead of the
    /// Wasm image: its absolute path on the proxy's filesystem, where the
    /// module image is mounted (never a URL: Envoy's remote source fails
    /// open; docs/native.md).
    #[arg(long, value_name = "PATH", conflicts_with = "url")]
    pub native: Option<String>,
    /// The image's manifest digest (what `oci` prints).
    #[arg(long, value_name = "DIGEST")]
    pub sha256: Option<String>,
    /// Hostnames Backstage is served on (repeatable; HTTPRoute hostnames,
    /// default all of the listener's; a classic Istio gateway's
    /// VirtualService hosts, default "*").
    #[arg(long = "hostname", value_name = "HOST")]
    pub hostnames: Vec<String>,
    #[arg(short, long, conflicts_with = "kustomize")]
    pub output: Option<String>,
    /// Write the image by tag alone, without --sha256 (each gateway pod
    /// then runs whatever the tag names when it pulls).
    #[arg(long)]
    pub allow_unpinned: bool,
    /// The Secret the gateway's pods read the VM's variables from (one key
    /// per variable), in the gateway pods' namespace.
    #[arg(long, value_name = "NAME", default_value = "backstage-proxy-wasm")]
    pub secret_name: String,
    /// A PEM CA bundle that verifies the https destinations instead of the
    /// system's roots (written into the resources: a Secret for Istio's
    /// DestinationRules, a ConfigMap for Envoy Gateway's BackendTLSPolicies).
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Option<String>,
    /// Write a Kustomize base into DIR instead: kustomization.yaml,
    /// resources.yaml, and the Secret as a secretGenerator over
    /// DIR/<secret-name>.env, written with empty values for the operator to
    /// fill (an existing one is kept).
    #[arg(long, value_name = "DIR")]
    pub kustomize: Option<PathBuf>,
    /// With --kustomize: write the env file's values from this command's
    /// own environment (every variable must be set).
    #[arg(long, requires = "kustomize")]
    pub secret_values_from_env: bool,
}

#[derive(Args)]
pub struct IstioArgs {
    #[command(flatten)]
    pub common: KubeArgs,
    #[arg(long, value_name = "NS", default_value = "istio-system")]
    pub namespace: String,
    /// Classic gateway: the gateway workload's label (repeatable; default
    /// istio=ingressgateway).
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    pub selector: Vec<(String, String)>,
    /// The gateway: the classic Istio Gateway the VirtualService binds
    /// ([NS/]NAME), or with --gateway-api the Gateway API Gateway.
    #[arg(long, value_name = "[NS/]NAME", default_value = "backstage-gateway")]
    pub gateway: String,
    /// A Gateway API deployment of Istio: targetRefs and HTTPRoutes.
    #[arg(long)]
    pub gateway_api: bool,
    /// Istio 1.30's TrafficExtension instead of WasmPlugin.
    #[arg(long)]
    pub traffic_extension: bool,
    /// Classic gateway: the ingress gateway's Deployment, which the
    /// --kustomize patch gives the VM's variables.
    #[arg(long, value_name = "NAME", default_value = "istio-ingressgateway")]
    pub gateway_deployment: String,
}

#[derive(Args)]
pub struct EnvoyGatewayArgs {
    #[command(flatten)]
    pub common: KubeArgs,
    /// The Gateway's namespace; every resource goes there.
    #[arg(long, value_name = "NS", default_value = "envoy-gateway-system")]
    pub namespace: String,
    /// The Gateway API Gateway the policy and routes attach to.
    #[arg(long, value_name = "NAME", default_value = "backstage-gateway")]
    pub gateway: String,
    /// Also write an EnvoyProxy "backstage-proxy" whose access log is one
    /// JSON line per request with the principal, endpoint and decision;
    /// the Gateway takes it with spec.infrastructure.parametersRef.
    #[arg(long)]
    pub envoy_proxy: bool,
}

#[derive(Args)]
pub struct RatelimitConfigArgs {
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
    #[arg(short, long)]
    pub output: Option<String>,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("artifact").required(true).args(["wasm", "native"])))]
pub struct OciArgs {
    /// The .wasm to package (make build: build/plugin.wasm): the compat
    /// Wasm image.
    #[arg(long, value_name = "PATH")]
    pub wasm: Option<PathBuf>,
    /// The native Envoy dynamic module to package (make native:
    /// build/libbackstage_proxy.so): an image holding it at its root,
    /// mode 0755, for a Kubernetes image volume (docs/native.md).
    #[arg(long, value_name = "PATH")]
    pub native: Option<PathBuf>,
    #[arg(long, default_value = "latest")]
    pub tag: String,
    /// The OCI image layout directory (replaced); build/oci for --wasm,
    /// build/oci-native for --native.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| "takes KEY=VALUE".to_string())
}

/// `--listen`'s `ADDR:PORT` (an IPv6 address in brackets or not).
pub fn listen_address(s: &str) -> Option<(String, u16)> {
    let (addr, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    Some((addr.to_string(), port))
}

#[derive(Args)]
pub struct ExplainArgs {
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
    /// The request's method.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// The request's path and query, as the gateway receives it
    /// (/api/proxy/pagerduty/incidents?x=1).
    #[arg(long)]
    pub path: String,
    /// The caller, taken as verified: user:<ref>, plugin:<id> or
    /// external:<subject>.
    #[arg(long, conflicts_with = "token_env")]
    pub principal: Option<String>,
    /// A group the user principal belongs to (its token's ent claim);
    /// repeatable.
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// The environment variable holding a bearer token to verify (static
    /// and legacy tokens; never a token on the command line, where other
    /// users of the machine can read it).
    #[arg(long)]
    pub token_env: Option<String>,
    /// An extra request header, NAME:VALUE; repeatable.
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// text or json.
    #[arg(long, default_value = "text")]
    pub format: String,
}
