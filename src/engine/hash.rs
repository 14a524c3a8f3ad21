//! The engine's hash maps and sets, with a small multiplicative hasher (the "Fx" hash of rustc)
//! instead of the standard library's SipHash: routing an event hashes its channel and ids, and
//! SipHash was a measurable part of that. Keys here are channel names and record ids the app
//! subscribed to, and sub ids: an attacker who could choose colliding keys would be the app itself.

use core::hash::{BuildHasherDefault, Hasher};
use hashbrown::{HashMap, HashSet};

/// A hash map keyed with [`FxHasher`].
pub type Map<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
/// A hash set keyed with [`FxHasher`].
pub type Set<T> = HashSet<T, BuildHasherDefault<FxHasher>>;

/// Folds each word in with a rotate, a xor and a multiply by an odd constant.
#[derive(Debug, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl Default for FxHasher {
    /// Not from zero: a zero word folded into a zero state would leave no trace (`""` and `"\0"`
    /// would collide).
    fn default() -> Self {
        FxHasher { hash: SEED }
    }
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(i.into());
    }

    fn write_u32(&mut self, i: u32) {
        self.add(i.into());
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits and a tag from the high ones: fold the
        // well-mixed high half into the low one.
        self.hash ^ (self.hash >> 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::{BuildHasher, BuildHasherDefault};

    fn hash(s: &str) -> u64 {
        BuildHasherDefault::<FxHasher>::default().hash_one(s)
    }

    #[test]
    fn different_keys_hash_apart_and_equal_keys_alike() {
        assert_eq!(hash("resources/posts"), hash("resources/posts"));
        let names: Set<u64> = (0..10_000u32)
            .map(|i| hash(&crate::cat!("resources/c", i)))
            .collect();
        assert_eq!(
            names.len(),
            10_000,
            "no collisions among 10,000 channel names"
        );
        // Strings that differ only past the first word, and by length (the str's 0xff suffix).
        assert_ne!(hash("resources/a"), hash("resources/b"));
        assert_ne!(hash(""), hash("\0"));
    }

    #[test]
    fn maps_and_sets_work_as_the_standard_ones() {
        let mut m: Map<String, u32> = Map::default();
        for i in 0..1_000u32 {
            m.insert(crate::cat!(i), i);
        }
        assert!((0..1_000u32).all(|i| m.get(&crate::cat!(i)) == Some(&i)));
        let s: Set<u32> = (0..1_000).collect();
        assert!(s.contains(&999) && !s.contains(&1_000));
    }
}
