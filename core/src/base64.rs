//! Base64 decoding in the two dialects the filter meets.
//!
//! * [`decode_secret`]: Backstage's secret decoding (Node's
//!   `Buffer.from(s, 'base64url')`): both alphabets, padding optional,
//!   decoding stops at the first `=`, other characters are skipped.
//! * [`decode_jws`]: strict base64url as JWS requires (no padding, no `+/`,
//!   no whitespace, canonical trailing bits).

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

/// Strict base64url without padding, as used by JWS compact serialisation.
pub fn decode_jws(s: &str) -> Option<Vec<u8>> {
    let mut sextets = Vec::with_capacity(s.len());
    for c in s.bytes() {
        match c {
            b'+' | b'/' => return None,
            _ => sextets.push(sextet(c)?),
        }
    }
    // A single leftover character cannot encode a byte.
    let rem = sextets.len() % 4;
    if rem == 1 {
        return None;
    }
    // Non-canonical encodings (unused low bits set) are refused so that one
    // token has exactly one spelling.
    if let Some(&last) = sextets.last() {
        let unused = match rem {
            2 => 0b1111,
            3 => 0b11,
            _ => 0,
        };
        if last & unused != 0 {
            return None;
        }
    }
    Some(pack(&sextets))
}

/// Standard base64 with padding (for the xfwd-free paths that need to encode).
pub fn encode_url_nopad(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = ((n >> (18 - 6 * i)) & 0x3f) as usize;
            if let Some(&c) = ALPHABET.get(idx) {
                out.push(char::from(c));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_accepts_both_alphabets_and_optional_padding() {
        assert_eq!(decode_secret("aGVsbG8"), b"hello");
        assert_eq!(decode_secret("aGVsbG8="), b"hello");
        assert_eq!(decode_secret("-_-_"), decode_secret("+/+/"));
        // decoding stops at the first '=' and skips junk, like Node
        assert_eq!(decode_secret("aGVs bG8"), b"hello");
        assert_eq!(decode_secret("aGVs=bG8"), b"hel");
        assert!(decode_secret("!!!").is_empty());
    }

    #[test]
    fn jws_is_strict() {
        assert_eq!(decode_jws("aGVsbG8").unwrap(), b"hello");
        assert!(decode_jws("aGVsbG8=").is_none());
        assert!(decode_jws("a+/a").is_none());
        assert!(decode_jws("aGVs bG8").is_none());
        assert!(decode_jws("a").is_none());
        // 'aGVsbG9' has non-zero unused bits (non-canonical spelling of "hello")
        assert!(decode_jws("aGVsbG9").is_none());
        assert_eq!(decode_jws("").unwrap(), b"");
    }

    #[test]
    fn encode_round_trips() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\xff\xfe\xfd\x00"] {
            assert_eq!(decode_jws(&encode_url_nopad(data)).unwrap(), data);
        }
    }
}
