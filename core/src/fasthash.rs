//! The hash for the maps a request looks up (verified tokens, key sets,
//! endpoint keys). std's SipHash-1-3 costs about five instructions a byte,
//! and the token cache hashes a user token of several hundred bytes on
//! every request (and every header name against the allow-lists); this
//! one takes eight bytes a step.
//!
//! It is seeded per map from std's `RandomState`, so bucket positions differ
//! between VMs and restarts. It is not a keyed PRF like SipHash: that is
//! acceptable here because nothing an unauthenticated client sends is ever
//! inserted (the token cache holds verified tokens only, the other maps
//! come from configuration), so a client cannot build colliding chains; it
//! can only look up.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

pub type FastMap<K, V> = HashMap<K, V, Seeded>;
pub type FastSet<K> = HashSet<K, Seeded>;

pub fn map<K, V>() -> FastMap<K, V> {
    HashMap::with_hasher(Seeded::new())
}

#[derive(Debug, Clone, Copy)]
pub struct Seeded(u64);

impl Seeded {
    pub fn new() -> Seeded {
        Seeded(RandomState::new().hash_one(0x6261_636b_7374_6167_u64))
    }
}

impl Default for Seeded {
    fn default() -> Seeded {
        Seeded::new()
    }
}

impl BuildHasher for Seeded {
    type Hasher = Fast;
    fn build_hasher(&self) -> Fast {
        Fast(self.0)
    }
}

const M: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Debug, Clone, Copy)]
pub struct Fast(u64);

impl Fast {
    fn mix(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(M).rotate_left(31);
    }
}

impl Hasher for Fast {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in chunks.by_ref() {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        if let Some(dst) = w.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        // the length keeps "a" and "a\0" apart
        self.mix(u64::from_le_bytes(w) ^ ((bytes.len() as u64) << 56));
    }

    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    /// murmur3's finaliser: hashbrown takes its control byte from the top
    /// bits and its bucket from the bottom ones, so every bit must depend
    /// on every input bit.
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &Seeded, bytes: &[u8]) -> u64 {
        let mut x = s.build_hasher();
        x.write(bytes);
        x.finish()
    }

    #[test]
    fn equal_inputs_hash_equal_and_lengths_are_told_apart() {
        let s = Seeded::new();
        assert_eq!(h(&s, b"token"), h(&s, b"token"));
        assert_ne!(h(&s, b"a"), h(&s, b"a\0"));
        assert_ne!(h(&s, b""), h(&s, b"\0"));
        assert_ne!(h(&s, b"12345678"), h(&s, b"12345678\0"));
    }

    #[test]
    fn seeds_differ_between_maps() {
        assert_ne!(h(&Seeded::new(), b"same"), h(&Seeded::new(), b"same"));
    }

    #[test]
    fn tokens_differing_in_one_byte_spread_over_buckets_and_control_bytes() {
        // 4096 tokens that differ only in their last bytes (as tokens of one
        // issuer do): low 10 bits and top 7 bits both well spread
        let s = Seeded::new();
        let base = "eyJhbGciOiJFUzI1NiJ9.".repeat(20);
        let mut low = vec![0u32; 1024];
        let mut top = vec![0u32; 128];
        for i in 0..4096u32 {
            let t = format!("{base}{i:08}");
            let v = h(&s, t.as_bytes());
            low[(v & 1023) as usize] += 1;
            top[(v >> 57) as usize] += 1;
        }
        assert!(low.iter().all(|&n| n <= 16), "{:?}", low.iter().max());
        assert!(top.iter().all(|&n| (8..=60).contains(&n)), "{top:?}");
    }

    #[test]
    fn a_map_with_it_finds_what_was_inserted() {
        let mut m: FastMap<String, usize> = map();
        for i in 0..2000 {
            m.insert(format!("k{i}"), i);
        }
        for i in 0..2000 {
            assert_eq!(m.get(format!("k{i}").as_str()), Some(&i));
        }
        assert_eq!(m.get("k2000"), None);
    }
}
