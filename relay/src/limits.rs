//! Rate and connection limits: a token bucket per publisher, a count of open connections per
//! client IP address, and how long one write to a connection may take.

use crate::metrics::{limit, Metrics};
use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tracing::debug;

/// How long one write to a connection (a WebSocket frame or batch, its Close frame, a chunk of an
/// SSE stream) may take before the connection is given up: two ping intervals.
pub fn write_timeout(ping_interval: Duration) -> Duration {
    ping_interval * 2
}

/// A write to a connection that did not happen: it failed (the client went away), or it took
/// longer than its limit.
#[derive(Debug, PartialEq, Eq)]
pub struct WriteFailed;

/// Runs `write` for at most `limit`: the one place where both transports give up a slow write and
/// count it (`write_timeout` limit hit). `conn`: the connection's id, for the log, once it has one.
pub async fn write_within<E: Display>(
    metrics: &Metrics,
    conn: Option<u64>,
    limit: Duration,
    write: impl Future<Output = Result<(), E>>,
) -> Result<(), WriteFailed> {
    match tokio::time::timeout(limit, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            debug!(conn, "write failed: {e}");
            Err(WriteFailed)
        }
        Err(_) => {
            debug!(conn, "write timed out");
            metrics.limit_hit(limit::WRITE_TIMEOUT);
            Err(WriteFailed)
        }
    }
}

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

/// Token buckets keyed by who spends them (an API key, a token's user, a user's SSE tickets).
///
/// The map is swept of the buckets that are full again (idle long enough to have refilled: taking
/// them away loses nobody anything, since a new bucket starts full) only when it has doubled since
/// the last sweep, so each request costs O(1) amortised however many publishers there are, and no
/// active publisher's bucket is ever dropped.
#[derive(Debug)]
pub struct Buckets {
    rate: u32,
    burst: u32,
    inner: Mutex<BucketMap>,
}

#[derive(Debug)]
struct BucketMap {
    buckets: HashMap<String, TokenBucket>,
    /// The map is swept when it grows past this.
    sweep_at: usize,
}

/// The least size at which the map is swept.
const MIN_SWEEP_AT: usize = 1024;

