//! The connection state machine, sans-IO.
//!
//! A [`Session`] never touches a socket or a clock. The shell feeds it inputs — calls from the app
//! (`subscribe`, `unsubscribe`, `publish`, `close`), transport events (`handle_open`,
//! `handle_text`, `handle_close`), what the page knows (`set_online`, `set_visible`,
//! `set_frozen`) and the current time — and drains [`Output`]s with [`Session::poll_output`]:
//! open a connection, send a frame, deliver an event, settle a publish, report a state.
//! [`Session::poll_timeout`] says when the shell must call [`Session::handle_timeout`] next.
//!
//! Across reconnects nothing is lost silently: the session remembers, per channel, the last `seq`
//! it delivered and the relay `epoch` it belongs to, resubscribes with that position, drops
//! replayed duplicates, and when the relay cannot replay the gap hands every subscription of the
//! channel one [`Output::Resync`]. Publishes carry an idempotency key and are resent after a
//! reconnect until acknowledged.

use super::backoff::{Backoff, XorShift};
use super::coalesce::Coalescer;
use super::event::{payload_ids, Event};
use super::filter::Filter;
use super::frame::{self, ChannelEntry, Position, ServerFrame, PROTOCOL_VERSION};
use super::json;
use super::registry::{ChannelChange, Registry, SubId};
#[cfg(feature = "simple")]
use super::simple::{no_replay_reason, Protocol};
use super::text;
use crate::cat;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;

/// Milliseconds on the shell's monotonic clock.
pub type Millis = u64;

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
    /// delay (as it does after a connection useful for [`MIN_USEFUL_MS`]: see there).
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
    /// one ([`Output::NeedToken`]), and the session refreshes it before it expires.
    pub auth: bool,
    /// How many relay URLs the shell can reach: nodes of one cluster, which announce the same
    /// epoch and resume any subscription. A failed attempt or a dropped connection sends the next
    /// attempt to the next relay, round robin ([`Session::relay`]). `0` counts as `1`.
    pub relays: usize,
    /// Coalescing of event bursts ([`super::coalesce`]): a subscription gets the first event at
    /// once, then at most one (trailing, merged) event per this many ms. `0`: off, every event is
    /// delivered. [`Session::set_coalesce_ms`] sets one subscription's own window.
    pub coalesce_ms: Millis,
    /// The shell keeps every frame it hands to [`Session::handle_text`] and builds the app's event
    /// from it: the deliveries of that frame come as [`Output::DeliverFrame`], and the event is not
    /// copied into Rust strings (only an event a coalescing window holds back is). Off (the
    /// default): every delivery is an [`Output::Deliver`] carrying the [`Event`].
    pub deliver_frames: bool,
    /// The server's protocol. With [`Protocol::Simple`] the shell translates every frame
    /// ([`super::simple`]) and the resync after a reconnect says why.
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

/// The connection as the app sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Nothing to do: no subscription and no publish waiting.
    Idle,
    /// Opening a connection (first time, or after a wait).
    Connecting,
    /// Connected; subscriptions are live.
    Open,
    /// Lost the connection. The next attempt starts after `delay_ms`, or — when `None` — as soon as
    /// the browser is online, the page visible and not frozen again.
    Reconnecting {
        attempt: u32,
        delay_ms: Option<Millis>,
        reason: String,
    },
    /// Closed for good (by the app, or the relay speaks another protocol version).
    Closed { reason: String },
}

impl ConnectionState {
    pub fn name(&self) -> &'static str {
        match self {
            ConnectionState::Idle => "idle",
            ConnectionState::Connecting => "connecting",
            ConnectionState::Open => "open",
            ConnectionState::Reconnecting { .. } => "reconnecting",
            ConnectionState::Closed { .. } => "closed",
        }
    }
}

/// Why a publish did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishError {
    /// The payload or meta given was not valid JSON.
    InvalidJson { field: &'static str, reason: String },
    /// No ack within the timeout. The relay may or may not have published it.
    Timeout { after_ms: Millis },
    /// Too many publishes were waiting for a connection; this one was the oldest.
    QueueFull { capacity: usize },
    /// The relay refused it.
    Rejected { code: String, message: String },
    /// The provider was closed.
    Closed,
}

impl PublishError {
    /// A stable name for the kind of error (the JS error's `code`).
    pub fn code(&self) -> &'static str {
        match self {
            PublishError::InvalidJson { .. } => "invalid_json",
            PublishError::Timeout { .. } => "timeout",
            PublishError::QueueFull { .. } => "queue_full",
            PublishError::Rejected { .. } => "rejected",
            PublishError::Closed => "closed",
        }
    }
}

impl PublishError {
    /// What went wrong, for the app (built without `core::fmt`; see `engine::text`).
    pub fn message(&self) -> String {
        match self {
            PublishError::InvalidJson { field, reason } => {
                cat!(field, " is not valid JSON: ", reason)
            }
            PublishError::Timeout { after_ms } => cat!(
                "publish timed out: no ack from the relay within ",
                after_ms,
                " ms (it may or may not have been published)"
            ),
            PublishError::QueueFull { capacity } => cat!(
                "publish dropped: more than ",
                capacity,
                " publishes were waiting for a connection"
            ),
            PublishError::Rejected { code, message } => {
                cat!("the relay rejected the publish (", code, "): ", message)
            }
            PublishError::Closed => "the live provider was closed".to_owned(),
        }
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for PublishError {}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Open a new WebSocket to the relay.
    Connect,
    /// Open a new Server-Sent Events stream; `query` (`channels=…&since=…`) goes after `?` in the
    /// stream URL (the shell adds its own parameters, such as scopes, with `&`).
    #[cfg(feature = "sse")]
    ConnectStream { query: String },
    /// POST this JSON body to the relay's `/publish` (SSE transport); report the answer with
    /// [`Session::handle_publish_result`].
    #[cfg(feature = "sse")]
    PostPublish { id: PublishId, body: String },
    /// Send this text frame on the open connection.
    Send(String),
    /// Close the current connection (the session already counts it as gone).
    Disconnect,
    /// Call these subscriptions' callbacks with the event, in this order.
    Deliver { subs: Vec<SubId>, event: Event },
    /// Call these subscriptions' callbacks, in this order, with the event of the frame just handed
    /// to [`Session::handle_text`], as it is (a `date` JS cannot represent becomes the receipt
    /// time, a `meta` that is not an object is left out). Comes out of that very call, before any
    /// other input, and only with [`SessionConfig::deliver_frames`].
    DeliverFrame { subs: Vec<SubId> },
    /// Events of `channel` were missed and cannot be replayed: call these subscriptions' callbacks
    /// once with a resync event (type [`frame::RESYNC_TYPE`]) so that they refetch.
    Resync {
        subs: Vec<SubId>,
        channel: String,
        reason: String,
    },
    /// A publish was acknowledged: the relay gave it this sequence number on its channel.
    PublishAcked { id: PublishId, seq: u64 },
    /// A publish failed.
    PublishFailed { id: PublishId, error: PublishError },
    /// The connection state changed.
    State(ConnectionState),
    /// Get a token (call the app's `getToken`, or take the configured `token`) and answer with
    /// [`Session::handle_token`] and this `request`. Asked before every connection and before the
    /// current token expires.
    NeedToken { request: u64 },
    /// An error for the app's error hook, with a stable `code`: the relay's code for an `error`
    /// frame that answers no publish (`forbidden` with the refused `channel`, `unauthorized`,
    /// `rate_limited`, …), or [`TOKEN_ERROR_CODE`] when no token could be obtained.
    Error {
        code: String,
        channel: Option<String>,
        message: String,
    },
    /// Something from the network was wrong; nothing was thrown, this is for the error hook.
    Problem(String),
}

/// Counters, for tests, benchmarks and the curious.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Malformed or unexpected things from the network.
    pub problems: u64,
    /// Events dropped because they had already been delivered (replays after a resume).
    pub duplicates: u64,
    /// Resync outputs (one per channel and gap).
    pub resyncs: u64,
    /// Connections that reached `hello`.
    pub connections: u64,
    /// Events received in order, each once (whether or not a subscription's filter wanted it).
    pub delivered: u64,
    /// Of those, the events the relay replayed on a resume (missed while disconnected).
    pub replayed: u64,
    /// Callbacks saved by coalescing: events merged into a trailing event that already stood for
    /// one, per subscription, and events a resync made unnecessary.
    pub coalesced: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum Link {
    /// No connection and no reason to have one.
    Idle,
    /// Waiting for the shell's token before opening the transport (authentication on).
    Authorizing { since: Millis },
    /// A connection is being opened; waiting for `hello`.
    Connecting { since: Millis },
    /// `hello` received at `since`.
    Open {
        since: Millis,
        last_rx: Millis,
        ping_ms: Millis,
    },
    /// Waiting before the next attempt: until a time, or (`None`) until the page can connect again.
    Waiting { until: Option<Millis> },
    /// Closed by the app or for good.
    Closed,
}

#[derive(Debug)]
struct PendingPublish {
    /// The `publish` frame; over SSE the same JSON is the `POST /publish` body (the relay ignores
    /// `op` and `id` there).
    frame: String,
    /// `Some(deadline)` once first sent; `None` while it has never left.
    deadline: Option<Millis>,
    /// SSE: when to POST it again after the relay could not be reached.
    retry_at: Option<Millis>,
    /// SSE with authentication: not POSTed yet, waiting for the first token.
    held: bool,
}

/// What became of a `POST /publish` (SSE transport).
#[cfg(feature = "sse")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishResult {
    /// Accepted with this `seq`.
    Acked(u64),
    /// The relay answered with an error (HTTP 4xx with a code and message).
    Rejected { code: String, message: String },
    /// No answer (network error, HTTP 5xx): it is tried again.
    Unreachable(String),
}

