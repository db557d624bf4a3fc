//! Base64 decoding in the two dialects the filter meets.
//!
//! * [`decode_secret`]: Backstage's secret decoding (Node's
//!   `Buffer.from(s, 'base64url')`): both alphabets, padding optional,
//!   decoding stops at the first `=`, other characters are skipped.
//! * [`decode_jws`]: strict base64url as JWS requires (no padding, no `+/`,
//!   no whitespace, canonical trailing bits), by ct-codecs. No crate
//!   reproduces Node's `Buffer.from`, so [`decode_secret`] stays ours.

use ct_codecs::{Base64UrlSafeNoPadding, Decoder, Encoder};

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

    /// The whole contract of the strict decoder, checked on random inputs
    /// against RFC 4648 itself rather than another implementation: every
    /// encoding decodes back, and a string decodes exactly when it is the
    /// canonical encoding of what it decodes to.
    #[test]
    fn jws_decoding_accepts_exactly_the_canonical_encodings() {
        use proptest::prelude::*;
        let alphabet: Vec<char> =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= .%"
                .chars()
                .collect();
        let mut runner = proptest::test_runner::TestRunner::new(
            proptest::test_runner::Config::with_cases(20_000),
        );
        runner
            .run(&proptest::collection::vec(any::<u8>(), 0..64), |data| {
                let text = encode_url_nopad(&data);
                prop_assert_eq!(decode_jws(&text), Some(data));
                Ok(())
            })
            .unwrap();
        runner
            .run(
                &proptest::collection::vec(proptest::sample::select(alphabet), 0..24),
                |chars| {
                    let text: String = chars.into_iter().collect();
                    if let Some(bytes) = decode_jws(&text) {
                        prop_assert_eq!(encode_url_nopad(&bytes), text);
                    } else {
                        let canonical = text
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                            && text.len() % 4 != 1
                            && encode_url_nopad(&decode_secret(&text)) == text;
                        prop_assert!(!canonical, "{text} refused");
                    }
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn encode_round_trips() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\xff\xfe\xfd\x00"] {
            assert_eq!(decode_jws(&encode_url_nopad(data)).unwrap(), data);
        }
    }
}
