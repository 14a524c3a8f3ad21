//! The hash of every `HashMap` and `HashSet` of the crate: [`FastHasher`], not std's SipHash.

use std::collections::{HashMap as StdHashMap, HashSet as StdHashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-and-rotate hash (FxHash's). std's SipHash was a third of the cost of a subscribe,
/// and its code is about 1 KB more of gzipped wasm. Not keyed, so not resistant to chosen
/// collisions; but neither is std's on `wasm32-unknown-unknown` (no randomness: fixed keys), and
/// the keys are ids the client hands out, channels and record ids the app subscribes with (an
/// event's ids are only looked up), or what a server sends into small bounded sets (Igniter's
/// recent event ids): a hostile relay could slow those down, no more.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        let mut word = [0; 8];
        word[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(n.into());
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    /// The high half (the well-mixed bits of a product) folded into the low one: a 32-bit
    /// target's hash tables use only the low 32 bits.
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }
}

/// [`FastHasher`] for `HashMap`s and `HashSet`s.
pub type FastHash = BuildHasherDefault<FastHasher>;
pub type HashMap<K, V> = StdHashMap<K, V, FastHash>;
pub type HashSet<K> = StdHashSet<K, FastHash>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hash<T: std::hash::Hash + ?Sized>(value: &T) -> u64 {
        FastHash::default().hash_one(value)
    }

    #[test]
    fn strings_that_differ_in_length_or_zeros_differ() {
        let keys = [
            "",
            "\0",
            "a",
            "a\0",
            "\0a",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
        ];
        let hashes: HashSet<u64> = keys.iter().map(|k| hash(*k)).collect();
        assert_eq!(hashes.len(), keys.len());
    }

    /// A hash table's bucket is the low bits, its control byte the top 7 of the low 32: both
    /// spread for sequential ids and for numeric record ids, as for random keys.
    #[test]
    fn sequential_keys_spread_over_the_low_bits() {
        let spread = |hashes: Vec<u64>| {
            let buckets: HashSet<u64> = hashes.iter().map(|h| h & 0x3fff).collect();
            let tags: HashSet<u64> = hashes.iter().map(|h| (h >> 25) & 0x7f).collect();
            (buckets.len(), tags.len())
        };
        let (buckets, tags) = spread((1..=10_000u32).map(|i| hash(&i)).collect());
        assert!(buckets > 7_000 && tags == 128, "{buckets} {tags}");
        let (buckets, tags) = spread((0..10_000).map(|i| hash(&i.to_string())).collect());
        assert!(buckets > 7_000 && tags == 128, "{buckets} {tags}");
    }
}
