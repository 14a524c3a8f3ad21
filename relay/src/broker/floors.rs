//! Where the numbering of a forgotten channel resumes.
//!
//! The in-process hub forgets a channel once it has no subscriber and no history left, so that
//! channels used once (per-record channels, names a publisher makes up) do not grow the relay's
//! memory without bound. A client may still hold a position in a forgotten channel and resume it
//! later; if the channel's numbering started again at 1, its next events would carry seqs the
//! client has seen already and be dropped as duplicates. So forgetting a channel raises a floor,
//! and a channel created again starts numbering after it: a client that was up to date resumes
//! with nothing missing, any other is told `recovered: false` (it resyncs), never given events
//! under seqs it already holds.
//!
//! The floors are a fixed table of the highest seq forgotten per hash bucket, so their memory
//! does not grow with the channels forgotten; two channels in one bucket share a floor, which
//! can only make one start higher (a resume at worst becomes a resync, never a silent gap).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// Buckets of the table (8 bytes each: 64 KiB).
const BUCKETS: usize = 8192;

#[derive(Debug)]
pub struct Floors {
    hasher: RandomState,
    highest: Box<[u64]>,
}

impl Default for Floors {
    fn default() -> Self {
        Floors {
            hasher: RandomState::new(),
            highest: vec![0; BUCKETS].into_boxed_slice(),
        }
    }
}

impl Floors {
    fn bucket(&self, channel: &str) -> usize {
        // The remainder is below BUCKETS, so it fits in usize.
        (self.hasher.hash_one(channel) % BUCKETS as u64) as usize
    }

    /// Remembers that `channel` was forgotten after numbering up to `last_seq`.
    pub fn forget(&mut self, channel: &str, last_seq: u64) {
        let bucket = self.bucket(channel);
        if let Some(highest) = self.highest.get_mut(bucket) {
            *highest = (*highest).max(last_seq);
        }
    }

    /// The seq after which a (re)created `channel` numbers its events: at least the last seq it
    /// had when it was forgotten.
    pub fn start_of(&self, channel: &str) -> u64 {
        self.highest.get(self.bucket(channel)).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forgotten_channel_starts_after_its_last_seq() {
        let mut floors = Floors::default();
        assert_eq!(floors.start_of("a"), 0);
        floors.forget("a", 7);
        assert!(floors.start_of("a") >= 7);
        floors.forget("a", 3);
        assert!(floors.start_of("a") >= 7, "a floor never goes down");
        // Most other channels are untouched.
        let untouched = (0..100)
            .filter(|i| floors.start_of(&format!("other-{i}")) == 0)
            .count();
        assert!(untouched >= 95, "{untouched}");
    }
}
