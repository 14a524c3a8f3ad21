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
//!
//! # Driving a session
//!
//! After every input (an app call, a transport event, [`Session::handle_timeout`]):
//!
//! 1. drain [`Session::poll_output`] until it returns `None`, doing what each [`Output`] says — an
//!    output may lead to further inputs (a `Connect` to `handle_open`), which queue more outputs;
//! 2. then ask [`Session::poll_timeout`] and arm one timer for it (`None`: no timer), replacing the
//!    previous one; when it fires, call [`Session::handle_timeout`] with the current time and go
//!    back to 1. Waking early is harmless ([`timer_delay`]).
//!
//! Times are [`Millis`] on one monotonic clock, never going backwards.
//!
//! # Where things are
//!
//! This file holds the outputs, the [`Session`] itself with its state, and the delivery path
//! (`handle_text`, `on_event`, `resync`). The rest, by idea — the state types in files that import
//! nothing from this one, the parts of the machine (`impl Session` blocks) in files that nothing
//! imports from:
//!
//! | file | holds |
//! |---|---|
//! | `session/config.rs` | [`PublishId`], [`SessionConfig`], [`TransportKind`] ([`Millis`] is `engine::time`'s) |
//! | `session/deadlines.rs` | the deadline table: `Timer`, `Deadlines` ([`MAX_TIMER_MS`] and [`timer_delay`] are `engine::time`'s) |
//! | `session/link.rs` | the `Link` states, the page's `Conditions`, [`MIN_USEFUL_MS`] |
//! | `session/token.rs` | the refresh state of the token, [`refresh_delay`] |
//! | `session/channel_state.rs` | a channel's delivery position, [`ChannelStatus`] |
//! | `session/publish_queue.rs` | [`PublishError`], the queue of pending publishes (`PublishResult`, SSE: `engine::http`) |
//! | `session/sse_query.rs` | the SSE stream's query, `percent_encode_into` |
//! | `session/connection.rs` | the link's transitions: connect, `hello`, lose, back off, idle, close, the page's conditions, the `Auto` fallback |
//! | `session/channels.rs` | subscribing, unsubscribing, channel status, refused and forbidden channels |
//! | `session/positions.rs` | the `subscribed` answers, `advance`, replay tracking |
//! | `session/publishing.rs` | `publish`, its answers over HTTP, timeouts, the queue's limit |
//! | `session/auth.rs` | tokens: asking, answers, refresh, `authed`, `error` frames |
//! | `session/timeouts.rs` | [`Session::poll_timeout`] and [`Session::handle_timeout`]: each timer's deadline and what it fires |

use crate::prelude::*;
mod auth;
mod channel_state;
mod channels;
pub mod config;
mod connection;
pub mod deadlines;
mod link;
mod positions;
mod presence;
mod publish_queue;
mod publishing;
#[cfg(feature = "sse")]
mod sse_query;
mod timeouts;
mod token;

#[cfg(feature = "sse")]
pub use crate::engine::http::PublishResult;
use channel_state::ChannelPosition;
pub use channel_state::ChannelStatus;
pub use config::{Millis, PublishId, SessionConfig, TransportKind};
use deadlines::Deadlines;
pub use deadlines::{timer_delay, MAX_TIMER_MS};
pub use link::MIN_USEFUL_MS;
use link::{Conditions, Link};
use presence::Presences;
pub use presence::{Enter, PresenceStatus};
pub use publish_queue::PublishError;
use publish_queue::PublishQueue;
#[cfg(feature = "sse")]
pub use sse_query::percent_encode_into;
use token::Refresh;
pub use token::{refresh_delay, MIN_REFRESH_MARGIN_MS};

