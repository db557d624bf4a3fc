//! JSON Web Key Sets: parsed once per fetch into verification keys. Keys
//! that are malformed, of an unknown type or curve, meant for encryption, or
//! too weak are ignored; the others are used.

use jwt_simple::algorithms::{
    ECDSAP256PublicKeyLike, ECDSAP384PublicKeyLike, ES256PublicKey, ES384PublicKey,
    Ed25519PublicKey, EdDSAPublicKeyLike, PS256PublicKey, PS384PublicKey, PS512PublicKey,
    RS256PublicKey, RS384PublicKey, RS512PublicKey, RSAPublicKeyLike,
};
use jwt_simple::common::VerificationOptions;
use jwt_simple::prelude::{Duration, NoCustomClaims, UnixTimeStamp};
use serde_json::Value;

use crate::base64::decode_jws;

/// Public key material, by family.
#[derive(Debug, Clone)]
pub enum Material {
    P256(ES256PublicKey),
    P384(ES384PublicKey),
    /// An RSA key (at least 2048 bits), built once per algorithm it may
    /// verify (all six unless the JWK names one).
    Rsa(Box<RsaKeys>),
    Ed25519(Ed25519PublicKey),
}

#[derive(Debug, Clone, Default)]
pub struct RsaKeys {
    rs256: Option<RS256PublicKey>,
    rs384: Option<RS384PublicKey>,
    rs512: Option<RS512PublicKey>,
    ps256: Option<PS256PublicKey>,
    ps384: Option<PS384PublicKey>,
    ps512: Option<PS512PublicKey>,
}

impl RsaKeys {
    fn build(n: &[u8], e: &[u8], only: Option<&str>) -> Option<RsaKeys> {
        // Validates size and exponent once, so a weak key is ignored at load.
        RS256PublicKey::from_components(n, e).ok()?;
        let want = |alg: &str| only.is_none_or(|o| o == alg);
        Some(RsaKeys {
            rs256: want("RS256")
                .then(|| RS256PublicKey::from_components(n, e).ok())
                .flatten(),
            rs384: want("RS384")
                .then(|| RS384PublicKey::from_components(n, e).ok())
                .flatten(),
            rs512: want("RS512")
                .then(|| RS512PublicKey::from_components(n, e).ok())
                .flatten(),
            ps256: want("PS256")
                .then(|| PS256PublicKey::from_components(n, e).ok())
                .flatten(),
            ps384: want("PS384")
                .then(|| PS384PublicKey::from_components(n, e).ok())
                .flatten(),
            ps512: want("PS512")
                .then(|| PS512PublicKey::from_components(n, e).ok())
                .flatten(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The key's own `alg`, when it has one: tokens must then use exactly it.
    pub alg: Option<String>,
    pub material: Material,
}

#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
    /// How many keys of the document were ignored (malformed or unusable).
    pub ignored: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySetError {
    NotJson,
    NoKeysArray,
    NoUsableKey,
}

impl KeySetError {
    pub fn describe(self) -> &'static str {
        match self {
            KeySetError::NotJson => "response is not a JSON object",
            KeySetError::NoKeysArray => "response has no \"keys\" array",
            KeySetError::NoUsableKey => "no usable key in the set",
        }
    }
}

/// Parses a JWKS document. A set without a single usable key is an error,
/// so that it never replaces a good one.
pub fn parse_key_set(body: &[u8]) -> Result<KeySet, KeySetError> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| KeySetError::NotJson)?;
    let Value::Object(doc) = doc else {
        return Err(KeySetError::NotJson);
    };
    let Some(Value::Array(items)) = doc.get("keys") else {
        return Err(KeySetError::NoKeysArray);
    };
    let mut set = KeySet::default();
    for item in items {
        match parse_jwk(item) {
            Some(k) => set.keys.push(k),
            None => set.ignored += 1,
        }
    }
    if set.keys.is_empty() {
        return Err(KeySetError::NoUsableKey);
    }
    Ok(set)
}

fn field<'a>(o: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a str> {
    o.get(name).and_then(Value::as_str)
}

