use super::*;

#[test]
fn tar_round_trips_and_is_deterministic() {
    let data = b"\0asm\x01\0\0\0 some module bytes".repeat(100);
    let t = tar_one_file("plugin.wasm", &data).unwrap();
    assert_eq!(t.len() % 512, 0);
    assert_eq!(t, tar_one_file("plugin.wasm", &data).unwrap());
    assert_eq!(
        untar(&t).unwrap(),
        vec![("plugin.wasm".to_string(), data.clone())]
    );
    // ustar, as the compat image variant's consumers expect
    assert_eq!(&t[257..263], b"ustar\0");
    assert_eq!(gzip(&t).unwrap(), gzip(&t).unwrap());
    assert_eq!(gunzip(&gzip(&t).unwrap()).unwrap(), t);
}

#[test]
fn same_wasm_same_manifest_digest() {
    let base = std::env::temp_dir().join(format!("bpw-oci-unit-{}", std::process::id()));
    let wasm = b"\0asm\x01\0\0\0".to_vec();
    let a = build(&wasm, &base.join("a"), "v1").unwrap();
    let b = build(&wasm, &base.join("b"), "v1").unwrap();
    assert_eq!(a, b);
    let other = build(b"\0asm\x01\0\0\0x", &base.join("c"), "v1").unwrap();
    assert_ne!(a.manifest_digest, other.manifest_digest);
    assert!(build(b"not wasm", &base.join("d"), "v1").is_err());
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            base.join("a/blobs/sha256")
                .join(a.manifest_digest.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(manifest["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);
    let _ = std::fs::remove_dir_all(&base);
}
