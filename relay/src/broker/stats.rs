//! The broker's counts, as `GET /healthz`, `GET /stats/channels` and `/metrics` report them: plain
//! data, below the hub that counts them and the metrics that render them.

use serde::Serialize;

/// The counts reported by `GET /healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Open connections (WebSocket and Server-Sent Events).
    pub connections: usize,
    /// Channels with at least one subscriber.
    pub channels: usize,
    /// (connection, channel) pairs.
    pub subscriptions: usize,
    /// Events kept for replay, over all channels.
    pub history_events: usize,
    /// Channels this node keeps: with subscribers, or with events in their history (in
    /// process), or followed (Redis). The in-process hub forgets the others.
    pub known_channels: usize,
    /// Times this node lost Redis (0 in process).
    pub redis_outages: u64,
    /// Pub/sub messages this node dropped for falling behind (each one an outage; 0 in process).
    pub redis_push_overflows: u64,
}

/// One channel of `GET /stats/channels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChannelStats {
    /// Connections subscribed to the channel.
    pub subscribers: usize,
    /// The seq of the channel's last event (0 when nothing was published on it).
    pub last_seq: u64,
}
