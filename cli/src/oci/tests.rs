use super::*;

#[test]
fn tar_round_trips_and_is_deterministic() {
    let data = b"\0asm\x01\0\0\0 some module bytes".repeat(100);
    let t = tar_one_file("plugin.wasm", &data, 0o644).unwrap();
    assert_eq!(t.len() % 512, 0);
    assert_eq!(t, tar_one_file("plugin.wasm", &data, 0o644).unwrap());
    assert_eq!(
        untar(&t).unwrap(),
        vec![TarFile {
            name: "plugin.wasm".to_string(),
            mode: 0o644,
            data: data.clone()
        }]
    );
    // ustar, as the compat image variant's consumers expect
    assert_eq!(&t[257..263], b"ustar\0");
    assert_eq!(gzip(&t).unwrap(), gzip(&t).unwrap());
    assert_eq!(gunzip(&gzip(&t).unwrap()).unwrap(), t);
    assert_eq!(
        untar(&tar_one_file("x.so", &data, 0o755).unwrap()).unwrap()[0].mode,
        0o755
    );
}

fn manifest(dir: &Path, img: &Image) -> serde_json::Value {
    blob(dir, &img.manifest_digest)
}

fn blob(dir: &Path, digest: &str) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(
            dir.join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap()
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
    let manifest = manifest(&base.join("a"), &a);
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(manifest["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);
    assert_eq!(
        manifest["annotations"]["module.wasm.image/variant"],
        "compat"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// A 64-byte ELF header (64-bit, little-endian) of `kind` for `machine`,
/// followed by `tail`.
fn elf(kind: u16, machine: u16, tail: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2;
    h[5] = 1;
    h[6] = 1;
    h[16..18].copy_from_slice(&kind.to_le_bytes());
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h.extend_from_slice(tail);
    h
}

const SYMBOLS: &[u8] = b"\0envoy_dynamic_module_on_program_init\0other\0";

#[test]
fn a_module_image_holds_the_so_executable_with_the_elf_platform() {
    let base = std::env::temp_dir().join(format!("bpw-oci-native-{}", std::process::id()));
    for (machine, arch) in [(62, "amd64"), (183, "arm64")] {
        let so = elf(3, machine, SYMBOLS);
        let dir = base.join(arch);
        let img = build_native(&so, &dir, "v1").unwrap();
        assert_eq!(img, build_native(&so, &base.join("again"), "v1").unwrap());
        assert_eq!(img.file_sha256, sha256_hex(&so));
        let m = manifest(&dir, &img);
        assert_eq!(m["layers"].as_array().unwrap().len(), 1);
        assert!(m.get("annotations").is_none(), "{m}");
        let config = blob(&dir, m["config"]["digest"].as_str().unwrap());
        assert_eq!(
            (config["architecture"].as_str(), config["os"].as_str()),
            (Some(arch), Some("linux"))
        );
        let layer = std::fs::read(
            dir.join("blobs/sha256")
                .join(img.layer_digest.trim_start_matches("sha256:")),
        )
        .unwrap();
        let tar = gunzip(&layer).unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            format!("sha256:{}", sha256_hex(&tar))
        );
        assert_eq!(
            untar(&tar).unwrap(),
            vec![TarFile {
                name: NATIVE_FILE.to_string(),
                mode: 0o755,
                data: so
            }]
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn anything_but_a_known_dynamic_module_is_refused_saying_what_it_is() {
    let mut big_endian = elf(3, 62, SYMBOLS);
    big_endian[5] = 2;
    let mut bits32 = elf(3, 62, SYMBOLS);
    bits32[4] = 1;
    for (so, says) in [
        (
            b"\0asm\x01\0\0\0".to_vec(),
            "a WebAssembly module, not an Envoy dynamic module",
        ),
        (b"#!/bin/sh\n".to_vec(), "no \\x7fELF magic"),
        (b"\x7fELF".to_vec(), "truncated"),
        (bits32, "32-bit"),
        (big_endian, "big-endian"),
        (elf(2, 62, SYMBOLS), "an executable"),
        (elf(1, 62, SYMBOLS), "a relocatable object"),
        (
            elf(3, 243, SYMBOLS),
            "ELF machine 243 is not one the image knows",
        ),
        (
            elf(3, 62, b"\0envoy_dynamic_module_on_program_init_not\0"),
            "no envoy_dynamic_module_on_program_init",
        ),
        (elf(3, 62, b""), "not an Envoy dynamic module"),
    ] {
        let e = inspect_native(&so).unwrap_err();
        assert!(e.contains(says), "{says}: {e}");
        let dir = std::env::temp_dir().join(format!("bpw-oci-refused-{}", std::process::id()));
        assert!(build_native(&so, &dir, "v1").is_err());
        assert!(!dir.exists(), "nothing is written for a refused file");
    }
    let e = build(&elf(3, 62, SYMBOLS), Path::new("/nonexistent"), "v1").unwrap_err();
    assert!(e.to_string().contains("--native"), "{e}");
}