impl Buckets {
    pub fn new(rate: u32, burst: u32) -> Self {
        Buckets {
            rate,
            burst,
            inner: Mutex::new(BucketMap {
                buckets: HashMap::new(),
                sweep_at: MIN_SWEEP_AT,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BucketMap> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one token from `who`'s bucket.
    pub fn take(&self, who: &str) -> bool {
        if self.rate == 0 {
            return true;
        }
        let mut map = self.lock();
        if map.buckets.len() >= map.sweep_at {
            let now = Instant::now();
            map.buckets.retain(|_, b| !b.is_full_at(now));
            map.sweep_at = (map.buckets.len() * 2).max(MIN_SWEEP_AT);
        }
        if let Some(bucket) = map.buckets.get_mut(who) {
            return bucket.take();
        }
        let mut bucket = TokenBucket::new(self.rate, self.burst);
        let taken = bucket.take();
        map.buckets.insert(who.to_owned(), bucket);
        taken
    }

    /// How many buckets are kept.
    pub fn len(&self) -> usize {
        self.lock().buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TokenBucket {
    /// Whether the bucket has refilled to its burst by `now` (it is then as good as a new one).
    fn is_full_at(&self, now: Instant) -> bool {
        self.rate <= 0.0
            || self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate >= self.burst
    }
}

/// Who counts as one client address for `--max-connections-per-ip`: an IPv4 address, or the /64
/// an IPv6 address belongs to (one host usually holds a whole /64, and picks addresses in it at
/// will).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpKey {
    V4(std::net::Ipv4Addr),
    V6Prefix64(u64),
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => IpKey::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpKey::V4(v4),
                None => IpKey::V6Prefix64((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Open WebSocket and SSE connections: per client address (see [`IpKey`]), bounded by
/// `max_per_ip`, and in all, bounded by `max_total` (0: no bound).
#[derive(Debug)]
pub struct PerIp {
    max_per_ip: usize,
    max_total: usize,
    open: Mutex<OpenConnections>,
}

#[derive(Debug, Default)]
struct OpenConnections {
    per_ip: HashMap<IpKey, usize>,
    total: usize,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Its address has `max_per_ip` open.
    Address,
    /// The relay has `max_total` open.
    Relay,
}

/// One counted connection; dropping it uncounts it.
#[derive(Debug)]
pub struct IpSlot {
    owner: Arc<PerIp>,
    ip: IpKey,
}

impl PerIp {
    pub fn new(max_per_ip: usize, max_total: usize) -> Arc<Self> {
        Arc::new(PerIp {
            max_per_ip,
            max_total,
            open: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, OpenConnections> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one more connection from `ip`, or says which bound it would cross.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<IpSlot, Full> {
        let key = IpKey::from(ip);
        let mut open = self.lock();
        if self.max_total > 0 && open.total >= self.max_total {
            return Err(Full::Relay);
        }
        let count = open.per_ip.entry(key).or_insert(0);
        if self.max_per_ip > 0 && *count >= self.max_per_ip {
            return Err(Full::Address);
        }
        *count += 1;
        open.total += 1;
        Ok(IpSlot {
            owner: Arc::clone(self),
            ip: key,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.owner.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one write timeout of both transports: a write that does not finish within its limit is
    /// given up and counted once; a write that fails (the client went away) is given up, not counted.
    #[tokio::test]
    async fn a_write_over_its_limit_is_given_up_and_counted() {
        let metrics = Metrics::default();
        let limit = Duration::from_millis(20);
        let stalled = std::future::pending::<Result<(), String>>();
        let gone = async { Err::<(), _>("the client went away") };
        let done = async { Ok::<(), String>(()) };
        assert_eq!(
            write_within(&metrics, Some(1), limit, stalled).await,
            Err(WriteFailed)
        );
        assert_eq!(
            write_within(&metrics, Some(1), limit, gone).await,
            Err(WriteFailed)
        );
        assert_eq!(write_within(&metrics, None, limit, done).await, Ok(()));
        let key = crate::metrics::Limit {
            limit: limit::WRITE_TIMEOUT,
        };
        assert_eq!(metrics.limit_hits.get_or_create(&key).get(), 1);
        assert_eq!(
            write_timeout(Duration::from_millis(250)),
            Duration::from_millis(500)
        );
    }

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
        let per_ip = PerIp::new(2, 0);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let a = per_ip.admit(ip).expect("first");
        let _b = per_ip.admit(ip).expect("second");
        assert_eq!(per_ip.admit(ip).err(), Some(Full::Address));
        assert!(per_ip.admit([127, 0, 0, 2].into()).is_ok());
        drop(a);
        assert!(per_ip.admit(ip).is_ok());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let per_ip = PerIp::new(2, 0);
        let ip = |text: &str| text.parse::<IpAddr>().expect("an address");
        let _a = per_ip.admit(ip("2001:db8:1:2::1")).expect("first");
        let _b = per_ip.admit(ip("2001:db8:1:2:ffff::9")).expect("same /64");
        assert_eq!(
            per_ip.admit(ip("2001:db8:1:2:abcd:1234:5678:9abc")).err(),
            Some(Full::Address),
            "a third address of the same /64"
        );
        let _c = per_ip.admit(ip("2001:db8:1:3::1")).expect("the next /64");
        let _d = per_ip.admit(ip("10.1.2.3")).expect("v4");
        let _e = per_ip
            .admit(ip("::ffff:10.1.2.3"))
            .expect("the same v4, mapped");
        assert_eq!(per_ip.admit(ip("10.1.2.3")).err(), Some(Full::Address));
    }

    #[test]
    fn the_relay_wide_cap_counts_every_address() {
        let per_ip = PerIp::new(0, 3);
        let slots: Vec<IpSlot> = (1..=3u8)
            .map(|i| per_ip.admit([10, 0, 0, i].into()).expect("under the cap"))
            .collect();
        assert_eq!(per_ip.admit([10, 0, 0, 9].into()).err(), Some(Full::Relay));
        drop(slots);
        assert!(per_ip.admit([10, 0, 0, 9].into()).is_ok());
    }

    #[test]
    fn buckets_sweep_only_full_ones_and_only_when_doubled() {
        let buckets = Buckets::new(1, 2);
        // An active publisher, its bucket drained.
        assert!(buckets.take("busy") && buckets.take("busy"));
        assert!(!buckets.take("busy"));
        // Many publishers come and go: their buckets are swept (once full again), the busy one is
        // not, and stays empty.
        for i in 0..5_000 {
            buckets.take(&format!("p{i}"));
        }
        assert!(buckets.len() <= 5_001);
        assert!(!buckets.take("busy"), "an active bucket is never reset");
    }
}
