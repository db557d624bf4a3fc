//! The native module's image (`oci --native`, `make oci-native`,
//! docs/native.md#the-module-image), as an operator gets it into Envoy:
//! built twice from the real `.so` (one digest), pushed to a
//! docker-registry on loopback with the make target a release pushes
//! with, pulled back with skopeo and unpacked with tar, and mounted by a
//! container runtime (podman: the image's filesystem, read-only, as a
//! Kubernetes image volume mounts it); real Envoy then loads the module
//! by name from that directory (`ENVOY_DYNAMIC_MODULES_SEARCH_PATH`) and
//! answers as the filter. Needs `make native` (build/libbackstage_proxy.so),
//! `make build`, `make envoy` and `make tools`; fails, never skips,
//! without them.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use backstage_proxy_testkit::{native_path, unique, wasm_path, Envoy, TempDir, Upstream};
use backstage_proxy_wasm_cli::oci;
use common::native::{assert_backstage_401, gateway, TOKEN};
use common::registry::*;
use common::*;
use serde_json::{json, Value};

const REPO: &str = "backstage-proxy-wasm-native:test";

/// The image built twice from the `.so` in `a` and `b` below `dir`: its
/// manifest digest, checked to be one, and the module's SHA-256 as
/// `sha256sum` prints it, which the command's second line must be.
fn build_twice(dir: &Path, so: &Path) -> String {
    let so_s = so.display().to_string();
    let mut lines = Vec::new();
    for out in ["a", "b"] {
        let out = dir.join(out).display().to_string();
        let o = run_cli(
            &["oci", "--native", &so_s, "--output", &out, "--tag", "test"],
            &[],
            None,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        lines.push(stdout(&o));
    }
    assert_eq!(lines[0], lines[1], "two builds, one image");
    let printed: Vec<&str> = lines[0].lines().collect();
    assert_eq!(printed.len(), 2, "{printed:?}");
    let digest = printed[0];
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    let sum = Command::new(tool("sha256sum")).arg(so).output().unwrap();
    let sum = String::from_utf8(sum.stdout).unwrap();
    assert_eq!(
        Some(printed[1]),
        sum.split_whitespace().next(),
        "the second line is the module's SHA-256 (sha256sum's)"
    );
    digest.to_string()
}

/// The platform the image must say: the host's, which built the `.so`.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no image platform for a {other} build"),
    }
}

/// The image pushed to a fresh registry with `make oci-native-push`: the
/// registry, the reference, the manifest digest and the `.so`.
fn pushed(dir: &Path) -> (Registry, String, String, PathBuf) {
    let so = native_path();
    let digest = build_twice(dir, &so);
    let reg = start_registry();
    let reference = reg.reference(REPO);
    make_push(
        "oci-native-push",
        "OCI_NATIVE_DIR",
        &dir.join("a"),
        &reference,
    );
    (reg, reference, digest, so)
}

/// Envoy with the module named `backstage_proxy`, looked up in `modules`
/// as an image volume mounted there is; with `search_path` unset it must
/// not be found.
fn envoy_from(modules: &Path, up: &Upstream, search_path: bool) -> Result<Envoy, String> {
    let dir = TempDir::new("native-image-envoy");
    let cfg = dir.0.join("envoy.yaml");
    std::fs::write(
        &cfg,
        gateway(up.port, json!({ "name": "backstage_proxy" }), &[]),
    )
    .unwrap();
    let env = modules.display().to_string();
    let env: Vec<(&str, &str)> = if search_path {
        vec![("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", env.as_str())]
    } else {
        Vec::new()
    };
    Envoy::run_file(&cfg, 1, dir, &[], &env).map_err(|(log, _)| log)
}

/// Envoy loads the module from `modules` by name and it answers; the
/// upstream, for more.
fn assert_envoy_loads_from(modules: &Path) -> Upstream {
    let up = Upstream::start(&[]);
    let envoy = envoy_from(modules, &up, true).unwrap_or_else(|log| panic!("{log}"));
    assert_the_filter_answers(&envoy, &up);
    up
}

