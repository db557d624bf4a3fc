//! Base64 decoding in the two dialects the filter meets.
//!
//! * [`decode_secret`]: Backstage's secret decoding (Node's
//!   `Buffer.from(s, 'base64url')`): both alphabets, padding optional,
//!   decoding stops at the first `=`, other characters are skipped.
//! * [`decode_jws`]: strict base64url as JWS requires (no padding, no `+/`,
//!   no whitespace, canonical trailing bits), by ct-codecs. No crate
//!   reproduces Node's `Buffer.from`, so [`decode_secret`] stays ours.

use ct_codecs::{Base64, Base64UrlSafeNoPadding, Decoder, Encoder};

fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

fn pack(sextets: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &s in sextets {
        acc = (acc << 6) | u32::from(s);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// Node-compatible lenient decoding used for configured HMAC secrets.
pub fn decode_secret(s: &str) -> Vec<u8> {
    let sextets: Vec<u8> = s
        .bytes()
        .take_while(|&c| c != b'=')
        .filter_map(sextet)
        .collect();
    pack(&sextets)
}

/// Strict base64url without padding, as used by JWS compact serialisation:
/// no `+/`, no padding, no whitespace, canonical trailing bits (one token
/// has exactly one spelling). ct-codecs (already linked by jwt-simple,
/// constant-time) does the work.
pub fn decode_jws(s: &str) -> Option<Vec<u8>> {
    Base64UrlSafeNoPadding::decode_to_vec(s, None).ok()
}

/// Base64url without padding (JWK members, test vectors).
pub fn encode_url_nopad(data: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(data).unwrap_or_default()
}

/// Standard base64 with padding, as Node's `Buffer.toString('base64')`
/// writes it (the `auth` option's `Basic` credentials).
pub fn encode_std(data: &[u8]) -> String {
    Base64::encode_to_string(data).unwrap_or_default()
}

#[cfg(test)]
mod tests;
