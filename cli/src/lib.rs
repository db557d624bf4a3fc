//! The command-line tool's library: reading app-config as Backstage does
//! ([`appconfig`]), writing gateway configurations ([`render`]), and the
//! compat OCI image ([`oci`]). `main.rs` parses arguments and calls these.

pub mod appconfig;
pub mod oci;
pub mod render;
