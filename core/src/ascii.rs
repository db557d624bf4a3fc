//! Byte checks on the request path.

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Every byte in `0x21..=0x7e` (visible ASCII), eight bytes at a time: the
/// bearer token (hundreds of bytes) and the path are checked on every
/// request.
pub fn all_visible(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // a byte below 0x21: its borrow sets the high bit of (x - 0x21…)
        // where x's own high bit is clear (exact for "any such byte")
        let below = x.wrapping_sub(0x21 * LOW) & !x & HIGH;
        // a byte above 0x7e: adding 1 reaches 0x80, or the high bit is set
        let above = (x.wrapping_add(LOW) | x) & HIGH;
        if below | above != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| (0x21..0x7f).contains(&b))
}

#[cfg(test)]
mod tests;
