//! What the Kubernetes-output tests share: the resources the tool writes
//! for each fixture in every mode.

use std::path::PathBuf;
use std::process::{Command, Output};

use backstage_proxy_testkit::repo_root;
use serde_json::Value;

pub fn cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_backstage-proxy-wasm"))
}

pub fn fixture(name: &str) -> String {
    repo_root()
        .join("cli/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

pub const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const FIXTURES: [&str; 3] = ["create-app.yaml", "production.yaml", "fleet.yaml"];
pub const MODES: [&[&str]; 5] = [
    &["istio"],
    &[
        "istio",
        "--gateway",
        "gateways/public",
        "--hostname",
        "backstage.example.com",
    ],
    &["istio", "--gateway-api"],
    &[
        "istio",
        "--gateway-api",
        "--traffic-extension",
        "--hostname",
        "backstage.example.com",
    ],
    &[
        "envoy-gateway",
        "--hostname",
        "backstage.example.com",
        "--envoy-proxy",
    ],
];

/// Every mode of both commands on every fixture: (description, mode, docs).
pub fn generated() -> Vec<(String, &'static [&'static str], Vec<Value>)> {
    let mut out = Vec::new();
    for f in FIXTURES {
        for mode in MODES {
            let o: Output = Command::new(cli())
                .args(mode)
                .args([
                    "--url",
                    "oci://ghcr.io/example/backstage-proxy-wasm:1.0.0",
                    "--sha256",
                    DIGEST,
                ])
                .arg(fixture(f))
                .env("CI_TOKEN", "ci-token-0123456789")
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{mode:?} {f}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let docs: Vec<Value> =
                serde_saphyr::from_multiple(&String::from_utf8_lossy(&o.stdout)).unwrap();
            out.push((format!("{} {f}", mode.join(" ")), mode, docs));
        }
    }
    out
}
