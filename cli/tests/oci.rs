//! The OCI image, built twice (one digest), pushed to a docker-registry on
//! loopback as the release workflow pushes it, inspected and pulled back
//! with skopeo: the layer's plugin.wasm is the build.

mod common;

use std::path::Path;

use backstage_proxy_testkit::{wasm_path, TempDir};
use backstage_proxy_wasm_cli::oci;
use common::registry::*;
use common::*;

#[test]
fn oci_image_is_reproducible_and_round_trips_through_a_registry() {
    let dir = TempDir::new("oci");
    let wasm = wasm_path();
    let digest = build_twice(&dir.0, &wasm);

    let reg = start_registry();
    let reference = reg.reference("backstage-proxy-wasm:test");
    // Pushed as the release workflow pushes: `make oci-push`.
    make_push("oci-push", "OCI_DIR", &dir.0.join("a"), &reference);
    // the registry serves exactly our manifest
    let manifest = served_manifest(&reference, &digest);
    // pull it back and compare the layer's plugin.wasm with the build
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let layer = pull_blob(&reference, &dir.0.join("pulled"), layer_digest);
    let files = oci::untar(&oci::gunzip(&layer).unwrap()).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, "plugin.wasm");
    assert!(
        files[0].data == std::fs::read(&wasm).unwrap(),
        "plugin.wasm is byte-identical to the build"
    );
}

/// Two builds of the same `.wasm` (in `a` and `b` below `dir`): one
/// manifest digest, which it returns.
fn build_twice(dir: &Path, wasm: &Path) -> String {
    let wasm_s = wasm.display().to_string();
    let a = dir.join("a").display().to_string();
    let b = dir.join("b").display().to_string();
    let da = run_cli(
        &["oci", "--wasm", &wasm_s, "--output", &a, "--tag", "test"],
        &[],
        None,
    );
    let db = run_cli(
        &["oci", "--wasm", &wasm_s, "--output", &b, "--tag", "test"],
        &[],
        None,
    );
    assert!(da.status.success(), "{}", stderr(&da));
    let digest = stdout(&da).trim().to_string();
    assert_eq!(
        digest,
        stdout(&db).trim(),
        "two builds, one manifest digest"
    );
    assert!(digest.starts_with("sha256:") && digest.len() == 71);
    digest
}

/// The manifest the registry serves for `reference`: the image's, with
/// one tar+gzip layer.
fn served_manifest(reference: &str, digest: &str) -> serde_json::Value {
    let raw = inspect_raw(reference, false);
    assert_eq!(
        format!("sha256:{}", oci::sha256_hex(&raw)),
        digest,
        "Istio's sha256 is this digest"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    manifest
}
