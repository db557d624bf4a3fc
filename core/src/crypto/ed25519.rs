//! Ed25519 keys of a key set, verified with `ed25519-dalek`'s
//! `verify_strict`: S must be canonical (S < L), and neither the key nor R
//! may have small order. That refuses every signature of the "Taming the
//! many EdDSAs" edge cases that jose (on Node's OpenSSL, Backstage's
//! verifier) refuses, and four that it accepts (small-order keys and R,
//! which no honest signer produces).

use ed25519_dalek::{Signature, VerifyingKey};

/// An Ed25519 public key, decoded when the key set loads.
#[derive(Clone)]
pub struct Ed25519Key {
    /// `None` when the encoding is not a point or the point has small
    /// order: such a key verifies nothing, but it stays in its set (its
    /// `kid` still names it).
    key: Option<VerifyingKey>,
}

impl std::fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Key")
            .field("usable", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

impl Ed25519Key {
    pub fn new(bytes: [u8; 32]) -> Ed25519Key {
        let key = VerifyingKey::from_bytes(&bytes)
            .ok()
            .filter(|k| !k.is_weak());
        Ed25519Key { key }
    }

    /// RFC 8032 §5.1.7, strictly (see the module's documentation).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let (Some(key), Ok(signature)) = (&self.key, <&[u8; 64]>::try_from(signature)) else {
            return false;
        };
        key.verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }
}

#[cfg(test)]
mod tests;
