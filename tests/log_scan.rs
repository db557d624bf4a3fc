//! `docs/security.md` L02: no token, secret or injected header value in any
//! Envoy log of the whole end-to-end suite, run with the filter's logging at
//! debug. `make test` runs the suite with `BPW_LOG_DIR` set (the harness
//! keeps every Envoy's log there and records every secret it handed to the
//! gateway in `secrets.txt`), then runs this scan over what it left.

use std::path::PathBuf;

/// The start of a JWS: a base64url JSON object (`{"`) and a dot.
fn jwt_shaped(line: &str) -> Option<&str> {
    let at = line.find("eyJ")?;
    let rest = &line[at..];
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    let candidate = &rest[..len];
    (candidate.len() > 10 && candidate.contains('.')).then_some(candidate)
}

#[test]
#[ignore = "run by `make test` after the end-to-end suite, over the logs it kept"]
fn no_secret_in_any_envoy_log_of_the_suite() {
    let dir = PathBuf::from(
        std::env::var_os("BPW_LOG_DIR").expect("BPW_LOG_DIR: the directory the suite logged to"),
    );
    let secrets: Vec<String> = std::fs::read_to_string(dir.join("secrets.txt"))
        .expect("secrets.txt: the suite recorded no secret; did it run with BPW_LOG_DIR?")
        .lines()
        .map(str::to_string)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut logs = 0;
    let mut lines = 0;
    let mut filter_lines = 0;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("log") {
            continue;
        }
        logs += 1;
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        for line in text.lines() {
            lines += 1;
            // the Wasm filter's lines, or the native module's
            if line.contains("wasm log") || line.contains("backstage-proxy-native:") {
                filter_lines += 1;
            }
            for s in &secrets {
                if line.contains(s.as_str()) {
                    found.push(format!("{}: secret {:.6}…: {line}", path.display(), s));
                }
            }
            if let Some(j) = jwt_shaped(line) {
                found.push(format!("{}: JWT-shaped {:.12}…: {line}", path.display(), j));
            }
        }
    }
    eprintln!(
        "scanned {logs} Envoy logs, {lines} lines ({filter_lines} from the filter), for {} secrets",
        secrets.len()
    );
    // the scan must have had something to scan: the suite starts dozens of
    // Envoys and hands them hundreds of tokens, and the filter logs denials
    assert!(logs >= 20, "only {logs} logs in {}", dir.display());
    assert!(
        secrets.len() >= 50,
        "only {} secrets recorded",
        secrets.len()
    );
    assert!(filter_lines >= 100, "only {filter_lines} filter log lines");
    assert!(
        found.is_empty(),
        "secrets in Envoy logs:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_jwt_detector_finds_tokens_and_ignores_text() {
    assert!(jwt_shaped("x eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.sig y").is_some());
    assert!(
        jwt_shaped("[wasm log backstage_proxy] denied: invalid_token endpoint=/simple").is_none()
    );
}
