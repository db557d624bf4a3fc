//! `--kustomize DIR`: a Kustomize base (`kubectl apply -k DIR`) with the
//! resources and the `Secret` the gateway's pods read the VM's variables
//! from, as a `secretGenerator` over an env file the operator fills
//! (`docs/deploying.md#a-kustomize-base`). No value is written unless
//! asked for (`--secret-values-from-env`); an env file already there is
//! kept, with the keys it lacks added empty.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};

use super::common::{labels, KubeOptions};
use super::secrets::{istio_deployment_patch, pod_namespace};
use crate::appconfig::Loaded;
use crate::error::Error;

/// The resources' file in the base.
pub const RESOURCES_FILE: &str = "resources.yaml";
/// A classic Istio gateway's `Deployment` patch, as a Kustomize
/// `Component` (a directory with its `kustomization.yaml` and
/// [`DEPLOYMENT_PATCH_FILE`]): that `Deployment` is Helm's or istioctl's,
/// not the base's, and Kustomize reads a patch file only from inside the
/// kustomization that lists it, while a `Component` may be anywhere.
pub const DEPLOYMENT_PATCH_DIR: &str = "gateway-deployment";
/// The patch inside [`DEPLOYMENT_PATCH_DIR`].
pub const DEPLOYMENT_PATCH_FILE: &str = "patch.yaml";

/// What was written, and what the operator still has to do.
#[derive(Debug, Default)]
pub struct Written {
    /// File names, relative to the directory.
    pub files: Vec<String>,
    pub notes: Vec<String>,
}

/// Where `--secret-values-from-env` takes the values from (the process's
/// environment); `None` writes no value.
pub type Values<'a> = Option<&'a dyn Fn(&str) -> Option<String>>;

/// The env file of the `Secret`: `<secret-name>.env`.
pub fn env_file_name(opts: &KubeOptions) -> String {
    format!("{}.env", opts.secret_name)
}

/// Writes the base into `dir`: `kustomization.yaml`, [`RESOURCES_FILE`],
/// and with VM variables the env file, a `.gitignore` for it and (classic
/// Istio, `istio_classic`) the [`DEPLOYMENT_PATCH_DIR`] component.
pub fn write(
    dir: &Path,
    docs: &[Value],
    loaded: &Loaded,
    opts: &KubeOptions,
    istio_classic: bool,
    values: Values,
) -> Result<Written, Error> {
    let io =
        |path: &Path, e: std::io::Error| Error::Unsupported(format!("{}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut out = Written::default();
    let mut put = |name: &str, text: &str| -> Result<(), Error> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        out.files.push(name.to_string());
        Ok(())
    };
    put(RESOURCES_FILE, &yaml(docs, true)?)?;
    put(
        "kustomization.yaml",
        &yaml(&[kustomization(loaded, opts)], false)?,
    )?;
    if loaded.vm_vars.is_empty() {
        return Ok(out);
    }
    let env_name = env_file_name(opts);
    put(
        ".gitignore",
        &format!("# The Secret's values: never commit them.\n{env_name}\n"),
    )?;
    if istio_classic {
        if let Some(patch) = istio_deployment_patch(loaded, opts) {
            let component = dir.join(DEPLOYMENT_PATCH_DIR);
            std::fs::create_dir_all(&component).map_err(|e| io(&component, e))?;
            let patch_file = format!("{DEPLOYMENT_PATCH_DIR}/{DEPLOYMENT_PATCH_FILE}");
            put(&patch_file, &yaml(&[patch], false)?)?;
            let k = json!({
                "apiVersion": "kustomize.config.k8s.io/v1alpha1",
                "kind": "Component",
                "patches": [{ "path": DEPLOYMENT_PATCH_FILE }]
            });
            put(
                &format!("{DEPLOYMENT_PATCH_DIR}/kustomization.yaml"),
                &yaml(&[k], false)?,
            )?;
            out.notes.push(format!(
                "{}: the ingress gateway's Deployment is not in the base; list this directory under `components:` in the kustomization that holds that Deployment, or patch it (kubectl -n {} patch deployment {} --patch-file {})",
                component.display(),
                opts.namespace,
                opts.gateway_deployment,
                dir.join(&patch_file).display()
            ));
        }
    }
    let env_path = dir.join(&env_name);
    let (text, empty) = env_file(&env_path, &loaded.vm_vars, values)?;
    write_private(&env_path, &text).map_err(|e| io(&env_path, e))?;
    out.files.push(env_name);
    if !empty.is_empty() {
        out.notes.push(format!(
            "{}: fill in {} (one KEY=value a line) before `kubectl apply -k {}`",
            env_path.display(),
            empty.join(", "),
            dir.display()
        ));
    }
    Ok(out)
}

/// `kustomization.yaml`: the resources, and the `Secret` from the env file
/// in the gateway pods' namespace, its name kept as is (the pods name it;
/// restart them after changing a value), with the tool's labels.
fn kustomization(loaded: &Loaded, opts: &KubeOptions) -> Value {
    let mut k = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [RESOURCES_FILE]
    });
    if !loaded.vm_vars.is_empty() {
        crate::json::set(
            &mut k,
            "secretGenerator",
            json!([{
                "name": opts.secret_name,
                "namespace": pod_namespace(opts),
                "envs": [env_file_name(opts)],
                "options": { "disableNameSuffixHash": true, "labels": labels() }
            }]),
        );
    }
    k
}

/// The env file's text, and the keys left empty. Without `values`, an
/// existing file is kept as it is, with a line `KEY=` added for each key it
/// lacks; with them, every line is `KEY=value`, and a variable that is
/// unset, or whose value would not survive the format (a line break), is an
/// error naming it.
fn env_file(path: &Path, vars: &[String], values: Values) -> Result<(String, Vec<String>), Error> {
    let header = "# The values of the Secret the gateway's pods read (KEY=value, one a line).\n";
    if let Some(get) = values {
        let mut text = header.to_string();
        for v in vars {
            let value = get(v).ok_or_else(|| {
                Error::Unsupported(format!(
                    "--secret-values-from-env: {v} is not set in the environment"
                ))
            })?;
            if value.contains(['\n', '\r']) {
                return Err(Error::Unsupported(format!("--secret-values-from-env: the value of {v} has a line break, which an env file cannot hold; write that key of the Secret yourself")));
            }
            text.push_str(&format!("{v}={value}\n"));
        }
        return Ok((text, Vec::new()));
    }
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => header.to_string(),
        Err(e) => return Err(Error::Unsupported(format!("{}: {e}", path.display()))),
    };
    let mut present = BTreeSet::new();
    let mut empty = Vec::new();
    for line in existing.lines().map(str::trim_start) {
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            present.insert(k.trim().to_string());
            if v.is_empty() && vars.iter().any(|x| x == k.trim()) {
                empty.push(k.trim().to_string());
            }
        }
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for v in vars.iter().filter(|v| !present.contains(*v)) {
        text.push_str(&format!("{v}=\n"));
        empty.push(v.clone());
    }
    Ok((text, empty))
}

/// Writes a file only its owner can read (it holds, or will hold, secret
/// values).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    options.open(path)?.write_all(text.as_bytes())
}

/// Documents as YAML (`---` between them when `separated`).
fn yaml(docs: &[Value], separated: bool) -> Result<String, Error> {
    crate::json::yaml_documents("", docs, separated).map_err(Error::Serialise)
}

#[cfg(test)]
mod tests;
