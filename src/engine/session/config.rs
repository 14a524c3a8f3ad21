//! The session's tunables (its clock unit, [`Millis`], is `engine::time`'s).

#[cfg(feature = "simple")]
use crate::engine::simple::Protocol;

pub use crate::engine::time::Millis;

/// A publish's handle, to match its settlement.
pub type PublishId = u64;

/// Tunables of a session; every field has a sensible default.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Smallest reconnect delay cap (first retry waits up to this long).
    pub backoff_min_ms: Millis,
    /// Largest reconnect delay.
    pub backoff_max_ms: Millis,
    /// A connection open this long counts as stable: the backoff starts again from the smallest
    /// delay (as it does after a connection useful for [`super::MIN_USEFUL_MS`]: see there).
    pub stable_after_ms: Millis,
    /// How long after the relay's announced ping interval the link is declared dead.
    pub ping_grace_ms: Millis,
    /// How long a connection may take from opening the socket to the relay's `hello`.
    pub connect_timeout_ms: Millis,
    /// How long a sent publish waits for the relay's ack (counted from its first sending).
    pub publish_timeout_ms: Millis,
    /// How many publishes may wait for a connection; past that the oldest is rejected.
    pub publish_queue: usize,
    /// How long the connection stays open after the last subscription is gone.
    pub idle_close_ms: Millis,
    /// Seed of the reconnect jitter and of the publish keys.
    pub seed: u64,
    /// How to reach the relay.
    pub transport: TransportKind,
    /// With Server-Sent Events, how long to wait after a change of the channel set before reopening
    /// the stream (several subscriptions in one render cost one reopen).
    pub reopen_debounce_ms: Millis,
    /// The relay wants a token (`token` / `getToken`): every connection first asks the shell for
    /// one ([`super::Output::NeedToken`]), and the session refreshes it before it expires.
    pub auth: bool,
    /// How many relay URLs the shell can reach: nodes of one cluster, which announce the same
    /// epoch and resume any subscription. A failed attempt or a dropped connection sends the next
    /// attempt to the next relay, round robin ([`super::Session::relay`]). `0` counts as `1`.
    pub relays: usize,
    /// Coalescing of event bursts ([`crate::engine::coalesce`]): a subscription gets the first event at
    /// once, then at most one (trailing, merged) event per this many ms. `0`: off, every event is
    /// delivered. [`super::Session::set_coalesce_ms`] sets one subscription's own window.
    pub coalesce_ms: Millis,
    /// The shell keeps every frame it hands to [`super::Session::handle_text`] and builds the app's
    /// event from it: the deliveries of that frame come as [`super::Output::DeliverFrame`], and the
    /// event is not copied into Rust strings (only an event a coalescing window holds back is). Off
    /// (the default): every delivery is an [`super::Output::Deliver`] carrying the event.
    pub deliver_frames: bool,
    /// The server's protocol. With [`Protocol::Simple`] the shell translates every frame
    /// ([`crate::engine::simple`]) and the resync after a reconnect says why.
    #[cfg(feature = "simple")]
    pub protocol: Protocol,
}

/// How a session reaches the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// One WebSocket; subscriptions and publishes travel on it.
    WebSocket,
    /// One Server-Sent Events stream whose URL names the channels; publishes are HTTP POSTs.
    #[cfg(feature = "sse")]
    Sse,
    /// WebSocket, falling back to SSE for good when WebSockets cannot connect.
    #[cfg(feature = "sse")]
    Auto,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            backoff_min_ms: 500,
            backoff_max_ms: 20_000,
            stable_after_ms: 5_000,
            ping_grace_ms: 10_000,
            connect_timeout_ms: 10_000,
            publish_timeout_ms: 10_000,
            publish_queue: 100,
            idle_close_ms: 5_000,
            seed: 1,
            transport: TransportKind::WebSocket,
            reopen_debounce_ms: 50,
            auth: false,
            relays: 1,
            coalesce_ms: 0,
            deliver_frames: false,
            #[cfg(feature = "simple")]
            protocol: Protocol::V1,
        }
    }
}
