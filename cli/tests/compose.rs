//! The compose files, parsed by podman-compose (what `make compose-tools`
//! installs and the compose tests run): they pin the Envoy the tests run,
//! mount what the tests mount, publish on the host's loopback only (the
//! example's demo token), and name every image in full, registry included,
//! as podman needs (it does not assume docker.io for a short name).

use std::process::Command;

use backstage_proxy_testkit::repo_root;

fn podman_compose_config(file: &str) -> serde_json::Value {
    let bin = repo_root().join(".venv/bin/podman-compose");
    assert!(
        bin.is_file(),
        "podman-compose is missing: run `make compose-tools` (PyPI podman-compose into .venv)"
    );
    let out = Command::new(bin)
        .current_dir(repo_root())
        .args(["-f", file, "config"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// `registry/…`: the first part names a host (a dot, a port, or localhost).
fn fully_qualified(image: &str) -> bool {
    image
        .split_once('/')
        .is_some_and(|(host, _)| host.contains('.') || host.contains(':') || host == "localhost")
}

#[test]
fn the_compose_file_parses_and_mounts_what_the_tests_run() {
    let v = podman_compose_config("docker-compose.yml");
    let envoy = &v["services"]["envoy"];
    let makefile = std::fs::read_to_string(repo_root().join("Makefile")).unwrap();
    let version = makefile
        .lines()
        .find_map(|l| l.strip_prefix("ENVOY_VERSION ?= "))
        .unwrap()
        .trim();
    assert_eq!(
        envoy["image"],
        format!("docker.io/envoyproxy/envoy:v{version}"),
        "compose pins the Envoy the tests run"
    );
    let volumes = strings(&envoy["volumes"]);
    for mount in [
        "./envoy.yaml:/work/envoy.yaml:ro",
        "./build/plugin.wasm:/work/build/plugin.wasm:ro",
    ] {
        assert!(volumes.iter().any(|v| v == mount), "{volumes:?}");
    }
    assert_eq!(
        envoy["working_dir"], "/work",
        "envoy.yaml's relative build/plugin.wasm resolves under /work"
    );
    assert_eq!(
        v["services"]["upstream"]["network_mode"], "service:envoy",
        "the upstream is on Envoy's loopback, as envoy.yaml expects"
    );
    // tests/e2e_configs.rs runs that same envoy.yaml under real Envoy;
    // tests/e2e_compose.rs runs this file under podman.
}

#[test]
fn every_compose_file_publishes_on_loopback_and_names_images_in_full() {
    for file in ["docker-compose.yml", "docker-compose.build.yml"] {
        let v = podman_compose_config(file);
        let services = v["services"].as_object().unwrap();
        assert!(!services.is_empty(), "{file}");
        let mut published = 0;
        for (name, service) in services {
            for port in strings(&service["ports"]) {
                assert!(
                    port.starts_with("127.0.0.1:"),
                    "{file}: services.{name}.ports: {port} is published beyond the host's loopback"
                );
                published += 1;
            }
            let image = service["image"].as_str().unwrap();
            assert!(
                fully_qualified(image),
                "{file}: services.{name}.image: {image} has no registry (podman needs one)"
            );
        }
        assert!(published > 0, "{file} publishes the gateway");
    }
    for dockerfile in ["Dockerfile", "cli/Dockerfile"] {
        let text = std::fs::read_to_string(repo_root().join(dockerfile)).unwrap();
        let froms: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("FROM "))
            .map(|l| l.split_whitespace().find(|w| !w.starts_with("--")).unwrap())
            .collect();
        assert!(!froms.is_empty(), "{dockerfile}");
        for image in froms {
            assert!(
                fully_qualified(image) || image == "scratch",
                "{dockerfile}: FROM {image} has no registry"
            );
        }
    }
    assert!(!fully_qualified("envoyproxy/envoy:v1") && !fully_qualified("python:3.11-slim"));
}
