//! The house stays readable (`docs/development.md#layout`): no Rust source
//! file in the workspace over 600 lines, and no function of shipped code
//! (the filter, the core, the tool; tests aside) over about 80 lines.

use std::path::{Path, PathBuf};

mod common;

const MAX_FILE_LINES: usize = 600;
/// "About 80": a function a screen and a bit long.
const MAX_FN_LINES: usize = 90;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A test file: named `tests.rs`, under a `tests` directory, or a crate's
/// integration tests, benches or fuzz targets.
fn is_test(path: &Path) -> bool {
    path.components().any(|c| {
        matches!(
            c.as_os_str().to_str(),
            Some("tests" | "benches" | "fuzz" | "testkit" | "bench")
        )
    }) || path
        .file_name()
        .is_some_and(|n| n == "tests.rs" || n == "test_support.rs")
}

/// `(name, first line, length)` of every `fn` with a body in `text`: from
/// its signature to the `}` at its own indentation.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let signature = trimmed
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ")
            .trim_start_matches("const ")
            .trim_start_matches("unsafe ")
            .trim_start_matches("extern \"C\" ");
        let Some(rest) = signature.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // A declaration without a body (an `extern` block's): its
        // signature ends with `;` before any `{`.
        let declared = lines
            .iter()
            .skip(i)
            .find(|l| l.contains('{') || l.trim_end().ends_with(';'))
            .is_some_and(|l| !l.contains('{'));
        if declared {
            continue;
        }
        let close = " ".repeat(indent) + "}";
        let end = lines
            .iter()
            .enumerate()
            .skip(i)
            .find(|(_, l)| {
                l.trim_end() == close
                    || (l.trim_end().ends_with(';') && l.trim_start().starts_with(signature))
            })
            .map(|(j, _)| j);
        if let Some(end) = end {
            out.push((name, i + 1, end - i + 1));
        }
    }
    out
}

#[test]
fn no_file_over_600_lines_and_no_shipped_function_over_about_80() {
    let root = root();
    let mut files = Vec::new();
    for dir in [
        "src",
        "core",
        "cli",
        "native",
        "testkit",
        "tests",
        "benches",
        "fuzz/fuzz_targets",
    ] {
        common::files_below(
            &root.join(dir),
            &|p| p.extension().is_some_and(|x| x == "rs"),
            &mut files,
        );
    }
    assert!(files.len() > 50, "the sources were found: {}", files.len());
    let mut long = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let rel = file.strip_prefix(&root).unwrap();
        let n = text.lines().count();
        if n > MAX_FILE_LINES {
            long.push(format!("{}: {n} lines", rel.display()));
        }
        if is_test(rel) {
            continue;
        }
        for (name, at, len) in functions(&text) {
            if len > MAX_FN_LINES {
                long.push(format!("{}:{at}: fn {name} is {len} lines", rel.display()));
            }
        }
    }
    assert!(long.is_empty(), "split these:\n{}", long.join("\n"));
}

#[test]
fn the_function_reader_measures_what_it_should() {
    let text = "fn a() {\n    x();\n}\n\n    pub(crate) fn b(\n        y: u8,\n    ) -> u8 {\n        y\n    }\nfn c();\nextern \"C\" {\n    fn d(\n        p: [u8; 2],\n    ) -> u8;\n    fn e(q: u8);\n}\nfn g() {\n}\n";
    let f = functions(text);
    assert_eq!(f[0], ("a".to_string(), 1, 3));
    assert_eq!(f[1], ("b".to_string(), 5, 5));
    // declarations without a body (`c`, an extern block's `d`, `e`) are none
    assert_eq!(f[2], ("g".to_string(), 17, 2));
    assert_eq!(f.len(), 3);
    assert!(is_test(Path::new("core/src/x/tests.rs")) && !is_test(Path::new("core/src/x.rs")));
}