use super::backoff::{Backoff, XorShift};
use super::coalesce::Coalescer;
use super::code::Code;
use super::event::{payload_ids, Event, EventKeys, RecordId};
#[cfg(test)]
use super::filter::Filter; // named by the tests, which `use super::*`
use super::frame::{self, ErrorCode, ServerFrame};
use super::hash::{Map, Set};
use super::registry::{Registry, SubId};
use super::text;
use crate::cat;
use alloc::collections::VecDeque;

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
    /// `rate_limited`, …), or [`Code::GetToken`] when no token could be obtained.
    Error {
        code: Code,
        channel: Option<String>,
        message: String,
    },
    /// Something from the network was wrong; nothing was thrown, this is for the error hook.
    Problem(String),
    /// Where `channel`'s presence membership stands: when it changes, and for each new handle.
    PresenceStatus {
        channel: String,
        status: PresenceStatus,
    },
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
    positions: Map<String, ChannelPosition>,
    /// Channels whose `subscribed` answer is due on the current connection.
    awaiting: Set<String>,
    /// The publishes not settled yet.
    publishes: PublishQueue,
    /// The deadlines the session arms itself (idle close, stream reopen); the others follow from
    /// state (see `timeouts.rs`).
    timers: Deadlines,
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
    forbidden: Set<String>,
    /// Channels the server refused outright ([`Session::refuse_channels`]), with the error's
    /// message: left out of every connection until their subscriptions end.
    refused: Map<String, String>,
    /// The relay (index into the shell's list) of the current connection, or of the next attempt.
    relay: usize,
    /// When the current connection became useful: `hello`, then every channel of its `subscribe`
    /// answered ([`MIN_USEFUL_MS`]).
    useful_since: Option<Millis>,
    /// Channels being replayed after a resume: the last seq of the replay (the `subscribed` seq).
    replaying: Map<String, u64>,
    /// The channels the current WebSocket connection unsubscribed (the last `LEFT_REMEMBERED`, in `channels.rs`):
    /// their events still in flight are dropped quietly; an event of a channel that is neither
    /// subscribed nor here is a relay bug, counted in `problems`.
    left: VecDeque<String>,
    /// Coalescing windows of the subscriptions.
    coalesce: Coalescer,
    /// Presence memberships (`presence.rs`).
    presence: Presences,
}

