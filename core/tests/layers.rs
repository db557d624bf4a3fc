//! The core's modules depend one way (`docs/development.md#the-core-in-layers`):
//! each top-level module of `core/src` imports only from modules on a lower
//! layer, so there is no circle between them. Read from the source itself:
//! every `crate::<module>` path in code that is not a test (test modules
//! may reach up to build their fixtures).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Bottom first. A module may import only from the layers before its own.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "leaves",
        &[
            "ascii",
            "base64",
            "fasthash",
            "url",
            "reply",
            "crypto",
            "identity",
            "shared_data",
            "cors",
        ],
    ),
    ("readings", &["path", "audit", "vm_slot", "callout"]),
    ("permissions", &["permission"]),
    ("policies", &["access", "ratelimit"]),
    ("configuration", &["config"]),
    ("per request", &["auth", "routing", "headers"]),
    ("decision", &["decision"]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`, with the files of test modules left out: a
/// module is a test module when its parent declares it under `#[cfg(test)]`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(directory of the children, module name)` of every `#[cfg(test)] mod x;`.
fn test_modules(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for file in files {
        let text = fs::read_to_string(file).unwrap();
        let stem = file.file_stem().unwrap().to_str().unwrap();
        let children = if stem == "mod" || stem == "lib" {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        let mut cfg_test = false;
        for line in text.lines().map(str::trim) {
            if line == "#[cfg(test)]" {
                cfg_test = true;
                continue;
            }
            if cfg_test {
                if let Some(name) = line
                    .strip_prefix("mod ")
                    .or_else(|| line.strip_prefix("pub mod "))
                    .or_else(|| line.strip_prefix("pub(crate) mod "))
                    .and_then(|l| l.strip_suffix(';'))
                {
                    out.insert(children.join(format!("{name}.rs")));
                    out.insert(children.join(name));
                }
            }
            cfg_test = false;
        }
    }
    out
}

/// The top-level module a file belongs to.
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_str()
        .unwrap();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules `text` names through `crate::`, comments left out.
fn imports(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d::{e, f}}`: the first name of each item at
            // depth 0.
            let mut depth = 0;
            let mut items = vec![String::new()];
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => items.push(String::new()),
                    _ if depth == 0 => items.last_mut().unwrap().push(c),
                    _ => {}
                }
            }
            for item in items {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let tests = test_modules(&files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        if tests.iter().any(|t| file.starts_with(t)) {
            continue;
        }
        let module = module_of(file);
        if module == "lib" {
            continue;
        }
        let deps = imports(&fs::read_to_string(file).unwrap());
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(deps.into_iter().filter(|d| *d != module));
    }
    graph
}

fn rank(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// Every import that goes sideways or up, and every module in no layer.
fn violations(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut wrong = Vec::new();
    for (module, deps) in graph {
        let Some(own) = rank(module) else {
            wrong.push(format!("{module}: not in any layer (add it to LAYERS)"));
            continue;
        };
        for dep in deps {
            match rank(dep) {
                Some(r) if r < own => {}
                Some(r) => wrong.push(format!(
                    "{module} ({}) imports {dep} ({})",
                    LAYERS[own].0, LAYERS[r].0
                )),
                None => wrong.push(format!("{module} imports {dep}, which is in no layer")),
            }
        }
    }
    wrong
}

#[test]
fn every_module_imports_only_from_lower_layers() {
    let graph = graph();
    assert!(
        graph.len() >= 15,
        "the reader found too few modules: {:?}",
        graph.keys()
    );
    let wrong = violations(&graph);
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_import_reader_sees_every_form() {
    let text = "use crate::a::B;\n// crate::comment\nlet x = crate::c::d();\nuse crate::{e, f::g, h::{i, j}};";
    let want: BTreeSet<String> = ["a", "c", "e", "f", "h"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(imports(text), want);
}

#[test]
fn a_circle_or_a_sideways_import_is_caught() {
    for (from, to) in [
        ("url", "decision"),
        ("auth", "routing"),
        ("newcomer", "url"),
    ] {
        let mut graph = graph();
        graph
            .entry(from.to_string())
            .or_default()
            .insert(to.to_string());
        assert!(!violations(&graph).is_empty(), "{from} -> {to} passed");
    }
}