/// The module answers: no credentials is Backstage's 401 (never
/// forwarded); the static token is forwarded to the endpoint's target.
fn assert_the_filter_answers(envoy: &Envoy, up: &Upstream) {
    let m = unique();
    let url = format!("/api/proxy/svc/a?{m}");
    assert_backstage_401(&envoy.get(&url, &[]), &url);
    up.assert_never(&m);
    let auth = format!("Bearer {TOKEN}");
    let r = envoy.get(&url, &[("authorization", &auth)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.find(&m).unwrap().target, format!("/base/a?{m}"));
}

#[test]
fn the_module_image_round_trips_through_a_registry_and_envoy_loads_it_from_the_layer() {
    let dir = TempDir::new("oci-native");
    let (_reg, reference, digest, so) = pushed(&dir.0);

    // the registry serves exactly our manifest and configuration
    let raw = inspect_raw(&reference, false);
    assert_eq!(format!("sha256:{}", oci::sha256_hex(&raw)), digest);
    let manifest: Value = serde_json::from_slice(&raw).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], oci::LAYER_MEDIA_TYPE);
    let config: Value = serde_json::from_slice(&inspect_raw(&reference, true)).unwrap();
    assert_eq!(config["architecture"], host_architecture());
    assert_eq!(config["os"], "linux");

    // pulled back into a fresh directory: one file, the build, mode 0755
    let pulled = dir.0.join("pulled");
    let layer = pull_blob(&reference, &pulled, layers[0]["digest"].as_str().unwrap());
    let built = std::fs::read(&so).unwrap();
    let files = oci::untar(&oci::gunzip(&layer).unwrap()).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, oci::NATIVE_FILE);
    assert_eq!(files[0].mode, 0o755);
    assert!(files[0].data == built, "the layer's .so is the build");

    // unpacked by tar, as a runtime unpacks a layer
    let modules = dir.0.join("modules");
    std::fs::create_dir_all(&modules).unwrap();
    let layer_path = blob_path(&pulled, layers[0]["digest"].as_str().unwrap());
    let untar = Command::new(tool("tar"))
        .arg("-xzf")
        .arg(&layer_path)
        .arg("-C")
        .arg(&modules)
        .output()
        .unwrap();
    assert!(untar.status.success(), "{}", stderr(&untar));
    let file = modules.join(oci::NATIVE_FILE);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    assert!(std::fs::read(&file).unwrap() == built);

    // Envoy finds it there by name, and only there
    let up = assert_envoy_loads_from(&modules);
    let log = envoy_from(&modules, &up, false)
        .err()
        .expect("without the search path Envoy must not find the module");
    assert!(log.contains("Failed to load dynamic module"), "{log}");
}

/// podman's `image mount` (containers/storage, the library CRI-O mounts
/// image volumes with) gives the image's filesystem, read-only. The
/// images the test put in podman's storage are removed afterwards.
struct Mounted {
    podman: PathBuf,
    images: Vec<String>,
    path: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        for image in &self.images {
            for args in [&["image", "unmount"][..], &["rmi", "--force"][..]] {
                let _ = Command::new(&self.podman).args(args).arg(image).output();
            }
        }
    }
}

fn podman(podman: &Path, args: &[&str]) -> String {
    let o = Command::new(podman).args(args).output().unwrap();
    assert!(o.status.success(), "podman {args:?}: {}", stderr(&o));
    stdout(&o).trim().to_string()
}

/// Mounts `image` (already in podman's storage), which the guard removes
/// with `also`.
fn mount(image: String, also: &[&str]) -> Mounted {
    let p = tool("podman");
    let mut images = vec![image.clone()];
    images.extend(also.iter().map(|s| s.to_string()));
    let mut m = Mounted {
        podman: p.clone(),
        images,
        path: PathBuf::new(),
    };
    m.path = PathBuf::from(podman(&p, &["image", "mount", &image]));
    m
}

/// The module in a mounted image at `rel`: alone in its directory, mode
/// 0755, the build byte for byte.
fn assert_module_at(mounted: &Mounted, rel: &str, so: &Path) -> PathBuf {
    let dir = mounted.path.join(rel);
    let entries: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, [oci::NATIVE_FILE], "the module alone in {rel:?}");
    let file = dir.join(oci::NATIVE_FILE);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert!(std::fs::read(&file).unwrap() == std::fs::read(so).unwrap());
    dir
}

