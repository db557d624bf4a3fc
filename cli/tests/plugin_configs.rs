//! The proxy endpoints published Backstage plugins document, as their
//! READMEs print them (`examples/app-config/plugins/`, each file naming its
//! source): `check` takes every one, with the variables they name set and
//! with none set, as a platform team pastes them before the secrets exist
//! (`docs/migration.md#what-published-plugins-use`).

mod common;

use std::path::{Path, PathBuf};

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

/// Whether the tool takes the endpoint option `auth` (http-proxy's basic
/// auth) yet; the snippets that use it are checked against the answer.
fn auth_supported(dir: &Path) -> bool {
    let probe = write(
        dir,
        "auth-probe.yaml",
        "proxy:\n  endpoints:\n    /p:\n      target: https://h.example.com\n      auth: 'user:password'\n",
    );
    let o = run_cli(&["check", &probe], &[], None);
    if o.status.success() {
        return true;
    }
    let err = stderr(&o);
    assert!(
        err.contains("proxy.endpoints./p.auth: unknown key 'auth'"),
        "the probe failed for another reason:\n{err}"
    );
    false
}

#[test]
fn check_takes_every_published_snippet_with_and_without_its_variables() {
    let dir = backstage_proxy_testkit::TempDir::new("plugin-configs");
    let auth = auth_supported(&dir.0);
    let mut checked = 0;
    for file in snippets() {
        let text = std::fs::read_to_string(&file).unwrap();
        let path = file.display().to_string();
        let uses_auth = text.lines().any(|l| l.trim_start().starts_with("auth:"));
        let names = variables(&text);
        let set: Vec<(&str, &str)> = names
            .iter()
            .map(|n| (n.as_str(), "placeholder-secret-0123"))
            .collect();
        for env in [&set[..], &[][..]] {
            let o = run_cli(&["check", &path], env, None);
            let err = stderr(&o);
            if uses_auth && !auth && !env.is_empty() {
                // Until the endpoint option `auth` lands, the only thing the
                // tool may refuse in such a snippet is that key. (With its
                // variable unset, `auth` is absent, as in Backstage.)
                assert_eq!(o.status.code(), Some(1), "{path}: {err}");
                let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
                assert!(
                    !errors.is_empty()
                        && errors
                            .iter()
                            .all(|l| l.contains(".auth: unknown key 'auth'")),
                    "{path}: {err}"
                );
                eprintln!("{path}: needs the endpoint option `auth`, refused until it lands");
                continue;
            }
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