/// Where a channel's delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChannelPosition {
    epoch: String,
    seq: u64,
}

/// What the page says about connecting.
#[derive(Debug, Clone, Copy)]
struct Conditions {
    online: bool,
    visible: bool,
    frozen: bool,
}

impl Conditions {
    fn allow_connecting(&self) -> bool {
        self.online && self.visible && !self.frozen
    }

    fn why_waiting(&self) -> &'static str {
        if self.frozen {
            "the page is frozen (back-forward cache)"
        } else if !self.online {
            "the browser is offline"
        } else {
            "the page is hidden"
        }
    }
}

/// The connection state machine. See the module documentation.
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    registry: Registry,
    link: Link,
    backoff: Backoff,
    state: ConnectionState,
    conditions: Conditions,
    /// The epoch announced by the current connection's `hello`.
    epoch: Option<String>,
    positions: HashMap<String, ChannelPosition>,
    /// Channels whose `subscribed` answer is due on the current connection.
    awaiting: HashSet<String>,
    publish_key_prefix: String,
    next_publish: PublishId,
    publishes: BTreeMap<PublishId, PendingPublish>,
    idle_deadline: Option<Millis>,
    outputs: VecDeque<Output>,
    stats: SessionStats,
    /// Whether the current transport is SSE (`TransportKind::Auto` switches once). Read it with
    /// [`Session::uses_sse`]: always `false` without the `sse` feature.
    #[cfg(feature = "sse")]
    using_sse: bool,
    /// `Auto`: WebSocket attempts in a row that never reached `hello`; a WebSocket that did.
    #[cfg(feature = "sse")]
    ws_failures: u32,
    #[cfg(feature = "sse")]
    ws_worked: bool,
    /// SSE: when to reopen the stream because the channel set changed.
    reopen_at: Option<Millis>,
    /// The last token obtained (authentication on): sent in `auth` frames, used for tickets and
    /// HTTP publishes.
    token: Option<String>,
    /// The token request the session waits for; older answers are ignored.
    token_request: u64,
    /// Refreshing the connection's token before it expires.
    refresh: Refresh,
    /// When the connection's token expires (from the relay's `ttl_ms`, on the session clock).
    expires_at: Option<Millis>,
    /// Channels the relay refused for the token (`forbidden`).
    forbidden: HashSet<String>,
    /// Channels the server refused outright ([`Session::refuse_channels`]), with the error's code
    /// and message: left out of every connection until their subscriptions end.
    refused: HashMap<String, (String, String)>,
    /// The relay (index into the shell's list) of the current connection, or of the next attempt.
    relay: usize,
    /// When the current connection became useful: `hello`, then every channel of its `subscribe`
    /// answered ([`MIN_USEFUL_MS`]).
    useful_since: Option<Millis>,
    /// Channels being replayed after a resume: the last seq of the replay (the `subscribed` seq).
    replaying: HashMap<String, u64>,
    /// The channels the current WebSocket connection unsubscribed (the last [`LEFT_REMEMBERED`]):
    /// their events still in flight are dropped quietly; an event of a channel that is neither
    /// subscribed nor here is a relay bug, counted in `problems`.
    left: VecDeque<String>,
    /// Coalescing windows of the subscriptions.
    coalesce: Coalescer,
}

/// How many unsubscribed channels a connection remembers ([`Session`]'s `left`).
const LEFT_REMEMBERED: usize = 256;

/// The [`Output::Error`] code of a token that could not be obtained (`getToken` threw, rejected,
/// or gave something that is not a non-empty string).
pub const TOKEN_ERROR_CODE: &str = "get_token";

/// A token is refreshed when about three quarters of its lifetime have passed, but at least this
/// long before it expires (half its lifetime for tokens shorter than twice this).
pub const MIN_REFRESH_MARGIN_MS: Millis = 1_000;

/// When to refresh a token that expires in `ttl_ms`, counted from its `authed` answer.
pub fn refresh_delay(ttl_ms: Millis) -> Millis {
    let margin = (ttl_ms / 4).max(MIN_REFRESH_MARGIN_MS.min(ttl_ms / 2));
    ttl_ms - margin
}

/// The longest delay `setTimeout` honours (2^31-1 ms, about 24.8 days); a longer one fires at once.
pub const MAX_TIMER_MS: Millis = (1 << 31) - 1;

/// The delay to hand `setTimeout` for `deadline` at `now`: never negative, never past
/// [`MAX_TIMER_MS`] (waking early is harmless: nothing is due, and the timer is armed again).
pub fn timer_delay(deadline: Millis, now: Millis) -> f64 {
    deadline.saturating_sub(now).min(MAX_TIMER_MS) as f64
}

/// The largest distance from the epoch a JS `Date` can hold, ms (±8.64e15).
pub const MAX_JS_DATE_MS: f64 = 8.64e15;

/// How long a connection must have been useful — every channel of its `subscribe` answered — for
/// its loss to start the backoff again from the smallest delay (see [`SessionConfig::stable_after_ms`]).
///
/// The backoff grows only across attempts that failed before being useful: refused, timed out,
/// dropped before `hello` or before the `subscribed` answer, or dropped within this long of it (a
/// relay that answers and then crashes in a loop is retried with growing delays, as a refusing one
/// is). A link cut every few hundred milliseconds whose connections each got their answer — a
/// flapping proxy — is retried within `backoff_min_ms`, so that the outage stays within the relay's
/// history and the missed events come back as replays, not resyncs.
pub const MIN_USEFUL_MS: Millis = 250;

/// A subscription's channel, as the relay last answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelStatus {
    /// Not (yet) confirmed by the relay on the current connection.
    Pending,
    /// Subscribed on the open connection: events flow.
    Subscribed,
    /// The relay refused the channel for the connection's token (`forbidden`); it is asked again on
    /// every new connection (a new token may allow it).
    Forbidden,
}

