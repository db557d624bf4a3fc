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
    let mut runner =
        proptest::test_runner::TestRunner::new(proptest::test_runner::Config::with_cases(20_000));
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

#[test]
fn standard_encoding_is_nodes_buffer_to_string_base64() {
    // Values from Node: Buffer.from(s).toString('base64').
    for (input, node) in [
        ("", ""),
        ("squ_token:", "c3F1X3Rva2VuOg=="),
        ("user:pass", "dXNlcjpwYXNz"),
        ("a:b?>", "YTpiPz4="),
        ("\u{e9}t\u{e9}:\u{fffd}", "w6l0w6k677+9"),
    ] {
        assert_eq!(encode_std(input.as_bytes()), node, "{input:?}");
    }
}
