//! What the commands share: app-config files (and standard input) read and
//! loaded with every warning and error on standard error, each once, and
//! YAML documents written to a file or standard output.

use std::io::{Read, Write};
use std::process::ExitCode;

use backstage_proxy_wasm_cli::appconfig::{self, ConfigFile, LoadError, Loaded};

/// What reading and loading the files found.
pub struct Gathered {
    /// The loaded app-config, when every file could be read.
    pub loaded: Option<Loaded>,
    pub errors: Vec<LoadError>,
    pub warnings: Vec<LoadError>,
}

/// Every file read; every file that cannot be read or parsed is an error
/// (all of them, not only the first).
fn read_sources(files: &[String]) -> (Vec<ConfigFile>, Vec<LoadError>) {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        let name = if f == "-" { "<stdin>" } else { f.as_str() };
        let text = if f == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map(|_| s)
        } else {
            std::fs::read_to_string(f)
        };
        let parsed = text
            .map_err(|e| LoadError {
                file: if f == "-" { "-".to_string() } else { f.clone() },
                message: e.to_string(),
                ..LoadError::default()
            })
            .and_then(|text| appconfig::load_yaml(name, &text));
        match parsed {
            Ok(s) => sources.push(s),
            Err(e) => errors.push(e),
        }
    }
    (sources, errors)
}

/// Reads, loads and validates, printing nothing.
pub fn gather(files: &[String]) -> Gathered {
    let (mut sources, mut errors) = read_sources(files);
    let vars: Vec<(String, String)> = std::env::vars().collect();
    match appconfig::env_overrides(&vars) {
        Ok(Some(overrides)) => sources.push(overrides),
        Ok(None) => {}
        Err(e) => errors.push(e),
    }
    if !errors.is_empty() {
        return Gathered {
            loaded: None,
            errors,
            warnings: Vec::new(),
        };
    }
    let env = |name: &str| std::env::var(name).ok();
    let loaded = appconfig::load(&sources, &env);
    Gathered {
        errors: loaded.errors.clone(),
        warnings: loaded.warnings.clone(),
        loaded: Some(loaded),
    }
}

/// Each warning, then each error (a YAML syntax error with its line and a
/// caret), on standard error, and how many errors there were.
pub fn print_findings(g: &Gathered) {
    for w in &g.warnings {
        eprintln!("warning: {w}");
    }
    for e in &g.errors {
        eprintln!("error: {e}");
        if let Some(excerpt) = &e.excerpt {
            eprintln!("{excerpt}");
        }
    }
    if !g.errors.is_empty() {
        eprintln!("{} error(s)", g.errors.len());
    }
}

/// Loads and validates; every warning and error goes to standard error,
/// once.
pub fn load(files: &[String]) -> Result<Loaded, ExitCode> {
    let g = gather(files);
    print_findings(&g);
    match g.loaded {
        Some(l) if g.errors.is_empty() => Ok(l),
        _ => Err(ExitCode::from(1)),
    }
}

/// Prints each of `warnings` once, in order, skipping any printed already
/// by `load`.
pub fn warn_once(warnings: &[String]) {
    let mut seen: Vec<&String> = Vec::new();
    for w in warnings {
        if !seen.contains(&w) {
            seen.push(w);
            eprintln!("warning: {w}");
        }
    }
}

/// Writes `text` to `output` (standard output for none or `-`).
pub fn write_out(output: Option<&str>, text: &str) -> ExitCode {
    match output {
        None | Some("-") => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(format!("{path}: {e}")),
        },
    }
}

/// Says what went wrong; exit code 1.
pub fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(1)
}
