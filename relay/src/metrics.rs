//! The relay's Prometheus metrics (`GET /metrics`, text exposition format), kept in a registry of
//! their own per relay (so several relays in one process, as in the tests, do not mix).

use crate::broker::stats::Stats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Limit {
    pub limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Action {
    pub action: &'static str,
}

/// The names of the limits counted in `live_relay_limit_hits_total`.
pub mod limit {
    pub const PUBLISH_RATE: &str = "publish_rate";
    pub const CONNECTIONS_PER_IP: &str = "connections_per_ip";
    pub const MAX_CHANNELS: &str = "max_channels";
    /// A frame (WebSocket) or body (HTTP) over `--max-frame-bytes`, or a frame over the small cap
    /// before `auth`.
    pub const FRAME_SIZE: &str = "frame_size";
    /// A WebSocket frame over the transport's own limit: the connection was closed with 1009.
    pub const TRANSPORT_SIZE: &str = "transport_size";
    /// A channel name over `--max-channel-len` (subscribe or publish).
    pub const CHANNEL_LEN: &str = "channel_len";
    /// A connection refused over `--max-connections`.
    pub const CONNECTIONS: &str = "connections";
    /// An SSE ticket refused: its user has too many waiting, or the relay's map is full.
    pub const SSE_TICKETS: &str = "sse_tickets";
    pub const ORIGIN: &str = "origin";
    /// A request head or body not received in time (`--request-timeout-ms`; slowloris).
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
    /// A WebSocket closed after two ping intervals without a frame from its client.
    pub const SILENCE: &str = "silence";
    /// A WebSocket closed because one write to it did not complete in two ping intervals.
    pub const WRITE_TIMEOUT: &str = "write_timeout";
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections: Gauge,
    channels: Gauge,
    subscriptions: Gauge,
    history_events: Gauge,
    known_channels: Gauge,
    redis_outages: prometheus_client::metrics::gauge::Gauge<u64, std::sync::atomic::AtomicU64>,
    redis_push_overflows:
        prometheus_client::metrics::gauge::Gauge<u64, std::sync::atomic::AtomicU64>,
    pub published: Counter,
    pub delivered: Counter,
    pub replayed: Counter,
    pub resyncs: Counter,
    pub auth_failures: Family<Reason, Counter>,
    pub forbidden: Family<Action, Counter>,
    pub limit_hits: Family<Limit, Counter>,
    pub slow_consumers: Counter,
    pub token_refreshes: Counter,
    pub token_expiries: Counter,
    /// `live_relay_presence_*`.
    pub presence: crate::presence::metrics::PresenceMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            registry: Registry::with_prefix("live_relay"),
            connections: Gauge::default(),
            channels: Gauge::default(),
            subscriptions: Gauge::default(),
            history_events: Gauge::default(),
            known_channels: Gauge::default(),
            redis_outages: Default::default(),
            redis_push_overflows: Default::default(),
            published: Counter::default(),
            delivered: Counter::default(),
            replayed: Counter::default(),
            resyncs: Counter::default(),
            auth_failures: Family::default(),
            forbidden: Family::default(),
            limit_hits: Family::default(),
            slow_consumers: Counter::default(),
            token_refreshes: Counter::default(),
            token_expiries: Counter::default(),
            presence: Default::default(),
        };
        m.presence.register(&mut m.registry);
        m.registry.register(
            "connections",
            "Open WebSocket and SSE connections",
            m.connections.clone(),
        );
        m.registry
            .register("channels", "Channels with a subscriber", m.channels.clone());
        m.registry.register(
            "subscriptions",
            "(connection, channel) subscriptions",
            m.subscriptions.clone(),
        );
        m.registry.register(
            "history_events",
            "Events kept in the channels' history",
            m.history_events.clone(),
        );
        m.registry.register(
            "channels_known",
            "Channels the relay keeps: with a subscriber or kept events (others are forgotten)",
            m.known_channels.clone(),
        );
        m.registry.register(
            "redis_outages",
            "Times this cluster node lost Redis (each closed every connection with 1013)",
            m.redis_outages.clone(),
        );
        m.registry.register(
            "redis_push_overflows",
            "Pub/sub messages this node dropped for falling behind (each one an outage)",
            m.redis_push_overflows.clone(),
        );
        m.registry
            .register("events_published", "Events published", m.published.clone());
        m.registry.register(
            "events_delivered",
            "Event and skip frames written to connections",
            m.delivered.clone(),
        );
        m.registry.register(
            "channels_recovered",
            "Resumed channels whose missed events were replayed",
            m.replayed.clone(),
        );
        m.registry.register(
            "channels_not_recovered",
            "Resumed channels that could not be replayed (the client resyncs)",
            m.resyncs.clone(),
        );
        m.registry.register(
            "auth_failures",
            "Refused tokens, API keys and tickets, by reason",
            m.auth_failures.clone(),
        );
        m.registry.register(
            "forbidden",
            "Subscribes and publishes a valid credential did not allow",
            m.forbidden.clone(),
        );
        m.registry.register(
            "limit_hits",
            "Requests refused by a limit",
            m.limit_hits.clone(),
        );
        m.registry.register(
            "slow_consumer_kicks",
            "Connections closed because their outbound queue was full",
            m.slow_consumers.clone(),
        );
        m.registry.register(
            "token_refreshes",
            "Tokens refreshed in-band",
            m.token_refreshes.clone(),
        );
        m.registry.register(
            "token_expiries",
            "Connections closed because their token expired",
            m.token_expiries.clone(),
        );
        m
    }
}

impl Metrics {
    /// The registry, to add the metrics of a part that is not always on (the PostgreSQL feed).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures.get_or_create(&Reason { reason }).inc();
    }

    pub fn limit_hit(&self, limit: &'static str) {
        self.limit_hits.get_or_create(&Limit { limit }).inc();
    }

    /// Counts a resumed channel (`recovered` of its `subscribed` entry; `None`: not a resume).
    pub fn resumed(&self, recovered: Option<bool>) {
        match recovered {
            Some(true) => self.replayed.inc(),
            Some(false) => self.resyncs.inc(),
            None => 0,
        };
    }

    pub fn forbid(&self, action: &'static str) {
        self.forbidden.get_or_create(&Action { action }).inc();
    }

    /// The exposition text, with the gauges read from the broker's `stats` now.
    pub fn render(&self, stats: &Stats) -> String {
        let gauge = |g: &Gauge, v: usize| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        gauge(&self.connections, stats.connections);
        gauge(&self.channels, stats.channels);
        gauge(&self.subscriptions, stats.subscriptions);
        gauge(&self.history_events, stats.history_events);
        gauge(&self.known_channels, stats.known_channels);
        self.redis_outages.set(stats.redis_outages);
        self.redis_push_overflows.set(stats.redis_push_overflows);
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!("metrics could not be encoded: {e}");
        }
        text
    }
}
