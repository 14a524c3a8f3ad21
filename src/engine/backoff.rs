//! Reconnect delays: exponential growth with full jitter, from a seeded generator so that tests
//! can replay a schedule exactly.

/// Exponential backoff with full jitter: attempt `n` waits a uniformly random time in
/// `[0, min(max, min_delay * 2^n)]`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min_ms: u64,
    max_ms: u64,
    attempt: u32,
    rng: XorShift,
}

impl Backoff {
    pub fn new(min_ms: u64, max_ms: u64, seed: u64) -> Self {
        Backoff {
            min_ms: min_ms.max(1),
            max_ms: max_ms.max(min_ms.max(1)),
            attempt: 0,
            rng: XorShift::new(seed),
        }
    }

    /// The delay before the next attempt; each call counts one more attempt.
    pub fn next_delay(&mut self) -> u64 {
        let shift = self.attempt.min(32);
        let cap = self.min_ms.saturating_mul(1u64 << shift).min(self.max_ms);
        self.attempt = self.attempt.saturating_add(1);
        self.rng.below(cap + 1)
    }

    /// How many delays were handed out since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A connection was established: start again from the smallest delay.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// xorshift64*: small, fast, good enough for jitter (not for secrets).
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `[0, n)`; `0` when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_the_cap_and_reset() {
        let mut b = Backoff::new(500, 20_000, 7);
        let mut caps = Vec::new();
        for n in 0..12u32 {
            let d = b.next_delay();
            let cap = (500u64 << n).min(20_000);
            assert!(d <= cap, "attempt {n}: {d} > {cap}");
            caps.push(cap);
        }
        assert_eq!(*caps.last().expect("12 attempts"), 20_000);
        assert_eq!(b.attempt(), 12);
        b.reset();
        assert!(b.next_delay() <= 500);
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut b = Backoff::new(500, 20_000, 1);
        let mut seen = alloc::collections::BTreeSet::new();
        for _ in 0..50 {
            b.reset();
            seen.insert(b.next_delay());
        }
        assert!(seen.len() > 25, "full jitter gives varied delays: {seen:?}");
    }
}
