//! The docker-compose file, parsed by docker-compose: it pins the Envoy
//! the tests run and mounts what they mount.

mod common;

use std::process::Command;

use backstage_proxy_testkit::repo_root;
use common::tool;

#[test]
fn the_compose_file_parses_and_mounts_what_the_tests_run() {
    let out = Command::new(tool("docker-compose"))
        .current_dir(repo_root())
        .args(["-f", "docker-compose.yml", "config"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let envoy = &v["services"]["envoy"];
    let makefile = std::fs::read_to_string(repo_root().join("Makefile")).unwrap();
    let version = makefile
        .lines()
        .find_map(|l| l.strip_prefix("ENVOY_VERSION ?= "))
        .unwrap()
        .trim();
    assert_eq!(
        envoy["image"],
        format!("envoyproxy/envoy:v{version}"),
        "compose pins the Envoy the tests run"
    );
    let volumes: Vec<&str> = envoy["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let root = repo_root().display().to_string();
    assert!(
        volumes.contains(&format!("{root}/envoy.yaml:/work/envoy.yaml:ro").as_str()),
        "{volumes:?}"
    );
    assert!(
        volumes.contains(&format!("{root}/build/plugin.wasm:/work/build/plugin.wasm:ro").as_str()),
        "{volumes:?}"
    );
    assert_eq!(
        envoy["working_dir"], "/work",
        "envoy.yaml's relative build/plugin.wasm resolves under /work"
    );
    assert_eq!(
        v["services"]["upstream"]["network_mode"], "service:envoy",
        "the upstream is on Envoy's loopback, as envoy.yaml expects"
    );
    // tests/e2e_configs.rs runs that same envoy.yaml under real Envoy
}
