//! What the native module's image needs to know about the `.so`: that it
//! is an Envoy dynamic module (a 64-bit little-endian ELF shared object
//! whose symbols include the ABI's entry point), and the platform it runs
//! on, read from the ELF header's machine field. No ELF parser: the
//! header's fixed fields say all the image needs, and the entry point's
//! name is looked for in the file's bytes.

/// The file name at the image's root: what Envoy's `name: backstage_proxy`
/// looks for in `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`.
pub const NATIVE_FILE: &str = "libbackstage_proxy.so";

/// The symbol every Envoy dynamic module exports (Envoy calls it first).
const ENTRY_POINT: &[u8] = b"envoy_dynamic_module_on_program_init\0";

/// The image configuration's platform (OCI / Go names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub architecture: &'static str,
    pub os: &'static str,
}

/// The ELF machines the image knows: `e_machine` → OCI architecture.
const MACHINES: [(u16, &str, &str); 2] = [(62, "x86_64", "amd64"), (183, "aarch64", "arm64")];

fn u16_le(data: &[u8], at: usize) -> Option<u16> {
    let b: [u8; 2] = data.get(at..at + 2)?.try_into().ok()?;
    Some(u16::from_le_bytes(b))
}

/// The platform of an Envoy dynamic module, or why `so` is not one.
pub fn inspect_native(so: &[u8]) -> Result<Platform, String> {
    if so.starts_with(b"\0asm") {
        return Err(
            "a WebAssembly module, not an Envoy dynamic module: build its image with --wasm".into(),
        );
    }
    if !so.starts_with(b"\x7fELF") {
        return Err(format!(
            "not an ELF shared object (no \\x7fELF magic): --native takes the Envoy dynamic module `make native` builds (build/{NATIVE_FILE})"
        ));
    }
    // e_ident[EI_CLASS] (4) and [EI_DATA] (5): 64-bit, little-endian.
    match (so.get(4), so.get(5)) {
        (Some(2), Some(1)) => {}
        (Some(1), _) => return Err("a 32-bit ELF file: Envoy's dynamic modules are 64-bit".into()),
        (_, Some(2)) => {
            return Err("a big-endian ELF file: the image knows x86_64 and aarch64 only".into())
        }
        _ => return Err("a truncated or malformed ELF header".into()),
    }
    let kind = u16_le(so, 16).ok_or("a truncated ELF header")?;
    if kind != 3 {
        let what = match kind {
            1 => "a relocatable object",
            2 => "an executable",
            4 => "a core dump",
            _ => "not a shared object",
        };
        return Err(format!(
            "ELF type {kind} ({what}): an Envoy dynamic module is a shared object (ET_DYN)"
        ));
    }
    let machine = u16_le(so, 18).ok_or("a truncated ELF header")?;
    let Some((_, _, architecture)) = MACHINES.iter().find(|(m, _, _)| *m == machine) else {
        let known: Vec<String> = MACHINES
            .iter()
            .map(|(m, name, arch)| format!("{m} {name} → {arch}"))
            .collect();
        return Err(format!(
            "ELF machine {machine} is not one the image knows ({})",
            known.join(", ")
        ));
    };
    if !so.windows(ENTRY_POINT.len()).any(|w| w == ENTRY_POINT) {
        return Err(
            "no envoy_dynamic_module_on_program_init symbol: an ELF shared object (or a position-independent executable), but not an Envoy dynamic module"
                .into(),
        );
    }
    Ok(Platform {
        architecture,
        os: "linux",
    })
}