pub use crate::engine::frame::MAX_JS_DATE_MS;

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
            positions: Map::default(),
            awaiting: Set::default(),
            publishes: PublishQueue::new(publish_key_prefix),
            timers: Deadlines::default(),
            outputs: VecDeque::new(),
            stats: SessionStats::default(),
            #[cfg(feature = "sse")]
            using_sse: cfg_transport == TransportKind::Sse,
            #[cfg(feature = "sse")]
            ws_failures: 0,
            #[cfg(feature = "sse")]
            ws_worked: false,
            token: None,
            token_request: 0,
            refresh: Refresh::None,
            expires_at: None,
            forbidden: Set::default(),
            refused: Map::default(),
            relay: 0,
            useful_since: None,
            replaying: Map::default(),
            left: VecDeque::new(),
            coalesce,
            presence: Presences::new(),
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

    /// An `event` frame arrived that the shell has already read (the browser shell parses each
    /// frame once, in JS): only its routing keys enter the engine, the payload never does.
    /// `make` builds the owned [`Event`] (given the keys' ids back) if a coalescing window holds
    /// it back (or, without [`SessionConfig::deliver_frames`], for [`Output::Deliver`]). It behaves exactly as
    /// [`handle_text`](Self::handle_text) given the frame's text, for a frame whose `date` is a
    /// time JS can represent, whose `meta` is absent or an object and whose `payload.ids` is
    /// absent or a list of ids: the shell hands other frames over as text.
    pub fn handle_event(
        &mut self,
        now: Millis,
        keys: EventKeys<'_>,
        make: impl FnOnce(Option<Vec<RecordId>>) -> Event,
    ) {
        if !self.frame_arrived(now) {
            return;
        }
        if matches!(self.link, Link::Connecting { .. }) {
            return self.violation(now, "the relay sent a frame before `hello`");
        }
        self.route_event(now, keys, make);
        self.check_useful(now);
    }

    /// Notes a frame's arrival on the current connection; `false` when the session already gave
    /// the connection up (the frame is ignored).
    fn frame_arrived(&mut self, now: Millis) -> bool {
        match &mut self.link {
            Link::Open { last_rx, .. } => *last_rx = now,
            Link::Connecting { .. } => {}
            Link::Idle | Link::Authorizing { .. } | Link::Waiting { .. } | Link::Closed => {
                return false
            }
        }
        true
    }

    /// A text frame arrived.
    pub fn handle_text(&mut self, now: Millis, text: &str) {
        self.handle_decoded(now, frame::decode_server(text));
    }

    /// A frame arrived that the shell has already decoded (the browser shell reads the object
    /// JS parsed it into): as [`handle_text`](Self::handle_text) given its text. An `Err` (a frame
    /// that is not one of protocol v1) is reported and dropped.
    pub fn handle_decoded(
        &mut self,
        now: Millis,
        decoded: Result<ServerFrame<'_>, frame::FrameError>,
    ) {
        // A frame from a connection the session already gave up on is ignored.
        if !self.frame_arrived(now) {
            return;
        }
        match decoded {
            Ok(frame) => self.on_frame(now, frame),
            Err(e) => self.problem(cat!(
                "malformed frame from the relay: ",
                e.code.as_str(),
                ": ",
                e.message
            )),
        }
    }

    fn on_frame(&mut self, now: Millis, frame: ServerFrame<'_>) {
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
                presence,
            } => {
                if let Link::Connecting { .. } = self.link {
                    self.on_hello(now, version, &epoch, ping_ms);
                    if let Link::Open { .. } = self.link {
                        self.presence_hello(presence);
                    }
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
                    code: Code::read(&code),
                    message: message.into_owned(),
                };
                self.outputs.push_back(Output::PublishFailed { id, error });
                self.check_idle(now);
            }
            ServerFrame::Error {
                code,
                message,
                channel,
                ..
            } => match (Code::read(&code), channel) {
                (Code::Relay(ErrorCode::Forbidden), Some(channel)) => {
                    self.on_forbidden(&channel, &message)
                }
                (code, _) => self.on_error(now, code, &message),
            },
            // The browser hands presence frames to the entry's JS without the engine
            // (`frameListener`); on a transport whose frames come here (SSE, the simple
            // protocol) there is no presence, and the relay sends none.
            ServerFrame::Presence { .. } => {}
            ServerFrame::Authed { ttl_ms, .. } => self.on_authed(now, ttl_ms),
            ServerFrame::Ping if self.uses_sse() => {} // nothing can be sent back on a stream
            ServerFrame::Ping => self.send(frame::encode_pong()),
            ServerFrame::Pong => {}
        }
        self.check_useful(now);
    }

    fn on_event(&mut self, now: Millis, ev: frame::EventFrame<'_>) {
        let channel = ev.channel.as_ref();
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
        let keys = EventKeys {
            channel,
            seq: ev.seq,
            kind: &ev.kind,
            ids,
        };
        let make = |ids| Event {
            channel: ev.channel.to_string(),
            kind: ev.kind.to_string(),
            seq: ev.seq,
            payload: ev.payload.to_owned(),
            date,
            meta: meta.map(str::to_owned),
            ids,
        };
        self.route_event(now, keys, make);
    }

    /// Routes an event by its keys: positions first (a duplicate or a gap is handled there), then
    /// the registry, then the coalescing windows.
    fn route_event(
        &mut self,
        now: Millis,
        keys: EventKeys<'_>,
        make: impl FnOnce(Option<Vec<RecordId>>) -> Event,
    ) {
        let EventKeys {
            channel,
            seq,
            kind,
            ids,
        } = keys;
        if !self.advance(channel, seq) {
            return;
        }
        self.stats.delivered += 1;
        if let Some(&last) = self.replaying.get(channel) {
            if seq <= last {
                self.stats.replayed += 1;
            }
            if seq >= last {
                self.replaying.remove(channel);
            }
        }
        let subs = self.registry.route(channel, kind, ids.as_deref());
        if subs.is_empty() {
            return;
        }
        if self.cfg.deliver_frames {
            // The shell builds the app's event from the frame it holds: nothing is copied here
            // unless a coalescing window holds the event back.
            let subs = self.coalesce.route_with(now, subs, || make(ids));
            if !subs.is_empty() {
                self.outputs.push_back(Output::DeliverFrame { subs });
            }
        } else {
            let event = make(ids);
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

    fn send(&mut self, text: String) {
        self.outputs.push_back(Output::Send(text));
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

#[cfg(test)]
mod presence_tests;
#[cfg(all(test, feature = "simple"))]
mod simple_tests;
#[cfg(test)]
mod tests;
