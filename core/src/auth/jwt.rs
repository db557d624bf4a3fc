//! JWS compact parsing and the registered-claim checks, with jose's
//! semantics (Backstage verifies with jose) and a clock passed in.

use serde_json::{Map, Value};

use crate::base64::decode_jws;

/// A JWT split and decoded, not yet verified.
#[derive(Debug, Clone)]
pub struct Jwt<'a> {
    pub header: Map<String, Value>,
    pub payload: Map<String, Value>,
    /// `base64url(header) "." base64url(payload)`: what the signature covers.
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
}

fn decode_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = decode_jws(part)?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The protected header alone (jose `decodeProtectedHeader`): what
/// Backstage reads to recognise plugin and user tokens.
pub fn decode_header(token: &str) -> Option<Map<String, Value>> {
    decode_object(token.split('.').next()?)
}

/// Header and payload of a three-part JWS; `None` for anything else
/// (JWE, JSON serialisation, non-object parts, bad base64url).
pub fn decode(token: &str) -> Option<Jwt<'_>> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header = decode_object(h)?;
    let payload = decode_object(p)?;
    let signature = decode_jws(s)?;
    let signing_input = token.get(..h.len() + 1 + p.len())?;
    Some(Jwt {
        header,
        payload,
        signing_input,
        signature,
    })
}

impl Jwt<'_> {
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.payload.get(name).and_then(Value::as_str)
    }

    /// Header parameters this implementation does not understand but must:
    /// `crit` (any value) and `b64`.
    pub fn has_unsupported_header(&self) -> bool {
        self.header.contains_key("crit") || self.header.contains_key("b64")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// A registered claim of the wrong JSON type.
    Malformed(&'static str),
    Missing(&'static str),
    Expired,
    NotYetValid,
}

/// `exp`, `nbf` and `iat` as jose checks them: numbers if present; expired
/// when `exp <= now - skew`; not yet valid when `nbf > now + skew`.
/// `required` lists claims that must be present.
pub fn check_registered_claims(
    payload: &Map<String, Value>,
    now: u64,
    skew: u64,
    required: &[&'static str],
) -> Result<(), ClaimError> {
    for &name in required {
        if !payload.contains_key(name) {
            return Err(ClaimError::Missing(name));
        }
    }
    let number = |name: &'static str| -> Result<Option<f64>, ClaimError> {
        match payload.get(name) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or(ClaimError::Malformed(name)),
        }
    };
    let (now, skew) = (now as f64, skew as f64);
    if let Some(exp) = number("exp")? {
        if exp <= now - skew {
            return Err(ClaimError::Expired);
        }
    }
    if let Some(nbf) = number("nbf")? {
        if nbf > now + skew {
            return Err(ClaimError::NotYetValid);
        }
    }
    number("iat")?;
    for name in ["sub", "iss", "jti"] {
        if payload.get(name).is_some_and(|v| !v.is_string()) {
            return Err(ClaimError::Malformed(match name {
                "sub" => "sub",
                "iss" => "iss",
                _ => "jti",
            }));
        }
    }
    if let Some(aud) = payload.get("aud") {
        let ok = match aud {
            Value::String(_) => true,
            Value::Array(items) => items.iter().all(Value::is_string),
            _ => false,
        };
        if !ok {
            return Err(ClaimError::Malformed("aud"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
