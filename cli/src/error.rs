//! Why a gateway configuration could not be written: the one error every
//! output returns.

/// Why a gateway configuration could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The app-config did not validate (its errors were reported by `load`).
    InvalidConfiguration,
    /// Two destinations would need the same Envoy cluster name.
    ClusterConflict(String),
    /// The filter configuration could not be serialised.
    Serialise(String),
    /// The gateway cannot carry what the configuration asks for.
    Unsupported(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidConfiguration => f.write_str("the configuration is not valid"),
            Error::ClusterConflict(m) | Error::Serialise(m) | Error::Unsupported(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for Error {}
