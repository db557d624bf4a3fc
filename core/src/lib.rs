//! Backstage's proxy plugin rules as a pure library: no proxy-wasm host, no
//! YAML, no clock of its own. The filter (the workspace's root package)
//! feeds it requests and carries out what it returns; the command-line tool
//! validates configurations with the same code.
//!
//! - [`config`]: JSON → validated, immutable [`config::Plan`].
//! - [`routing`]: path safety, endpoint match, rewrite, target join.
//! - [`headers`]: request and response allow-lists, injection.
//! - [`auth`]: token extraction, the token kinds, key sets, verified tokens.
//! - [`decision`]: one request's headers in, what to do with it out.
//! - [`cors`]: Backstage's CORS answers, origins as minimatch globs.
//! - [`reply`]: Backstage's local replies and reason codes.
//! - [`crypto`]: the verifiers no well-kept crate does for us.

pub mod access;
pub mod ascii;
pub mod audit;
pub mod auth;
pub mod base64;
pub mod callout;
pub mod config;
pub mod cors;
pub mod crypto;
pub mod decision;
pub mod fasthash;
pub mod headers;
pub mod identity;
pub mod path;
pub mod permission;
pub mod ratelimit;
pub mod reply;
pub mod routing;
pub mod shared_data;
pub mod url;
pub mod vm_slot;