impl ChannelStatus {
    pub fn name(self) -> &'static str {
        match self {
            ChannelStatus::Pending => "pending",
            ChannelStatus::Subscribed => "subscribed",
            ChannelStatus::Forbidden => "forbidden",
        }
    }
}

/// Where the refresh of the connection's token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// Nothing to refresh (no connection, or a token without expiry).
    None,
    /// Ask for a new token at this time.
    At(Millis),
    /// The shell is getting a new token.
    Fetching,
    /// The new token was sent in an `auth` frame; waiting for `authed`.
    Sent,
}

/// Consecutive WebSocket attempts that never reach `hello` before `Auto` falls back to SSE.
#[cfg(feature = "sse")]
const WS_FAILURES_BEFORE_SSE: u32 = 2;

impl Session {
    pub fn new(mut cfg: SessionConfig) -> Self {
        // Every span becomes a deadline: none may be further than a timer can wait.
        for span in [
            &mut cfg.backoff_min_ms,
            &mut cfg.backoff_max_ms,
            &mut cfg.stable_after_ms,
            &mut cfg.ping_grace_ms,
            &mut cfg.connect_timeout_ms,
            &mut cfg.publish_timeout_ms,
            &mut cfg.idle_close_ms,
            &mut cfg.reopen_debounce_ms,
        ] {
            *span = (*span).min(MAX_TIMER_MS);
        }
        #[cfg(feature = "sse")]
        let cfg_transport = cfg.transport;
        let coalesce = Coalescer::new(cfg.coalesce_ms);
        let backoff = Backoff::new(cfg.backoff_min_ms, cfg.backoff_max_ms, cfg.seed);
        let mut rng = XorShift::new(cfg.seed.rotate_left(17));
        let mut publish_key_prefix = String::with_capacity(32);
        text::push_hex(&mut publish_key_prefix, rng.next_u64(), 16);
        text::push_hex(&mut publish_key_prefix, rng.next_u64(), 16);
        Session {
            cfg,
            registry: Registry::new(),
            link: Link::Idle,
            backoff,
            state: ConnectionState::Idle,
            conditions: Conditions {
                online: true,
                visible: true,
                frozen: false,
            },
            epoch: None,
            positions: HashMap::new(),
            awaiting: HashSet::new(),
            publish_key_prefix,
            next_publish: 0,
            publishes: BTreeMap::new(),
            idle_deadline: None,
            outputs: VecDeque::new(),
            stats: SessionStats::default(),
            #[cfg(feature = "sse")]
            using_sse: cfg_transport == TransportKind::Sse,
            #[cfg(feature = "sse")]
            ws_failures: 0,
            #[cfg(feature = "sse")]
            ws_worked: false,
            reopen_at: None,
            token: None,
            token_request: 0,
            refresh: Refresh::None,
            expires_at: None,
            forbidden: HashSet::new(),
            refused: HashMap::new(),
            relay: 0,
            useful_since: None,
            replaying: HashMap::new(),
            left: VecDeque::new(),
            coalesce,
        }
    }

    /// The next thing the shell must do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The state last reported.
    pub fn state(&self) -> &ConnectionState {
        &self.state
    }

    pub fn stats(&self) -> SessionStats {
        SessionStats {
            coalesced: self.coalesce.merged_away(),
            ..self.stats
        }
    }

