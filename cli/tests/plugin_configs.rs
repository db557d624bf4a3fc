//! The proxy endpoints published Backstage plugins document, as their
//! READMEs print them (`examples/app-config/plugins/`, each file naming its
//! source): `check` takes every one, with the variables they name set and
//! with none set, as a platform team pastes them before the secrets exist
//! (`docs/migration.md#what-published-plugins-use`).

mod common;

use std::path::PathBuf;

use backstage_proxy_testkit::repo_root;
use common::*;

/// The published snippets, in their directory.
fn snippets() -> Vec<PathBuf> {
    let dir = repo_root().join("examples/app-config/plugins");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected the published snippets in {}",
        dir.display()
    );
    files
}

/// The variables a snippet reads: `${NAME}` and `$env: NAME`, outside
/// comments.
fn variables(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or_default();
        if line.trim_start().starts_with('#') {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("${") {
            let tail = &rest[i + 2..];
            let end = tail.find('}').expect("an unclosed ${ in a snippet");
            names.push(tail[..end].trim().to_string());
            rest = &tail[end..];
        }
        if let Some(v) = line.trim().strip_prefix("$env:") {
            names.push(v.trim().to_string());
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn check_takes_every_published_snippet_with_and_without_its_variables() {
    let mut checked = 0;
    for file in snippets() {
        let text = std::fs::read_to_string(&file).unwrap();
        let path = file.display().to_string();
        let names = variables(&text);
        let set: Vec<(&str, &str)> = names
            .iter()
            .map(|n| (n.as_str(), "placeholder-secret-0123"))
            .collect();
        for env in [&set[..], &[][..]] {
            let o = run_cli(&["check", &path], env, None);
            let err = stderr(&o);
            assert!(
                o.status.success(),
                "{path} (variables set: {}):\n{err}",
                !env.is_empty()
            );
            assert!(
                stdout(&o).trim().starts_with("OK: 1 endpoint(s)"),
                "{path}: {}",
                stdout(&o)
            );
            // No secret a variable holds is ever printed.
            assert!(!err.contains("placeholder-secret-0123"), "{path}: {err}");
            assert!(!stdout(&o).contains("placeholder-secret-0123"), "{path}");
        }
        checked += 1;
    }
    assert!(checked >= 5, "{checked} snippets checked");
}

#[test]
fn a_published_secure_false_is_warned_about() {
    // Argo CD's README turns certificate checks off for a self-signed
    // instance; the tool takes it and says what it turns off.
    let file = repo_root().join("examples/app-config/plugins/argo-cd.yaml");
    let path = file.display().to_string();
    let o = run_cli(
        &["check", &path],
        &[("ARGOCD_AUTH_TOKEN", "argocd.token=x")],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("proxy./argocd/api.secure: false turns off certificate verification"),
        "{}",
        stderr(&o)
    );
}
