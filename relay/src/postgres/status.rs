//! What the feed reports: its Prometheus metrics (registered with the relay's) and the state
//! `GET /healthz` names.

use crate::metrics::Reason;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

/// The feed's counters and gauges, and its last error.
#[derive(Debug)]
pub struct FeedStatus {
    /// Rows waiting in the outbox (read every second).
    backlog: Gauge<i64>,
    /// Age of the oldest waiting row, in seconds.
    oldest_age: Gauge<f64, AtomicU64>,
    /// From a row's `created_at` to its publish, in seconds.
    lag: Histogram,
    published: Counter,
    rejected: Counter,
    errors: Family<Reason, Counter>,
    listening: Gauge<i64>,
    /// The parts of the feed whose last step failed (`partition 0`, `listen`, `backlog`), with
    /// the error: the feed is healthy when none is.
    failing: Mutex<BTreeMap<String, String>>,
    /// `--postgres-notify`.
    notify: bool,
}

/// The names of the feed's errors, counted in `live_relay_postgres_errors_total`.
pub mod error {
    /// A consumer's connection, or a statement of a drain, failed.
    pub const DRAIN: &str = "drain";
    /// A row's publish failed for now (the broker unavailable, its outcome unknown).
    pub const PUBLISH: &str = "publish";
    /// The LISTEN connection failed or was lost.
    pub const LISTEN: &str = "listen";
    /// The backlog could not be read.
    pub const BACKLOG: &str = "backlog";
}

/// The feed's part of `GET /healthz`.
#[derive(Debug, Serialize)]
pub struct FeedHealth {
    /// `ok`, or `degraded` while a part of the feed fails (each part's last error is in `error`).
    pub state: &'static str,
    /// Whether the LISTEN connection is up (with `--postgres-notify`; polling works without it).
    pub listening: bool,
    pub notify: bool,
    pub backlog: i64,
    pub oldest_age_ms: u64,
    pub published: u64,
    pub rejected: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl FeedStatus {
    pub fn new(notify: bool) -> FeedStatus {
        FeedStatus {
            backlog: Gauge::default(),
            oldest_age: Gauge::default(),
            lag: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            published: Counter::default(),
            rejected: Counter::default(),
            errors: Family::default(),
            listening: Gauge::default(),
            failing: Mutex::new(BTreeMap::new()),
            notify,
        }
    }

    /// Adds the feed's metrics to the relay's registry (`live_relay_postgres_*`).
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("postgres");
        sub.register(
            "backlog_rows",
            "Rows waiting in live_relay.outbox",
            self.backlog.clone(),
        );
        sub.register(
            "oldest_row_age_seconds",
            "Age of the oldest row waiting in live_relay.outbox",
            self.oldest_age.clone(),
        );
        sub.register(
            "publish_lag_seconds",
            "From an outbox row's created_at to its publish",
            self.lag.clone(),
        );
        sub.register(
            "rows_published",
            "Outbox rows published by this relay",
            self.published.clone(),
        );
        sub.register(
            "rows_rejected",
            "Outbox rows set aside in live_relay.rejected",
            self.rejected.clone(),
        );
        sub.register(
            "errors",
            "Failed steps of the feed, by kind",
            self.errors.clone(),
        );
        sub.register(
            "listen_connected",
            "1 while the LISTEN connection is up",
            self.listening.clone(),
        );
    }

    pub fn published(&self, lag_ms: f64) {
        self.published.inc();
        self.lag.observe(lag_ms.max(0.0) / 1000.0);
    }

    pub fn rejected(&self) {
        self.rejected.inc();
    }

    pub fn backlog(&self, rows: i64, oldest_age_ms: f64) {
        self.backlog.set(rows);
        self.oldest_age.set(oldest_age_ms.max(0.0) / 1000.0);
    }

    pub fn listening(&self, up: bool) {
        self.listening.set(i64::from(up));
    }

    /// Counts a failed step of `part` (of kind `kind`) and keeps its message for `/healthz`
    /// until that part succeeds again.
    pub fn failed(&self, kind: &'static str, part: &str, message: String) {
        self.errors.get_or_create(&Reason { reason: kind }).inc();
        if let Ok(mut failing) = self.failing.lock() {
            failing.insert(part.to_owned(), format!("{part}: {message}"));
        }
    }

    /// A step of `part` went through.
    pub fn recovered(&self, part: &str) {
        if let Ok(mut failing) = self.failing.lock() {
            failing.remove(part);
        }
    }

    pub fn health(&self) -> FeedHealth {
        let error = self.failing.lock().ok().and_then(|failing| {
            (!failing.is_empty()).then(|| failing.values().cloned().collect::<Vec<_>>().join("; "))
        });
        FeedHealth {
            state: if error.is_none() { "ok" } else { "degraded" },
            listening: self.listening.get() == 1,
            notify: self.notify,
            backlog: self.backlog.get(),
            oldest_age_ms: (self.oldest_age.get() * 1000.0) as u64,
            published: self.published.get(),
            rejected: self.rejected.get(),
            error,
        }
    }
}
