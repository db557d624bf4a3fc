//! Where a principal's count is kept (its places among an endpoint's
//! counters), and the descriptor values handed to the rate limit service.

use super::*;

/// Where a principal's first place is, as the keyed hash puts it
/// (`docs/rate-limits.md`: HMAC-SHA-256 of the principal, double hashing),
/// and the second word of the hash, the step.
fn first_place_and_step(secret: &[u8; 32], principal: &str) -> (u64, u64) {
    let mac = hmac_sha256::HMAC::mac(principal.as_bytes(), secret);
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&mac[at..at + 8]);
        u64::from_le_bytes(w)
    };
    (word(0) % COUNTERS_PER_ENDPOINT, word(8))
}

#[test]
fn a_principal_whose_first_place_is_taken_gets_another_of_its_places() {
    // Among them principals whose hash's second word is 1 modulo the
    // table's size: a step without its odd bit would bring them back to
    // their first place at every probe.
    let mut principals: Vec<String> = (0..20).map(|i| format!("user|user:default/u{i}")).collect();
    let mut awkward = 0;
    for i in 0..200_000 {
        let p = format!("external|robot-{i}");
        if first_place_and_step(&[7; 32], &p).1 % COUNTERS_PER_ENDPOINT == 1 {
            principals.push(p);
            awkward += 1;
            if awkward == 3 {
                break;
            }
        }
    }
    assert_eq!(awkward, 3);
    let t = 1_800_000_000_000;
    let window = t / 60_000;
    for p in &principals {
        let mut m = created(&PER, "pd");
        let (first, _) = first_place_and_step(&[7; 32], p);
        let other = format!("{window}:5:external|someone-else");
        assert!(m.set(&principal_key("pd", first), other.as_bytes(), None));
        for i in 0..5 {
            assert_eq!(admit(&mut m, "pd", Some(p), &PER, t + i), Admit::Yes, "{p}");
        }
        assert!(matches!(
            admit(&mut m, "pd", Some(p), &PER, t + 9),
            Admit::No { .. }
        ));
        // The other principal's count is untouched, and this one's is
        // elsewhere.
        assert_eq!(
            m.get(&principal_key("pd", first)).0.unwrap(),
            other.as_bytes()
        );
        let mine = format!("{window}:5:{p}");
        assert!(
            (0..COUNTERS_PER_ENDPOINT)
                .any(|i| m.get(&principal_key("pd", i)).0.as_deref() == Some(mine.as_bytes())),
            "{p}"
        );
    }
}

/// Reads a descriptor value back: `%XX` to its byte.
fn decode_descriptor(v: &str) -> Vec<u8> {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn descriptor_values_are_visible_ascii_and_distinct_principals_stay_distinct() {
    let values = [
        "%",
        "%%",
        "%%%",
        "%25",
        "%2525",
        "a%b",
        "ci%bot",
        "%41",
        "A",
        "external|ci bot",
        "external|ci%20bot",
        "external|ci\tbot",
        "external|j\u{fc}rgen",
        "external|j%C3%BCrgen",
        "user|user:default/jane",
        "\u{7f}",
        "\r\n",
        "",
    ];
    let encoded: Vec<String> = values
        .iter()
        .map(|v| descriptor_value(v).into_owned())
        .collect();
    for (v, e) in values.iter().zip(&encoded) {
        assert!(
            e.bytes().all(|b| b.is_ascii_graphic()),
            "{v:?} -> {e:?}: not visible ASCII"
        );
        assert_eq!(decode_descriptor(e), v.as_bytes(), "{v:?} -> {e:?}");
        // Only `%` and what a header cannot carry are encoded.
        if v.bytes().all(|b| b.is_ascii_graphic() && b != b'%') {
            assert_eq!(e, v);
        } else {
            assert_ne!(e, v, "{v:?} passed through");
        }
    }
    let mut distinct = encoded.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), encoded.len(), "{encoded:?}");
    assert_eq!(descriptor_value("%"), "%25");
    assert_eq!(descriptor_value("%%"), "%25%25");
}
