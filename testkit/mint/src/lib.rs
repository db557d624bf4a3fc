//! Test keys and tokens in Backstage's exact formats, signed with
//! libraries independent of the filter's verifier path: p256 (ES256),
//! ed25519-compact (EdDSA), rsa (RS256, PS256), hmac-sha256 (HS256).

use serde_json::{json, Value};

/// The test suites' fixed RSA keys (PKCS#8 PEM).
pub const RSA2048_PEM: &str = include_str!("../fixtures/rsa2048-test-key.pem");
pub const RSA1024_WEAK_PEM: &str = include_str!("../fixtures/rsa1024-weak-test-key.pem");

/// Decodes base64url without padding (what `b64url` writes).
pub fn b64url_decode(text: &str) -> Vec<u8> {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = A.iter().position(|&a| a == c).expect("base64url") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// Standard base64 with padding (Node's `Buffer.toString('base64')`).
pub fn b64std(data: &[u8]) -> String {
    let mut out = b64url(data).replace('-', "+").replace('_', "/");
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}

pub fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

pub trait Key: Send + Sync {
    fn alg(&self) -> &str;
    fn kid(&self) -> &str;
    fn sign(&self, input: &[u8]) -> Vec<u8>;
    fn jwk(&self) -> Value;
}

pub struct Es256 {
    sk: p256::ecdsa::SigningKey,
    kid: String,
}

impl Es256 {
    /// A deterministic key from a seed byte.
    pub fn new(seed: u8, kid: &str) -> Es256 {
        let mut scalar = [seed; 32];
        scalar[0] = 0x11;
        Es256 {
            sk: p256::ecdsa::SigningKey::from_slice(&scalar).unwrap(),
            kid: kid.to_string(),
        }
    }
}

impl Key for Es256 {
    fn alg(&self) -> &str {
        "ES256"
    }
    fn kid(&self) -> &str {
        &self.kid
    }
    fn sign(&self, input: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer;
        let sig: p256::ecdsa::Signature = self.sk.sign(input);
        sig.to_bytes().to_vec()
    }
    fn jwk(&self) -> Value {
        let point = self.sk.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        json!({"kty":"EC","crv":"P-256","x":b64url(&bytes[1..33]),"y":b64url(&bytes[33..65]),"kid":self.kid,"alg":"ES256","use":"sig"})
    }
}

pub struct Ed {
    kp: ed25519_compact::KeyPair,
    kid: String,
}

impl Ed {
    pub fn new(seed: u8, kid: &str) -> Ed {
        Ed {
            kp: ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32])),
            kid: kid.to_string(),
        }
    }
}

impl Key for Ed {
    fn alg(&self) -> &str {
        "EdDSA"
    }
    fn kid(&self) -> &str {
        &self.kid
    }
    fn sign(&self, input: &[u8]) -> Vec<u8> {
        self.kp.sk.sign(input, None).to_vec()
    }
    fn jwk(&self) -> Value {
        json!({"kty":"OKP","crv":"Ed25519","x":b64url(self.kp.pk.as_ref()),"kid":self.kid,"alg":"EdDSA"})
    }
}

pub struct Rsa {
    key: rsa::RsaPrivateKey,
    kid: String,
    pss: bool,
}

impl Rsa {
    pub fn from_pem(pem: &str, kid: &str, pss: bool) -> Rsa {
        use rsa::pkcs8::DecodePrivateKey;
        Rsa {
            key: rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap(),
            kid: kid.to_string(),
            pss,
        }
    }
    pub fn test_key(kid: &str) -> Rsa {
        Rsa::from_pem(RSA2048_PEM, kid, false)
    }
    pub fn weak_key(kid: &str) -> Rsa {
        Rsa::from_pem(RSA1024_WEAK_PEM, kid, false)
    }
}

