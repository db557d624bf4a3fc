//! What the unit tests share: app-config from YAML text.

use crate::appconfig::{load_yaml, ConfigFile};

/// One app-config file from YAML text.
pub(crate) fn src(name: &str, yaml: &str) -> ConfigFile {
    load_yaml(name, yaml).unwrap()
}
