//! JSON Web Key Sets: parsed once per fetch into verification keys. Keys
//! that are malformed, of an unknown type or curve, meant for encryption, or
//! too weak are ignored; the others are used.

use jwt_simple::algorithms::{
    ECDSAP256PublicKeyLike, ECDSAP384PublicKeyLike, ES256PublicKey, ES384PublicKey, RS256PublicKey,
};
use jwt_simple::common::VerificationOptions;
use jwt_simple::prelude::{Duration, NoCustomClaims, UnixTimeStamp};
use serde_json::Value;

use crate::auth::jwt::Jwt;
use crate::base64::decode_jws;
use crate::crypto::ed25519::Ed25519Key;
use crate::crypto::rsa::{HashAlg, RsaPublicKey};

/// Public key material, by family.
#[derive(Debug, Clone)]
pub enum Material {
    P256(ES256PublicKey),
    P384(ES384PublicKey),
    /// An RSA key (2048 to 4096 bits), verified by our own code
    /// (crypto/rsa.rs) for RS256/384/512 and PS256/384/512.
    Rsa(Box<RsaPublicKey>),
    /// An Ed25519 key, verified strictly with ed25519-dalek (crypto/ed25519.rs).
    Ed25519(Ed25519Key),
}

/// jwt-simple's limit on the encoded header, kept for every algorithm.
const MAX_HEADER_B64: usize = 8192;

fn rsa_key(n: &[u8], e: &[u8]) -> Option<RsaPublicKey> {
    // jwt-simple's policy, as for every other key: 2048 to 4096 bits, a
    // usable exponent; a weak key is ignored at load.
    RS256PublicKey::from_components(n, e).ok()?;
    RsaPublicKey::new(n, e)
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
            // an RSA key whose own alg is not an RSA signature algorithm
            if alg.as_deref().is_some_and(|a| {
                !matches!(a, "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512")
            }) {
                return None;
            }
            Material::Rsa(Box::new(rsa_key(&n, &e)?))
        }
        "OKP" => {
            if field(o, "crv")? != "Ed25519" {
                return None;
            }
            let x = decode_jws(field(o, "x")?)?;
            Material::Ed25519(Ed25519Key::new(<[u8; 32]>::try_from(x.as_slice()).ok()?))
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

    /// Verifies the token's signature with this key: `jwt` is `token`
    /// already decoded. Time claims are not checked here (the caller checks
    /// them with its own clock); `typ` is checked by the caller too, so it
    /// is passed through as expected.
    pub fn verify_signature(
        &self,
        jwt: &Jwt<'_>,
        token: &str,
        alg: &str,
        typ: Option<&str>,
    ) -> bool {
        if !self.supports(alg) {
            return false;
        }
        match &self.material {
            Material::P256(k) => k
                .verify_token::<NoCustomClaims>(token, jwt_simple_options(typ))
                .is_ok(),
            Material::P384(k) => k
                .verify_token::<NoCustomClaims>(token, jwt_simple_options(typ))
                .is_ok(),
            Material::Ed25519(k) => {
                passes_gates(jwt, typ) && k.verify(jwt.signing_input.as_bytes(), &jwt.signature)
            }
            Material::Rsa(k) => passes_gates(jwt, typ) && verify_rsa(k, jwt, alg),
        }
    }
}

fn jwt_simple_options(typ: Option<&str>) -> Option<VerificationOptions> {
    Some(VerificationOptions {
        // jwt-simple's own time checks are neutralised: an artificial
        // time of 0 with zero tolerance and future tokens accepted makes
        // every exp/nbf/iat pass; check_registered_claims decides.
        accept_future: true,
        time_tolerance: Some(Duration::from_secs(0)),
        artificial_time: Some(UnixTimeStamp::from_secs(0)),
        required_signature_type: typ.map(str::to_string),
        max_token_length: Some(crate::auth::extract::MAX_TOKEN_BYTES),
        ..VerificationOptions::default()
    })
}

/// For the signatures we verify ourselves (RS*, PS*, EdDSA), the gates
/// jwt-simple applies before it verifies ES256/ES384 ones that matter here:
/// the encoded header's size, and `typ`, when one is required, equal
/// ignoring case. Claims are the caller's, as for every algorithm.
fn passes_gates(jwt: &Jwt<'_>, typ: Option<&str>) -> bool {
    let header_b64 = jwt.signing_input.split('.').next().unwrap_or_default();
    header_b64.len() <= MAX_HEADER_B64
        && typ.is_none_or(|want| {
            jwt.header_str("typ")
                .is_some_and(|t| t.eq_ignore_ascii_case(want))
        })
}

/// RS*/PS* signatures, with our verifier.
fn verify_rsa(key: &RsaPublicKey, jwt: &Jwt<'_>, alg: &str) -> bool {
    let (hash, pss) = match alg {
        "RS256" => (HashAlg::Sha256, false),
        "RS384" => (HashAlg::Sha384, false),
        "RS512" => (HashAlg::Sha512, false),
        "PS256" => (HashAlg::Sha256, true),
        "PS384" => (HashAlg::Sha384, true),
        "PS512" => (HashAlg::Sha512, true),
        _ => return false,
    };
    let input = jwt.signing_input.as_bytes();
    if pss {
        key.verify_pss(hash, input, &jwt.signature)
    } else {
        key.verify_pkcs1v15(hash, input, &jwt.signature)
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