#[test]
fn a_container_runtime_mounts_the_image_and_envoy_loads_the_module_from_the_mount() {
    let dir = TempDir::new("oci-native-mount");
    let (_reg, reference, _, so) = pushed(&dir.0);
    let p = tool("podman");
    let image = podman(&p, &["pull", "--quiet", "--tls-verify=false", &reference]);
    let mounted = mount(image, &[]);
    assert_eq!(
        podman(
            &p,
            &[
                "image",
                "inspect",
                "--format",
                "{{.Architecture}}/{{.Os}}",
                &mounted.images[0]
            ]
        ),
        format!("{}/linux", host_architecture())
    );
    let modules = assert_module_at(&mounted, "", &so);
    assert_envoy_loads_from(&modules);
}

/// A Containerfile's `COPY --from` takes the module out of the image, as
/// the init container's image and an Envoy image with the module built in
/// are made (docs/native.md#older-clusters-an-init-container).
#[test]
fn a_containerfile_copies_the_module_out_of_the_image() {
    let dir = TempDir::new("oci-native-copy");
    let (_reg, reference, _, so) = pushed(&dir.0);
    let context = dir.0.join("context");
    std::fs::create_dir_all(&context).unwrap();
    write(
        &context,
        "Containerfile",
        &format!(
            "FROM scratch\nCOPY --from={reference} /{} /usr/lib/envoy/modules/\n",
            oci::NATIVE_FILE
        ),
    );
    let p = tool("podman");
    let tag = format!("localhost/bpw-native-copy:{}", unique());
    let context = context.display().to_string();
    podman(
        &p,
        &[
            "build",
            "--quiet",
            "--tls-verify=false",
            "-t",
            &tag,
            &context,
        ],
    );
    let mounted = mount(tag, &[&reference]);
    let modules = assert_module_at(&mounted, "usr/lib/envoy/modules", &so);
    assert_envoy_loads_from(&modules);
}

/// What `oci` refuses, each with the file it names and what it is; a
/// refused build writes nothing.
#[test]
fn oci_refuses_the_wrong_artifact_for_its_flag_and_takes_exactly_one() {
    let dir = TempDir::new("oci-refusals");
    let out = dir.0.join("out").display().to_string();
    let so = native_path().display().to_string();
    let wasm = wasm_path().display().to_string();
    let text = write(&dir.0, "module.so", "#!/bin/sh\n");
    // an ELF position-independent executable is a shared object by type
    let exe = tool("true").display().to_string();
    let missing = dir.0.join("missing.so").display().to_string();
    for (args, says) in [
        (
            vec!["--native", &wasm],
            "a WebAssembly module, not an Envoy dynamic module",
        ),
        (vec!["--native", &text], "not an ELF shared object"),
        (vec!["--native", &exe], "not an Envoy dynamic module"),
        (vec!["--native", &missing], "No such file"),
        (vec!["--wasm", &so], "an ELF file, not a WebAssembly module"),
    ] {
        let mut all = vec!["oci"];
        all.extend_from_slice(&args);
        all.extend_from_slice(&["--output", &out]);
        let o = run_cli(&all, &[], None);
        assert_eq!(o.status.code(), Some(1), "{all:?}");
        let e = stderr(&o);
        assert!(e.contains(args[1]) && e.contains(says), "{all:?}: {e}");
        assert!(stdout(&o).is_empty());
        assert!(!Path::new(&out).exists(), "{all:?} wrote {out}");
    }
    for (args, says) in [
        (
            vec!["--wasm", &wasm, "--native", &so],
            "cannot be used with",
        ),
        (vec![], "--wasm <PATH>|--native <PATH>"),
    ] {
        let mut all = vec!["oci"];
        all.extend_from_slice(&args);
        all.extend_from_slice(&["--output", &out]);
        let o = run_cli(&all, &[], None);
        assert_eq!(o.status.code(), Some(2), "{all:?}: a usage error");
        assert!(stderr(&o).contains(says), "{all:?}: {}", stderr(&o));
        assert!(!Path::new(&out).exists());
    }
}
