//! What the unit tests share: app-config from YAML text, loaded and
//! checked.

use crate::appconfig::{load, load_yaml, ConfigFile, Loaded};

/// One app-config file from YAML text.
pub(crate) fn src(name: &str, yaml: &str) -> ConfigFile {
    load_yaml(name, yaml).unwrap()
}

/// One app-config file, loaded without errors.
pub(crate) fn loaded(yaml: &str) -> Loaded {
    let l = load(&[load_yaml("a.yaml", yaml).unwrap()], &|_| None);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    l
}