    /// How many malformed or unexpected things came from the network.
    pub fn problems(&self) -> u64 {
        self.stats.problems
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The last token obtained (for SSE tickets and HTTP publishes), when authentication is on.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Where `channel` stands with the relay; `None` when nothing subscribes to it.
    pub fn channel_status(&self, channel: &str) -> Option<ChannelStatus> {
        if !self.registry.has_channel(channel) {
            return None;
        }
        Some(
            if self.forbidden.contains(channel) || self.refused.contains_key(channel) {
                ChannelStatus::Forbidden
            } else if matches!(self.link, Link::Open { .. })
                && !self.awaiting.contains(channel)
                && self.positions.contains_key(channel)
            {
                ChannelStatus::Subscribed
            } else {
                ChannelStatus::Pending
            },
        )
    }

    /// Where a subscription's channel stands with the relay; `None` once it has ended.
    pub fn subscription_status(&self, id: SubId) -> Option<ChannelStatus> {
        self.channel_status(self.registry.channel_of(id)?)
    }

    /// Whether the session currently uses Server-Sent Events (after an `Auto` fallback, too).
    /// Never without the `sse` feature, which lets the compiler drop every SSE path.
    pub fn uses_sse(&self) -> bool {
        #[cfg(feature = "sse")]
        return self.using_sse;
        #[cfg(not(feature = "sse"))]
        false
    }

    /// Which relay ([`SessionConfig::relays`]) the shell must use for [`Output::Connect`],
    /// [`Output::ConnectStream`] and [`Output::PostPublish`]: the one of the current connection,
    /// or — after a failed attempt or a dropped connection — the next one, which the next attempt
    /// goes to. Positions carry over unchanged: the relays of one cluster share the epoch.
    pub fn relay(&self) -> usize {
        self.relay
    }

    /// Adds a subscription; connects if this is the first thing to do.
    pub fn subscribe(&mut self, now: Millis, channel: &str, filter: Filter) -> SubId {
        let (id, change) = self.registry.insert(channel, filter);
        self.idle_deadline = None;
        if change == ChannelChange::Added {
            match self.link {
                Link::Open { .. } | Link::Connecting { .. } if self.uses_sse() => {
                    self.schedule_reopen(now)
                }
                Link::Open { .. } => {
                    self.awaiting.insert(channel.to_owned());
                    self.send(frame::encode_subscribe(&[ChannelEntry::named(channel)]));
                }
                Link::Idle => self.start(now),
                Link::Authorizing { .. }
                | Link::Connecting { .. }
                | Link::Waiting { .. }
                | Link::Closed => {}
            }
        } else if let Some((code, message)) = self.refused.get(channel) {
            // Refused outright by the server: so is this subscription.
            self.outputs.push_back(Output::Error {
                code: code.clone(),
                channel: Some(channel.to_owned()),
                message: message.clone(),
            });
        } else if self.forbidden.contains(channel) {
            // The channel's server-side subscription was already refused: this one is too.
            self.outputs.push_back(Output::Error {
                code: "forbidden".into(),
                channel: Some(channel.to_owned()),
                message: cat!(
                    "the relay refused the subscription to `",
                    channel,
                    "` for this token (forbidden)"
                ),
            });
        }
        id
    }

    /// Gives subscription `id` its own coalescing window, ms (`0`: every event at once), instead
    /// of [`SessionConfig::coalesce_ms`]. Ignored for a subscription that has ended.
    pub fn set_coalesce_ms(&mut self, id: SubId, ms: Millis) {
        if self.registry.channel_of(id).is_some() {
            self.coalesce.set_window(id, ms);
        }
    }

    /// Removes a subscription; `false` when it was already gone.
    pub fn unsubscribe(&mut self, now: Millis, id: SubId) -> bool {
        let Some((channel, change)) = self.registry.remove(id) else {
            return false;
        };
        self.coalesce.remove(id);
        if change == ChannelChange::Removed {
            self.positions.remove(&channel);
            self.awaiting.remove(&channel);
            self.forbidden.remove(&channel);
            let was_refused = self.refused.remove(&channel).is_some();
            if self.uses_sse() {
                if !was_refused
                    && self.has_work()
                    && matches!(self.link, Link::Open { .. } | Link::Connecting { .. })
                {
                    self.schedule_reopen(now);
                }
            } else if let Link::Open { .. } = self.link {
                self.send(frame::encode_unsubscribe(&[ChannelEntry::named(
                    channel.as_str(),
                )]));
                if self.left.len() >= LEFT_REMEMBERED {
                    self.left.pop_front();
                }
                self.left.push_back(channel);
            }
        }
        self.check_idle(now);
        true
    }

    /// Publishes an event. `payload` and `meta` are JSON texts. The result settles later through
    /// [`Output::PublishAcked`] or [`Output::PublishFailed`] with the returned id.
    pub fn publish(
        &mut self,
        now: Millis,
        channel: &str,
        kind: &str,
        payload: &str,
        date_ms: f64,
        meta: Option<&str>,
    ) -> Result<PublishId, PublishError> {
        if self.link == Link::Closed {
            return Err(PublishError::Closed);
        }
        let payload = json::validate(payload).map_err(|e| PublishError::InvalidJson {
            field: "payload",
            reason: e.0.to_owned(),
        })?;
        let meta = match meta {
            Some(m) => Some(json::validate(m).map_err(|e| PublishError::InvalidJson {
                field: "meta",
                reason: e.0.to_owned(),
            })?),
            None => None,
        };
        self.next_publish += 1;
        let id = self.next_publish;
        let key = cat!(self.publish_key_prefix, ':', id);
        let text = frame::PublishOut {
            op: "publish",
            id,
            key: Some(&key),
            channel,
            kind,
            payload,
            date: date_ms,
            meta,
            scopes: None,
        }
        .encode();
        #[cfg(feature = "sse")]
        if self.using_sse {
            // Over HTTP: no need for the stream, nor to wait for it — only for a first token.
            let held = self.cfg.auth && self.token.is_none();
            if !held {
                self.outputs.push_back(Output::PostPublish {
                    id,
                    body: text.clone(),
                });
            }
            let deadline = Some(now + self.cfg.publish_timeout_ms);
            self.publishes.insert(
                id,
                PendingPublish {
                    frame: text,
                    deadline,
                    retry_at: None,
                    held,
                },
            );
            if held && self.link == Link::Idle {
                self.request_token(); // the stream is not needed, but a token is
            }
            return Ok(id);
        }
        self.idle_deadline = None;
        if let Link::Open { .. } = self.link {
            self.send(text.clone());
            let deadline = Some(now + self.cfg.publish_timeout_ms);
            self.publishes.insert(
                id,
                PendingPublish {
                    frame: text,
                    deadline,
                    retry_at: None,
                    held: false,
                },
            );
        } else {
            self.publishes.insert(
                id,
                PendingPublish {
                    frame: text,
                    deadline: None,
                    retry_at: None,
                    held: false,
                },
            );
            self.trim_publish_queue();
            if self.link == Link::Idle {
                self.start(now);
            }
        }
        Ok(id)
    }

    /// SSE: POSTs again the publishes whose retry time has come (the relay could not be reached).
    #[cfg(feature = "sse")]
    fn retry_posts(&mut self, now: Millis) {
        let mut retries = Vec::new();
        for (id, p) in self.publishes.iter_mut() {
            if p.retry_at.is_some_and(|t| t <= now) {
                p.retry_at = None;
                retries.push(Output::PostPublish {
                    id: *id,
                    body: p.frame.clone(),
                });
            }
        }
        self.outputs.extend(retries);
    }

    /// SSE: POSTs the publishes that waited for a first token.
    #[cfg(feature = "sse")]
    fn post_held(&mut self) {
        let mut posts = Vec::new();
        for (id, p) in self.publishes.iter_mut().filter(|(_, p)| p.held) {
            p.held = false;
            posts.push(Output::PostPublish {
                id: *id,
                body: p.frame.clone(),
            });
        }
        self.outputs.extend(posts);
    }

    /// The answer to an [`Output::PostPublish`].
    #[cfg(feature = "sse")]
    pub fn handle_publish_result(&mut self, now: Millis, id: PublishId, result: PublishResult) {
        let Some(pending) = self.publishes.get_mut(&id) else {
            return; // already settled (timed out, closed)
        };
        match result {
            PublishResult::Acked(seq) => {
                self.publishes.remove(&id);
                self.outputs.push_back(Output::PublishAcked { id, seq });
            }
            PublishResult::Rejected { code, message } => {
                self.publishes.remove(&id);
                let error = PublishError::Rejected { code, message };
                self.outputs.push_back(Output::PublishFailed { id, error });
            }
            PublishResult::Unreachable(_) => {
                pending.retry_at = Some(now + self.cfg.backoff_min_ms);
            }
        }
        self.check_idle(now);
    }

    /// Closes for good: the connection, pending publishes, and any further delivery.
    pub fn close(&mut self, reason: &str) {
        if self.link == Link::Closed {
            return;
        }
        if matches!(self.link, Link::Open { .. } | Link::Connecting { .. }) {
            self.outputs.push_back(Output::Disconnect);
        }
        self.link = Link::Closed;
        self.idle_deadline = None;
        self.refresh = Refresh::None;
        self.coalesce.clear();
        for (id, _) in std::mem::take(&mut self.publishes) {
            self.outputs.push_back(Output::PublishFailed {
                id,
                error: PublishError::Closed,
            });
        }
        self.set_state(ConnectionState::Closed {
            reason: reason.to_owned(),
        });
    }

    /// The browser went online or offline (`navigator.onLine`, `online` / `offline` events).
    pub fn set_online(&mut self, now: Millis, online: bool) {
        self.conditions.online = online;
        self.conditions_changed(now);
    }

    /// The page became visible or hidden (`visibilitychange`). A hidden page keeps an open
    /// connection but does not retry a lost one until it is visible again.
    pub fn set_visible(&mut self, now: Millis, visible: bool) {
        self.conditions.visible = visible;
        self.conditions_changed(now);
    }

    /// The page entered (`pagehide` persisted) or left (`pageshow` persisted) the back-forward cache.
    pub fn set_frozen(&mut self, now: Millis, frozen: bool) {
        self.conditions.frozen = frozen;
        self.conditions_changed(now);
    }

    /// The transport opened. The session waits for the relay's `hello` before it counts as open.
    pub fn handle_open(&mut self, _now: Millis) {}

    /// A text frame arrived.
    pub fn handle_text(&mut self, now: Millis, text: &str) {
        match &mut self.link {
            Link::Open { last_rx, .. } => *last_rx = now,
            Link::Connecting { .. } => {}
            // A frame from a connection the session already gave up on.
            Link::Idle | Link::Authorizing { .. } | Link::Waiting { .. } | Link::Closed => return,
        }
        let frame = match frame::decode_server(text) {
            Ok(f) => f,
            Err(e) => {
                return self.problem(cat!(
                    "malformed frame from the relay: ",
                    e.code.as_str(),
                    ": ",
                    e.message
                ))
            }
        };
        if matches!(self.link, Link::Connecting { .. })
            && !matches!(frame, ServerFrame::Hello { .. })
        {
            // The protocol's first frame is `hello`: anything else is not acted on (an event would
            // move the position past events never resumed), and the connection is given up.
            return self.violation(now, "the relay sent a frame before `hello`");
        }
        match frame {
            ServerFrame::Hello {
                version,
                epoch,
                ping_ms,
            } => {
                if let Link::Connecting { .. } = self.link {
                    self.on_hello(now, version, &epoch, ping_ms)
                } else {
                    self.problem("a second `hello` on one connection was ignored".into())
                }
            }
            ServerFrame::Subscribed { channels } => self.on_subscribed(&channels),
            ServerFrame::Event(ev) => self.on_event(now, ev),
            ServerFrame::Skip { channel, seq } => {
                self.advance(&channel, seq);
            }
            ServerFrame::Ack { id, seq } => {
                if self.publishes.remove(&id).is_some() {
                    self.outputs.push_back(Output::PublishAcked { id, seq });
                    self.check_idle(now);
                }
            }
            ServerFrame::Error {
                code,
                message,
                id: Some(id),
                ..
            } if self.publishes.contains_key(&id) => {
                self.publishes.remove(&id);
                let error = PublishError::Rejected {
                    code: code.into_owned(),
                    message: message.into_owned(),
                };
                self.outputs.push_back(Output::PublishFailed { id, error });
                self.check_idle(now);
            }
            ServerFrame::Error {
                code,
                message,
                channel: Some(channel),
                ..
            } if code == "forbidden" => self.on_forbidden(&channel, &message),
            ServerFrame::Error { code, message, .. } => self.on_error(now, &code, &message),
            ServerFrame::Authed { ttl_ms, .. } => self.on_authed(now, ttl_ms),
            ServerFrame::Ping if self.uses_sse() => {} // nothing can be sent back on a stream
            ServerFrame::Ping => self.send(frame::encode_pong()),
            ServerFrame::Pong => {}
        }
        self.check_useful(now);
    }

    /// A binary frame arrived: protocol v1 does not use them. Reported and counted; fatal only
    /// before `hello` (like any frame there).
    pub fn handle_binary(&mut self, now: Millis) {
        match self.link {
            Link::Open { .. } => {
                self.problem("the relay sent a binary frame, which protocol v1 does not use".into())
            }
            Link::Connecting { .. } => {
                self.violation(now, "the relay sent a binary frame before `hello`")
            }
            Link::Idle | Link::Authorizing { .. } | Link::Waiting { .. } | Link::Closed => {}
        }
    }

    /// The shell dropped a frame of `len` (more than `max`) without reading it: it may have been an
    /// event, so the connection is given up as for a protocol violation, and the next one resumes
    /// from the last delivered position (the relay replays the event, or a resync covers it).
    pub fn handle_oversized(&mut self, now: Millis, len: u64, max: u64) {
        if matches!(self.link, Link::Open { .. } | Link::Connecting { .. }) {
            let message = cat!(
                "a frame of ",
                len,
                " characters, over maxFrameBytes (",
                max,
                ")"
            );
            self.violation(now, &message);
        }
    }

    /// The transport closed (or failed to open). `reason` is for the state report.
    pub fn handle_close(&mut self, now: Millis, reason: &str) {
        match self.link {
            Link::Open { .. } | Link::Connecting { .. } => self.lose_link(now, reason, true),
            // Authorizing: no transport yet; a close from an older one changes nothing.
            Link::Idle | Link::Authorizing { .. } | Link::Waiting { .. } | Link::Closed => {}
        }
    }

    /// The answer to [`Output::NeedToken`]: the token, or why none could be obtained. An answer to
    /// an older request (the session has moved on since) is ignored.
    pub fn handle_token(&mut self, now: Millis, request: u64, result: Result<String, String>) {
        if request != self.token_request || self.link == Link::Closed {
            return;
        }
        let token = match result {
            Ok(token) if !token.is_empty() => token,
            Ok(_) => return self.token_failed(now, "getToken gave an empty token".into()),
            Err(reason) => return self.token_failed(now, reason),
        };
        self.token = Some(token);
        #[cfg(feature = "sse")]
        self.post_held();
        match self.link {
            Link::Authorizing { .. } => self.open_transport(now),
            Link::Open { .. } if self.refresh == Refresh::Fetching => {
                if self.uses_sse() {
                    // A stream cannot take a new token: reopen it with a fresh ticket, resuming
                    // every channel from its position.
                    self.refresh = Refresh::None;
                    self.outputs.push_back(Output::Disconnect);
                    self.open_transport(now);
                } else {
                    self.refresh = Refresh::Sent;
                    let text = frame::encode_auth(self.token.as_deref().unwrap_or_default());
                    self.send(text);
                }
            }
            _ => {}
        }
    }

    /// When the shell must call [`Session::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let link = match self.link {
            Link::Authorizing { since } | Link::Connecting { since } => {
                Some(since + self.cfg.connect_timeout_ms)
            }
            Link::Open {
                last_rx, ping_ms, ..
            } => Some(last_rx + self.liveness_span(ping_ms)),
            Link::Waiting { until } => until,
            Link::Idle | Link::Closed => None,
        };
        let publish = self
            .publishes
            .values()
            .flat_map(|p| [p.deadline, p.retry_at])
            .flatten()
            .min();
        let refresh = match (self.refresh, &self.link) {
            (Refresh::At(at), Link::Open { .. }) => Some(at),
            _ => None,
        };
        let coalesce = self.coalesce.deadline();
        [
            link,
            publish,
            self.idle_deadline,
            self.reopen_at,
            refresh,
            coalesce,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Time passed: fire whatever deadline is due.
    pub fn handle_timeout(&mut self, now: Millis) {
        for (subs, event) in self.coalesce.flush(now) {
            self.outputs.push_back(Output::Deliver { subs, event });
        }
        let expired: Vec<PublishId> = self
            .publishes
            .iter()
            .filter(|(_, p)| p.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.publishes.remove(&id);
            let error = PublishError::Timeout {
                after_ms: self.cfg.publish_timeout_ms,
            };
            self.outputs.push_back(Output::PublishFailed { id, error });
        }
        #[cfg(feature = "sse")]
        self.retry_posts(now);
        if self.reopen_at.is_some_and(|t| t <= now) {
            self.reopen_at = None;
            if matches!(self.link, Link::Open { .. } | Link::Connecting { .. }) {
                self.outputs.push_back(Output::Disconnect);
                if self.token.is_some() {
                    // The current token is still good for a ticket: no need to ask for another.
                    self.open_transport(now);
                } else {
                    self.connect(now);
                }
            }
        }
        if let (Refresh::At(at), Link::Open { .. }) = (self.refresh, &self.link) {
            if now >= at {
                self.refresh = Refresh::Fetching;
                self.request_token();
            }
        }
        match self.link {
            Link::Authorizing { since } if now >= since + self.cfg.connect_timeout_ms => {
                let reason = cat!(
                    "getToken did not settle within ",
                    self.cfg.connect_timeout_ms,
                    " ms"
                );
                self.token_failed(now, reason);
            }
            Link::Connecting { since } if now >= since + self.cfg.connect_timeout_ms => {
                self.outputs.push_back(Output::Disconnect);
                let reason = cat!(
                    "no hello from the relay within ",
                    self.cfg.connect_timeout_ms,
                    " ms"
                );
                self.lose_link(now, &reason, true);
            }
            Link::Open {
                last_rx, ping_ms, ..
            } if now >= last_rx + self.liveness_span(ping_ms) => {
                self.outputs.push_back(Output::Disconnect);
                let reason = cat!("nothing heard from the relay for ", now - last_rx, " ms");
                self.lose_link(now, &reason, true);
            }
            Link::Waiting { until: Some(until) } if now >= until => self.connect(now),
            _ => {}
        }
        if self.idle_deadline.is_some_and(|d| now >= d) {
            self.idle_deadline = None;
            if !self.has_work() {
                if matches!(self.link, Link::Open { .. } | Link::Connecting { .. }) {
                    self.outputs.push_back(Output::Disconnect);
                }
                self.link = Link::Idle;
                self.refresh = Refresh::None;
                self.awaiting.clear();
                self.set_state(ConnectionState::Idle);
            }
        }
        self.check_idle(now);
    }

    /// How long the link may stay silent: the relay's ping interval and the grace, at most
    /// [`MAX_TIMER_MS`] (a relay may announce any `ping_ms`).
    fn liveness_span(&self, ping_ms: Millis) -> Millis {
        ping_ms
            .saturating_add(self.cfg.ping_grace_ms)
            .min(MAX_TIMER_MS)
    }

    fn on_hello(&mut self, now: Millis, version: u32, epoch: &str, ping_ms: Millis) {
        if version != PROTOCOL_VERSION {
            self.problem(cat!(
                "the relay speaks protocol version ",
                version,
                "; this client speaks ",
                PROTOCOL_VERSION
            ));
            self.close(&cat!("incompatible relay (protocol ", version, ")"));
            return;
        }
        self.link = Link::Open {
            since: now,
            last_rx: now,
            ping_ms,
        };
        self.epoch = Some(epoch.to_owned());
        self.stats.connections += 1;
        self.set_state(ConnectionState::Open);

        if self.uses_sse() {
            // The stream's URL named the channels (and `awaiting` was set when it was opened);
            // publishes travel over HTTP.
            self.check_useful(now);
            self.check_idle(now);
            return;
        }
        #[cfg(feature = "sse")]
        {
            self.ws_worked = true;
        }
        if self.cfg.auth {
            // The token first: the relay reads frames in order, so the subscribe below is judged
            // with it.
            if let Some(token) = self.token.as_deref() {
                let text = frame::encode_auth(token);
                self.send(text);
            }
        }
        let channels: Vec<ChannelEntry> = self
            .registry
            .channels()
            .map(|c| ChannelEntry {
                since: self.positions.get(c).map(|p| Position {
                    epoch: p.epoch.as_str().into(),
                    seq: p.seq,
                }),
                ..ChannelEntry::named(c)
            })
            .collect();
        if !channels.is_empty() {
            self.awaiting = channels.iter().map(|c| String::from(&*c.channel)).collect();
            let text = frame::encode_subscribe(&channels);
            self.send(text);
        }
        // Everything not yet acknowledged, in order; the relay acks a resent key without publishing
        // it twice.
        let deadline = now + self.cfg.publish_timeout_ms;
        let mut resend = Vec::with_capacity(self.publishes.len());
        for p in self.publishes.values_mut() {
            p.deadline.get_or_insert(deadline);
            resend.push(p.frame.clone());
        }
        for text in resend {
            self.send(text);
        }
        self.check_useful(now);
        self.check_idle(now);
    }

    /// The connection became useful once open with no `subscribed` answer due.
    fn check_useful(&mut self, now: Millis) {
        if self.useful_since.is_none()
            && matches!(self.link, Link::Open { .. })
            && self.awaiting.is_empty()
        {
            self.useful_since = Some(now);
        }
    }

    fn on_subscribed(&mut self, entries: &[ChannelEntry<'_>]) {
        let Some(epoch) = self.epoch.clone() else {
            return;
        };
        for entry in entries {
            let channel = entry.channel.as_ref();
            if !self.awaiting.remove(channel) || !self.registry.has_channel(channel) {
                continue; // an answer to a subscription that has since ended, or a repeat
            }
            self.forbidden.remove(channel);
            let Some(seq) = entry.seq else {
                self.problem(cat!("`subscribed` for `", channel, "` without `seq`"));
                continue;
            };
            let had = self.positions.get(channel).cloned();
            let fresh = ChannelPosition {
                epoch: epoch.clone(),
                seq,
            };
            match (had, entry.recovered) {
                // A new subscription: it starts from now.
                (None, _) => {
                    self.replaying.remove(channel);
                    self.positions.insert(channel.to_owned(), fresh);
                }
                // The missed events follow; the position stays where delivery stopped.
                (Some(old), Some(true)) => {
                    if seq > old.seq {
                        self.replaying.insert(channel.to_owned(), seq);
                    } else {
                        self.replaying.remove(channel);
                    }
                }
                (Some(old), recovered) => {
                    self.replaying.remove(channel);
                    let reason = match recovered {
                        #[cfg(feature = "simple")]
                        _ if self.cfg.protocol == Protocol::Simple => no_replay_reason(channel),
                        Some(false) if old.epoch != epoch => cat!(
                            "the relay restarted (epoch ",
                            old.epoch,
                            " → ",
                            epoch,
                            ") and cannot replay `",
                            channel,
                            "`"
                        ),
                        Some(false) => cat!(
                            "the relay no longer has the events of `",
                            channel,
                            "` after seq ",
                            old.seq
                        ),
                        _ => cat!("the relay did not say whether it replays `", channel, "`"),
                    };
                    self.positions.insert(channel.to_owned(), fresh);
                    self.resync(channel, reason);
                }
            }
        }
    }

    /// Moves `channel`'s position to `seq`. `false` when the frame must be dropped: stale (from a
    /// server-side subscription that has ended), not subscribed, or already delivered.
    fn advance(&mut self, channel: &str, seq: u64) -> bool {
        if self.awaiting.contains(channel) {
            return false; // from a server-side subscription that ended before the one being answered
        }
        let Some(position) = self.positions.get_mut(channel) else {
            // Not subscribed (any more). Over SSE the stream names its channels, and an Igniter
            // stream carries revalidations to everyone.
            if !self.uses_sse()
                && !self.registry.has_channel(channel)
                && !self.left.iter().any(|c| c == channel)
            {
                self.problem(cat!(
                    "the relay sent an event of `",
                    channel,
                    "`, which this connection did not subscribe to; dropped"
                ));
            }
            return false;
        };
        if seq <= position.seq {
            self.stats.duplicates += 1;
            return false;
        }
        let gap = seq > position.seq + 1;
        let missed_from = position.seq + 1;
        position.seq = seq;
        if gap {
            let reason = cat!(
                "events ",
                missed_from,
                "..",
                seq - 1,
                " of `",
                channel,
                "` never arrived"
            );
            self.problem(reason.clone());
            self.resync(channel, reason);
        }
        true
    }

    fn on_event(&mut self, now: Millis, ev: frame::EventFrame<'_>) {
        let channel = ev.channel.as_ref();
        if !self.advance(channel, ev.seq) {
            return;
        }
        self.stats.delivered += 1;
        if let Some(&last) = self.replaying.get(channel) {
            if ev.seq <= last {
                self.stats.replayed += 1;
            }
            if ev.seq >= last {
                self.replaying.remove(channel);
            }
        }
        let ids = match payload_ids(ev.payload) {
            Ok(ids) => ids,
            Err(e) => {
                // Deliver as if the event had no ids: a needless refetch beats a lost update.
                self.problem(cat!(
                    "event on `",
                    channel,
                    "`: payload.ids ",
                    e.0,
                    "; delivered without id filtering"
                ));
                None
            }
        };
        // Never lose the event for an odd field: a date JS cannot represent becomes the receipt
        // time (NaN here: the shell, which has the wall clock, puts it in), a meta that is not an
        // object is dropped.
        let mut date = ev.date;
        if !(date.is_finite() && date.abs() <= MAX_JS_DATE_MS) {
            self.problem(cat!(
                "event ",
                ev.seq,
                " on `",
                channel,
                "`: `date` is not a time JS can represent; delivered with the receipt time"
            ));
            date = f64::NAN;
        }
        let mut meta = ev.meta;
        if meta.is_some_and(|m| !m.starts_with('{')) {
            self.problem(cat!(
                "event ",
                ev.seq,
                " on `",
                channel,
                "`: `meta` is not an object; delivered without it"
            ));
            meta = None;
        }
        let subs = self.registry.route(channel, &ev.kind, ids.as_deref());
        if subs.is_empty() {
            return;
        }
        let seq = ev.seq;
        let event = move || Event {
            channel: ev.channel.into_owned(),
            kind: ev.kind.into_owned(),
            seq,
            payload: ev.payload.to_owned(),
            date,
            meta: meta.map(str::to_owned),
            ids,
        };
        if self.cfg.deliver_frames {
            // The shell builds the app's event from the frame it holds: nothing is copied here
            // unless a coalescing window holds the event back.
            let subs = self.coalesce.route_with(now, subs, event);
            if !subs.is_empty() {
                self.outputs.push_back(Output::DeliverFrame { subs });
            }
        } else {
            let event = event();
            let subs = self.coalesce.route(now, subs, &event);
            if !subs.is_empty() {
                self.outputs.push_back(Output::Deliver { subs, event });
            }
        }
    }

    fn resync(&mut self, channel: &str, reason: String) {
        let subs = self.registry.members(channel);
        self.coalesce.resync(&subs);
        if !subs.is_empty() {
            self.stats.resyncs += 1;
            self.outputs.push_back(Output::Resync {
                subs,
                channel: channel.to_owned(),
                reason,
            });
        }
    }

    /// Leaves `Idle`: connects now, or waits when the page does not allow it.
    fn start(&mut self, now: Millis) {
        if self.conditions.allow_connecting() && self.uses_sse() {
            // The stream's URL names every channel: let the subscriptions of this render gather first.
            self.link = Link::Waiting {
                until: Some(now + self.cfg.reopen_debounce_ms),
            };
            self.set_state(ConnectionState::Connecting);
        } else if self.conditions.allow_connecting() {
            self.connect(now);
        } else {
            self.link = Link::Waiting { until: None };
            let reason = self.conditions.why_waiting();
            self.set_state(ConnectionState::Reconnecting {
                attempt: 0,
                delay_ms: None,
                reason: cat!("not connecting: ", reason),
            });
        }
    }

    /// Starts a connection: with authentication, by asking for a token first.
    fn connect(&mut self, now: Millis) {
        self.refresh = Refresh::None;
        self.expires_at = None;
        if self.cfg.auth {
            self.link = Link::Authorizing { since: now };
            self.awaiting.clear();
            self.reopen_at = None;
            self.request_token();
            self.set_state(ConnectionState::Connecting);
        } else {
            self.open_transport(now);
        }
    }

    fn request_token(&mut self) {
        self.token_request += 1;
        self.outputs.push_back(Output::NeedToken {
            request: self.token_request,
        });
    }

    /// No token: while connecting, this attempt failed (backoff as for a failed connection); while
    /// refreshing, try again later or let the relay end the connection at expiry (then reconnect).
    fn token_failed(&mut self, now: Millis, reason: String) {
        let message = cat!("could not get a token: ", reason);
        self.stats.problems += 1;
        self.outputs.push_back(Output::Error {
            code: TOKEN_ERROR_CODE.into(),
            channel: None,
            message: message.clone(),
        });
        match self.link {
            Link::Authorizing { .. } => {
                self.token_request += 1; // a late answer to this request is ignored
                self.lose_link(now, &message, false);
            }
            Link::Open { .. } if self.refresh == Refresh::Fetching => self.retry_refresh(now),
            Link::Idle => {
                // SSE publishes that were waiting for this token alone.
                let held: Vec<PublishId> = (self.publishes.iter())
                    .filter(|(_, p)| p.held)
                    .map(|(id, _)| *id)
                    .collect();
                for id in held {
                    self.publishes.remove(&id);
                    let error = PublishError::Rejected {
                        code: TOKEN_ERROR_CODE.into(),
                        message: message.clone(),
                    };
                    self.outputs.push_back(Output::PublishFailed { id, error });
                }
            }
            _ => {}
        }
    }

    /// A refresh failed: try again halfway to the expiry while there is time; otherwise the relay
    /// ends the connection when the token expires and the session reconnects with a new one.
    fn retry_refresh(&mut self, now: Millis) {
        self.refresh = match self.expires_at {
            Some(expires) if expires.saturating_sub(now) >= MIN_REFRESH_MARGIN_MS => {
                Refresh::At(now + expires.saturating_sub(now) / 2)
            }
            _ => Refresh::None,
        };
    }

    /// `authed`: the token is accepted for `ttl_ms` more milliseconds (none: no expiry to watch).
    fn on_authed(&mut self, now: Millis, ttl_ms: Option<Millis>) {
        if !matches!(self.link, Link::Open { .. }) {
            return;
        }
        match ttl_ms {
            Some(ttl) if self.cfg.auth => {
                // Refreshing a very long-lived token early is harmless; a deadline past what a
                // timer can wait is not.
                let ttl = ttl.min(MAX_TIMER_MS);
                self.expires_at = Some(now + ttl);
                self.refresh = Refresh::At(now + refresh_delay(ttl));
            }
            _ => {
                self.expires_at = None;
                self.refresh = Refresh::None;
            }
        }
    }

    /// The server refused these channels outright — an Igniter.js server answers a stream that names
    /// a channel its app never registered with HTTP 500 — as `(channel, code, message)`. Each is
    /// reported once, its subscriptions show `forbidden`, and it is left out of every connection
    /// until all of its subscriptions have ended. The attempt that was refused is replaced at once
    /// by one without them: no backoff, the server answered (and every round drops a channel).
    pub fn refuse_channels(&mut self, now: Millis, refusals: &[(String, String, String)]) {
        for (channel, code, message) in refusals {
            if !self.registry.has_channel(channel) || self.refused.contains_key(channel) {
                continue;
            }
            self.awaiting.remove(channel);
            self.positions.remove(channel);
            let entry = (code.clone(), message.clone());
            self.refused.insert(channel.clone(), entry);
            self.stats.problems += 1;
            self.outputs.push_back(Output::Error {
                code: code.clone(),
                channel: Some(channel.clone()),
                message: message.clone(),
            });
        }
        if let Link::Connecting { .. } = self.link {
            if self.has_work() {
                self.open_transport(now);
            } else {
                self.lose_link(now, "the server refused every channel", false);
            }
        }
    }

    /// A channel of a `subscribe` (or of the stream's URL) is not allowed for the token.
    fn on_forbidden(&mut self, channel: &str, message: &str) {
        if !self.registry.has_channel(channel) {
            return; // ended meanwhile
        }
        self.awaiting.remove(channel);
        self.positions.remove(channel);
        if self.forbidden.insert(channel.to_owned()) {
            // Told once per refusal, not again on every reconnect that is refused the same way.
            self.outputs.push_back(Output::Error {
                code: "forbidden".into(),
                channel: Some(channel.to_owned()),
                message: cat!(
                    "the relay refused the subscription to `",
                    channel,
                    "` (forbidden): ",
                    message
                ),
            });
        }
    }

    /// An `error` frame that answers no publish.
    fn on_error(&mut self, now: Millis, code: &str, message: &str) {
        let message = if code == "unauthorized" && self.refresh == Refresh::Sent {
            // The refreshed token was refused; the connection keeps the previous one until it expires.
            self.retry_refresh(now);
            cat!(
                "the relay refused the refreshed token (unauthorized): ",
                message
            )
        } else if code == "unauthorized" && !self.cfg.auth {
            cat!(
                "the relay requires a token (unauthorized): ",
                message,
                "; give the client `token` or `getToken`"
            )
        } else {
            cat!("the relay reported an error (", code, "): ", message)
        };
        self.stats.problems += 1;
        self.outputs.push_back(Output::Error {
            code: code.to_owned(),
            channel: None,
            message,
        });
    }

    /// Opens the transport (the token, if any, is at hand).
    fn open_transport(&mut self, now: Millis) {
        self.link = Link::Connecting { since: now };
        self.left.clear();
        self.useful_since = None;
        self.awaiting.clear();
        self.reopen_at = None;
        #[cfg(feature = "sse")]
        if self.using_sse {
            let refused = &self.refused;
            let channels: Vec<&str> = (self.registry.channels())
                .filter(|c| !refused.contains_key(*c))
                .collect();
            let query = sse_query(&channels, &self.positions);
            self.awaiting = channels.iter().map(|c| String::from(*c)).collect();
            self.outputs.push_back(Output::ConnectStream { query });
            self.set_state(ConnectionState::Connecting);
            return;
        }
        self.outputs.push_back(Output::Connect);
        self.set_state(ConnectionState::Connecting);
    }

    /// SSE: the channel set changed; reopen the stream soon (once for a burst of changes).
    fn schedule_reopen(&mut self, now: Millis) {
        if self.reopen_at.is_none() {
            self.reopen_at = Some(now + self.cfg.reopen_debounce_ms);
        }
    }

    /// The connection (or the attempt, or the wait for its token) is gone. `relay_failed`: the
    /// relay could not be reached or dropped the connection (not: the page went offline, or no
    /// token could be had), so the next attempt goes to the next relay.
    fn lose_link(&mut self, now: Millis, reason: &str, relay_failed: bool) {
        #[cfg(feature = "sse")]
        self.count_websocket_failure(now);
        if relay_failed && matches!(self.link, Link::Connecting { .. } | Link::Open { .. }) {
            self.relay = (self.relay + 1) % self.relay_count();
        }
        self.reopen_at = None;
        self.refresh = Refresh::None;
        self.expires_at = None;
        if let Link::Open { since, .. } = self.link {
            let stable = now.saturating_sub(since) >= self.cfg.stable_after_ms;
            let useful =
                (self.useful_since).is_some_and(|u| now.saturating_sub(u) >= MIN_USEFUL_MS);
            if stable || useful {
                self.backoff.reset();
            }
        }
        self.useful_since = None;
        self.awaiting.clear();
        if !self.has_work() {
            self.link = Link::Idle;
            self.idle_deadline = None;
            self.set_state(ConnectionState::Idle);
            return;
        }
        self.wait_for_retry(now, reason);
    }

    /// `Auto`: a WebSocket attempt that never reached `hello` counts towards the fallback to SSE.
    #[cfg(feature = "sse")]
    fn count_websocket_failure(&mut self, now: Millis) {
        if self.cfg.transport == TransportKind::Auto && !self.using_sse && !self.ws_worked {
            if let Link::Connecting { .. } = self.link {
                self.ws_failures += 1;
                // Every relay gets its chance at a WebSocket before falling back.
                if self.ws_failures >= WS_FAILURES_BEFORE_SSE.max(self.relay_count() as u32) {
                    self.fall_back_to_sse(now);
                }
            }
        }
    }

    /// `Auto`: WebSockets do not get through; continue over Server-Sent Events for good. Publishes
    /// waiting for the WebSocket go out over HTTP now.
    #[cfg(feature = "sse")]
    fn fall_back_to_sse(&mut self, now: Millis) {
        self.using_sse = true;
        self.problem(cat!(
            "WebSocket failed ",
            self.ws_failures,
            " times without reaching the relay; falling back to Server-Sent Events"
        ));
        let deadline = now + self.cfg.publish_timeout_ms;
        let mut posts = Vec::new();
        for (id, p) in self.publishes.iter_mut() {
            p.deadline.get_or_insert(deadline);
            posts.push(Output::PostPublish {
                id: *id,
                body: p.frame.clone(),
            });
        }
        self.outputs.extend(posts);
    }

    fn relay_count(&self) -> usize {
        self.cfg.relays.max(1)
    }

    /// Schedules the next attempt, or waits for the page to allow one.
    fn wait_for_retry(&mut self, now: Millis, reason: &str) {
        if self.conditions.allow_connecting() {
            let delay_ms = self.backoff.next_delay();
            self.link = Link::Waiting {
                until: Some(now + delay_ms),
            };
            self.set_state(ConnectionState::Reconnecting {
                attempt: self.backoff.attempt(),
                delay_ms: Some(delay_ms),
                reason: reason.to_owned(),
            });
        } else {
            self.link = Link::Waiting { until: None };
            self.set_state(ConnectionState::Reconnecting {
                attempt: self.backoff.attempt(),
                delay_ms: None,
                reason: cat!(reason, "; waiting: ", self.conditions.why_waiting()),
            });
        }
    }

    fn conditions_changed(&mut self, now: Millis) {
        let allowed = self.conditions.allow_connecting();
        match self.link {
            // An open connection survives a hidden page, but not going offline or being frozen.
            Link::Open { .. } | Link::Connecting { .. }
                if !self.conditions.online || self.conditions.frozen =>
            {
                self.outputs.push_back(Output::Disconnect);
                let reason = self.conditions.why_waiting();
                self.lose_link(now, reason, false);
            }
            Link::Authorizing { .. } if !self.conditions.online || self.conditions.frozen => {
                self.token_request += 1; // the token being fetched is not needed any more
                let reason = self.conditions.why_waiting();
                self.lose_link(now, reason, false);
            }
            Link::Waiting { .. } if allowed => self.connect(now),
            Link::Waiting { until: Some(_) } => {
                self.link = Link::Waiting { until: None };
                let reason = self.conditions.why_waiting();
                self.wait_for_retry(now, reason);
            }
            _ => {}
        }
    }

    /// Whether there is a reason to be connected.
    fn has_work(&self) -> bool {
        let subscribed = if self.refused.is_empty() {
            !self.registry.is_empty()
        } else {
            (self.registry.channels()).any(|c| !self.refused.contains_key(c))
        };
        subscribed || (!self.uses_sse() && !self.publishes.is_empty())
    }

    /// Arms (or drops) the idle-close deadline after something went away.
    fn check_idle(&mut self, now: Millis) {
        if self.has_work() {
            self.idle_deadline = None;
            return;
        }
        match self.link {
            Link::Open { .. } | Link::Connecting { .. } | Link::Authorizing { .. } => {
                if self.idle_deadline.is_none() {
                    self.idle_deadline = Some(now + self.cfg.idle_close_ms);
                }
            }
            Link::Waiting { .. } => {
                self.link = Link::Idle;
                self.set_state(ConnectionState::Idle);
            }
            Link::Idle | Link::Closed => {}
        }
    }

    fn trim_publish_queue(&mut self) {
        let over = self.publishes.len().saturating_sub(self.cfg.publish_queue);
        let oldest: Vec<PublishId> = self.publishes.keys().take(over).copied().collect();
        for id in oldest {
            self.publishes.remove(&id);
            let error = PublishError::QueueFull {
                capacity: self.cfg.publish_queue,
            };
            self.outputs.push_back(Output::PublishFailed { id, error });
        }
    }

    fn send(&mut self, text: String) {
        self.outputs.push_back(Output::Send(text));
    }

    /// The relay broke the protocol on this connection: reported (counted in `problems`), the
    /// connection dropped and retried with backoff, as if it had failed.
    fn violation(&mut self, now: Millis, message: &str) {
        self.problem(cat!("protocol violation: ", message, "; reconnecting"));
        self.outputs.push_back(Output::Disconnect);
        self.lose_link(now, message, true);
    }

    /// A frame the shell could not translate into this protocol (`protocol: "simple"`): reported
    /// and counted in `problems` like a malformed frame, and dropped.
    pub fn handle_bad_frame(&mut self, message: String) {
        self.problem(message);
    }

    fn problem(&mut self, message: String) {
        self.stats.problems += 1;
        self.outputs.push_back(Output::Problem(message));
    }

    fn set_state(&mut self, state: ConnectionState) {
        if self.state != state {
            self.state = state.clone();
            self.outputs.push_back(Output::State(state));
        }
    }
}

/// The query of an SSE stream URL: `channels=a,b&since=<epoch>:<seq>,,<seq>` (see `docs/PROTOCOL.md`).
/// Positions of another epoch than the first one found cannot be expressed in one `since`; such
/// channels resubscribe without a position and are resynced.
#[cfg(feature = "sse")]
fn sse_query(channels: &[&str], positions: &HashMap<String, ChannelPosition>) -> String {
    let mut query = String::from("channels=");
    for (i, c) in channels.iter().enumerate() {
        if i > 0 {
            query.push(',');
        }
        percent_encode_into(&mut query, c);
    }
    let epoch = channels
        .iter()
        .find_map(|c| positions.get(*c))
        .map(|p| p.epoch.clone());
    if let Some(epoch) = epoch {
        query.push_str("&since=");
        percent_encode_into(&mut query, &epoch);
        query.push(':');
        for (i, c) in channels.iter().enumerate() {
            if i > 0 {
                query.push(',');
            }
            if let Some(p) = positions.get(*c).filter(|p| p.epoch == epoch) {
                text::push_decimal(&mut query, p.seq);
            }
        }
    }
    query
}

/// `encodeURIComponent` for a query value.
#[cfg(feature = "sse")]
pub fn percent_encode_into(out: &mut String, value: &str) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
}

#[cfg(test)]
mod tests;
