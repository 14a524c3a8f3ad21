//! Rate and connection limits: a token bucket per publisher, and a count of open connections per
//! client IP address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// A token bucket: `rate` publishes per second on average, bursts of up to `burst`. A rate of 0
/// means no limit.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: f64::from(rate),
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes one token; `false` when the bucket is empty (over the rate).
    pub fn take(&mut self) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Token buckets shared by the HTTP publishers of one credential (an API key, a token's user).
#[derive(Debug)]
pub struct Buckets {
    rate: u32,
    burst: u32,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

/// Buckets untouched for this long are dropped when the map is swept.
const IDLE_SECS: f64 = 600.0;

impl Buckets {
    pub fn new(rate: u32, burst: u32) -> Self {
        Buckets {
            rate,
            burst,
            buckets: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, TokenBucket>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one token from `who`'s bucket.
    pub fn take(&self, who: &str) -> bool {
        if self.rate == 0 {
            return true;
        }
        let mut buckets = self.lock();
        if buckets.len() > 100_000 {
            let now = Instant::now();
            buckets.retain(|_, b| now.duration_since(b.last).as_secs_f64() < IDLE_SECS);
        }
        buckets
            .entry(who.to_owned())
            .or_insert_with(|| TokenBucket::new(self.rate, self.burst))
            .take()
    }
}

/// Open connections per client IP address, bounded by `max` (0: no bound).
#[derive(Debug)]
pub struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; dropping it uncounts it.
#[derive(Debug)]
pub struct IpSlot {
    owner: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(PerIp {
            max,
            open: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one more connection from `ip`, or `None` when `ip` has `max` open already.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut open = self.lock();
        let count = open.entry(ip).or_insert(0);
        if self.max > 0 && *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            owner: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.owner.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses() {
        let mut bucket = TokenBucket::new(1, 3);
        assert!((0..3).all(|_| bucket.take()));
        assert!(!bucket.take());
        assert!(
            (0..1000).all(|_| TokenBucket::new(0, 1).take()),
            "rate 0: no limit"
        );
    }

    #[test]
    fn slots_are_counted_until_dropped() {
        let per_ip = PerIp::new(2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let a = per_ip.admit(ip).expect("first");
        let _b = per_ip.admit(ip).expect("second");
        assert!(per_ip.admit(ip).is_none());
        assert!(per_ip.admit([127, 0, 0, 2].into()).is_some());
        drop(a);
        assert!(per_ip.admit(ip).is_some());
    }
}
