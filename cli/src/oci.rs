//! The distributable images, written as OCI image layouts: the "compat"
//! Wasm image Istio's `WasmPlugin`, Envoy Gateway and Kuadrant pull (one
//! `tar+gzip` layer containing `plugin.wasm`), and the native module's
//! image (one layer holding `libbackstage_proxy.so` at its root, mode
//! 0755, for a Kubernetes image volume or a `COPY --from`;
//! docs/native.md#getting-the-module-into-envoy). Both are built
//! reproducibly: the same input always gives the same manifest digest.

use std::io::{self, Write};
use std::path::Path;

use serde_json::{json, Value};

mod native;
pub use native::{inspect_native, Platform, NATIVE_FILE};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

pub fn sha256_hex(data: &[u8]) -> String {
    hmac_sha256::Hash::hash(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A ustar archive with one regular file, every variable field fixed
/// (mtime 0, uid/gid 0, the given mode, no user or group names), written
/// by the `tar` crate.
pub fn tar_one_file(name: &str, data: &[u8], mode: u32) -> io::Result<Vec<u8>> {
    let mut header = tar::Header::new_ustar();
    header.set_path(name)?;
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, data)?;
    builder.into_inner()
}

/// gzip with a fixed header (no name, mtime 0) and level.
pub fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::new(9));
    enc.write_all(data)?;
    enc.finish()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `sha256:<hex>` of the manifest: what Istio's `sha256` field takes,
    /// and what pins the image (`REF@sha256:…`).
    pub manifest_digest: String,
    pub layer_digest: String,
    pub config_digest: String,
    /// The SHA-256 (hex) of the one file the image holds (`sha256sum`'s),
    /// to check the module a node ends up with.
    pub file_sha256: String,
}

/// What one image holds and says about itself.
struct Contents<'a> {
    /// The file's name at the image's root, its bytes and its mode.
    file: &'a str,
    data: &'a [u8],
    mode: u32,
    /// The image configuration's `architecture` and `os`.
    architecture: &'a str,
    os: &'a str,
    /// The manifest's annotations, if any.
    annotations: Option<Value>,
}

fn write_blob(dir: &Path, data: &[u8]) -> io::Result<String> {
    let hex = sha256_hex(data);
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs)?;
    std::fs::write(blobs.join(&hex), data)?;
    Ok(format!("sha256:{hex}"))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Writes the Wasm image layout to `dir` (replacing what was there) under
/// `tag`.
pub fn build(wasm: &[u8], dir: &Path, tag: &str) -> io::Result<Image> {
    if wasm.starts_with(b"\x7fELF") {
        return Err(invalid(
            "an ELF file, not a WebAssembly module: build the native module's image with --native"
                .into(),
        ));
    }
    if !wasm.starts_with(b"\0asm") {
        return Err(invalid("not a WebAssembly module (no \\0asm magic)".into()));
    }
    write_layout(
        &Contents {
            file: "plugin.wasm",
            data: wasm,
            mode: 0o644,
            architecture: "wasm",
            os: "wasip1",
            annotations: Some(json!({ "module.wasm.image/variant": "compat" })),
        },
        dir,
        tag,
    )
}

/// Writes the native module's image layout to `dir` (replacing what was
/// there) under `tag`: `libbackstage_proxy.so` at the root, mode 0755, the
/// platform read from the ELF header. Anything but a 64-bit little-endian
/// ELF shared object of a known machine that exports the dynamic-module
/// entry point is refused.
pub fn build_native(so: &[u8], dir: &Path, tag: &str) -> io::Result<Image> {
    let platform = inspect_native(so).map_err(invalid)?;
    write_layout(
        &Contents {
            file: NATIVE_FILE,
            data: so,
            mode: 0o755,
            architecture: platform.architecture,
            os: platform.os,
            annotations: None,
        },
        dir,
        tag,
    )
}

fn write_layout(c: &Contents, dir: &Path, tag: &str) -> io::Result<Image> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let tar = tar_one_file(c.file, c.data, c.mode)?;
    let layer = gzip(&tar)?;
    let layer_digest = write_blob(dir, &layer)?;
    let config = json!({
        "architecture": c.architecture,
        "os": c.os,
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&tar))] }
    });
    let config = serde_json::to_vec(&config).map_err(io::Error::other)?;
    let config_digest = write_blob(dir, &config)?;
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": { "mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config.len() },
        "layers": [{ "mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest, "size": layer.len() }],
    });
    if let (Some(a), Some(m)) = (&c.annotations, manifest.as_object_mut()) {
        m.insert("annotations".to_string(), a.clone());
    }
    let manifest = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    let manifest_digest = write_blob(dir, &manifest)?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": tag }
        }]
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).map_err(io::Error::other)?,
    )?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    Ok(Image {
        manifest_digest,
        layer_digest,
        config_digest,
        file_sha256: sha256_hex(c.data),
    })
}

/// One regular file of a tar archive: its name, permission bits and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarFile {
    pub name: String,
    pub mode: u32,
    pub data: Vec<u8>,
}

/// The files of a tar archive (regular files only), for checking a layer.
pub fn untar(data: &[u8]) -> io::Result<Vec<TarFile>> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(data);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = entry.path()?.to_string_lossy().into_owned();
        let mode = entry.header().mode()?;
        let mut body = Vec::new();
        entry.read_to_end(&mut body)?;
        out.push(TarFile {
            name,
            mode,
            data: body,
        });
    }
    Ok(out)
}

pub fn gunzip(data: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
