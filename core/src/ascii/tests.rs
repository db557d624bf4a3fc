use super::*;

#[test]
fn the_word_at_a_time_check_agrees_with_the_byte_check_for_every_byte() {
    let byte_check = |t: &[u8]| t.iter().all(|&b| (0x21..0x7f).contains(&b));
    for b in 0..=255u8 {
        for len in [1, 7, 8, 9, 16, 23] {
            for pos in 0..len {
                let mut t = vec![b'a'; len];
                t[pos] = b;
                assert_eq!(all_visible(&t), byte_check(&t), "{b:#x} at {pos} of {len}");
                // next to the extremes of the range, where a carry or
                // borrow between bytes would show
                for n in [0x21u8, 0x7e, 0x20, 0x7f, 0x00, 0xff] {
                    let mut u = t.clone();
                    u[(pos + 1) % len] = n;
                    assert_eq!(
                        all_visible(&u),
                        byte_check(&u),
                        "{b:#x},{n:#x} at {pos} of {len}"
                    );
                }
            }
        }
    }
}
