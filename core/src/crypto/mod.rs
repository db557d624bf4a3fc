//! Signature arithmetic we keep as our own code, each for a measured reason
//! given in its module documentation.

pub mod ed25519;
pub mod rsa;