fn parse_jwk(v: &Value) -> Option<Jwk> {
    let o = v.as_object()?;
    // kid and alg, when present, must be strings.
    let kid = match o.get("kid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return None,
    };
    let alg = match o.get("alg") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return None,
    };
    if let Some(u) = o.get("use") {
        if u.as_str() != Some("sig") {
            return None;
        }
    }
    if let Some(ops) = o.get("key_ops") {
        let ops = ops.as_array()?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return None;
        }
    }
    let material = match field(o, "kty")? {
        "EC" => {
            let x = decode_jws(field(o, "x")?)?;
            let y = decode_jws(field(o, "y")?)?;
            let point = |len: usize| -> Option<Vec<u8>> {
                if x.len() != len || y.len() != len {
                    return None;
                }
                let mut p = Vec::with_capacity(1 + 2 * len);
                p.push(0x04);
                p.extend_from_slice(&x);
                p.extend_from_slice(&y);
                Some(p)
            };
            match field(o, "crv")? {
                "P-256" => Material::P256(ES256PublicKey::from_bytes(&point(32)?).ok()?),
                "P-384" => Material::P384(ES384PublicKey::from_bytes(&point(48)?).ok()?),
                _ => return None,
            }
        }
        "RSA" => {
            let n = decode_jws(field(o, "n")?)?;
            let e = decode_jws(field(o, "e")?)?;
            let only = match &alg {
                Some(a)
                    if matches!(
                        a.as_str(),
                        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512"
                    ) =>
                {
                    Some(a.as_str())
                }
                Some(_) => return None,
                None => None,
            };
            Material::Rsa(Box::new(RsaKeys::build(&n, &e, only)?))
        }
        "OKP" => {
            if field(o, "crv")? != "Ed25519" {
                return None;
            }
            let x = decode_jws(field(o, "x")?)?;
            if x.len() != 32 {
                return None;
            }
            Material::Ed25519(Ed25519PublicKey::from_bytes(&x).ok()?)
        }
        _ => return None,
    };
    let jwk = Jwk { kid, alg, material };
    // A key whose own alg does not fit its type is unusable.
    if let Some(a) = &jwk.alg {
        if !jwk.supports(a) {
            return None;
        }
    }
    Some(jwk)
}

impl Jwk {
    /// Whether this key may verify a token signed with `alg`.
    pub fn supports(&self, alg: &str) -> bool {
        let fits = match &self.material {
            Material::P256(_) => alg == "ES256",
            Material::P384(_) => alg == "ES384",
            Material::Rsa(_) => matches!(
                alg,
                "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512"
            ),
            Material::Ed25519(_) => alg == "EdDSA",
        };
        fits && self.alg.as_deref().is_none_or(|own| own == alg)
    }

    /// Verifies the token's signature with this key. Time claims are not
    /// checked here (the caller checks them with its own clock); `typ` is
    /// checked by the caller too, so it is passed through as expected.
    pub fn verify_signature(&self, token: &str, alg: &str, typ: Option<&str>) -> bool {
        if !self.supports(alg) {
            return false;
        }
        let options = VerificationOptions {
            // jwt-simple's own time checks are neutralised: an artificial
            // time of 0 with zero tolerance and future tokens accepted makes
            // every exp/nbf/iat pass; check_registered_claims decides.
            accept_future: true,
            time_tolerance: Some(Duration::from_secs(0)),
            artificial_time: Some(UnixTimeStamp::from_secs(0)),
            required_signature_type: typ.map(str::to_string),
            max_token_length: Some(crate::auth::extract::MAX_TOKEN_BYTES),
            ..VerificationOptions::default()
        };
        let o = Some(options);
        match &self.material {
            Material::P256(k) => k.verify_token::<NoCustomClaims>(token, o).is_ok(),
            Material::P384(k) => k.verify_token::<NoCustomClaims>(token, o).is_ok(),
            Material::Ed25519(k) => k.verify_token::<NoCustomClaims>(token, o).is_ok(),
            Material::Rsa(k) => match alg {
                "RS256" => k
                    .rs256
                    .as_ref()
                    .is_some_and(|k| k.verify_token::<NoCustomClaims>(token, o).is_ok()),
                "RS384" => k
                    .rs384
                    .as_ref()
                    .is_some_and(|k| k.verify_token::<NoCustomClaims>(token, o).is_ok()),
                "RS512" => k
                    .rs512
                    .as_ref()
                    .is_some_and(|k| k.verify_token::<NoCustomClaims>(token, o).is_ok()),
                "PS256" => k
                    .ps256
                    .as_ref()
                    .is_some_and(|k| k.verify_token::<NoCustomClaims>(token, o).is_ok()),
                "PS384" => k
                    .ps384
                    .as_ref()
                    .is_some_and(|k| k.verify_token::<NoCustomClaims>(token, o).is_ok()),
                "PS512" => k
                    .ps512
                    .as_ref()
                    .is_some_and(|k| k.verify_token::<NoCustomClaims>(token, o).is_ok()),
                _ => false,
            },
        }
    }
}

impl KeySet {
    /// Candidate keys for a token: by `kid` when it has one, else every
    /// key that supports the algorithm.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: &'a str,
    ) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.supports(alg) && (kid.is_none() || k.kid.as_deref() == kid))
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

#[cfg(test)]
mod tests;