impl Key for Rsa {
    fn alg(&self) -> &str {
        if self.pss {
            "PS256"
        } else {
            "RS256"
        }
    }
    fn kid(&self) -> &str {
        &self.kid
    }
    fn sign(&self, input: &[u8]) -> Vec<u8> {
        use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
        if self.pss {
            let k = rsa::pss::BlindedSigningKey::<rsa::sha2::Sha256>::new(self.key.clone());
            k.sign_with_rng(&mut rsa::rand_core::OsRng, input).to_vec()
        } else {
            let k = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(self.key.clone());
            k.sign(input).to_vec()
        }
    }
    fn jwk(&self) -> Value {
        use rsa::traits::PublicKeyParts;
        json!({"kty":"RSA","n":b64url(&self.key.n().to_bytes_be()),"e":b64url(&self.key.e().to_bytes_be()),"kid":self.kid,"alg":self.alg()})
    }
}

/// A JWS with exactly this header and payload text.
pub fn jws(key: &dyn Key, header: &str, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.as_bytes()),
        b64url(payload.as_bytes())
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64url(&sig))
}

pub fn key_set(keys: &[&dyn Key]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}).to_string()
}

fn header(typ: &str, key: &dyn Key) -> String {
    format!(
        r#"{{"typ":"{typ}","alg":"{}","kid":"{}"}}"#,
        key.alg(),
        key.kid()
    )
}

/// The `uip` claim: the signature part of the matching limited-user token.
fn uip(key: &dyn Key, sub: &str, iat: u64, exp: u64) -> String {
    let t = limited_user_token(key, sub, iat, exp);
    t.rsplit('.').next().unwrap().to_string()
}

/// A Backstage user token as auth-backend's TokenFactory issues it.
pub fn user_token(key: &dyn Key, sub: &str, iat: u64, exp: u64) -> String {
    user_token_owning(key, sub, &[sub], iat, exp)
}

/// A user token whose `ent` (ownership references) lists `ent`: the user
/// and its groups, as the catalog's sign-in resolver gives them.
pub fn user_token_owning(key: &dyn Key, sub: &str, ent: &[&str], iat: u64, exp: u64) -> String {
    let ent = ent
        .iter()
        .map(|e| format!("\"{e}\""))
        .collect::<Vec<_>>()
        .join(",");
    let payload = format!(
        r#"{{"iss":"http://localhost:7007/api/auth","sub":"{sub}","ent":[{ent}],"aud":"backstage","iat":{iat},"exp":{exp},"uip":"{}"}}"#,
        uip(key, sub, iat, exp)
    );
    jws(key, &header("vnd.backstage.user", key), &payload)
}

/// The limited-user form (cookie and `obo` claim).
pub fn limited_user_token(key: &dyn Key, sub: &str, iat: u64, exp: u64) -> String {
    jws(
        key,
        &header("vnd.backstage.limited-user", key),
        &format!(r#"{{"sub":"{sub}","iat":{iat},"exp":{exp}}}"#),
    )
}

/// A plugin-to-plugin token (`sub` = calling plugin, `aud` = target plugin).
pub fn plugin_token(
    key: &dyn Key,
    sub: &str,
    aud: &str,
    iat: u64,
    exp: u64,
    obo: Option<&str>,
) -> String {
    let obo = obo.map(|o| format!(r#","obo":"{o}""#)).unwrap_or_default();
    jws(
        key,
        &header("vnd.backstage.plugin", key),
        &format!(r#"{{"sub":"{sub}","aud":"{aud}","iat":{iat},"exp":{exp}{obo}}}"#),
    )
}

/// A token from an external identity provider (for `jwks` entries).
pub fn external_token(key: &dyn Key, iss: &str, aud: &str, sub: &str, exp: u64) -> String {
    jws(
        key,
        &format!(
            r#"{{"alg":"{}","kid":"{}","typ":"JWT"}}"#,
            key.alg(),
            key.kid()
        ),
        &format!(r#"{{"iss":"{iss}","aud":"{aud}","sub":"{sub}","exp":{exp}}}"#),
    )
}

/// HS256 over exactly these parts with this (possibly absurd) key.
pub fn hs256_raw(header: &str, payload: &str, key: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.as_bytes()),
        b64url(payload.as_bytes())
    );
    let sig = hmac_sha256::HMAC::mac(input.as_bytes(), key);
    format!("{input}.{}", b64url(&sig))
}
