//! The connection state machine, sans-IO.
//!
//! A [`Session`] never touches a socket or a clock. The shell feeds it inputs — calls from the app
//! (`subscribe`, `unsubscribe`, `publish`, `close`), transport events (`handle_open`,
//! `handle_text`, `handle_close`) and the current time — and drains [`Output`]s with
//! [`Session::poll_output`]: open a connection, send a frame, deliver an event, settle a publish,
//! report a state. [`Session::poll_timeout`] says when the shell must call
//! [`Session::handle_timeout`] next.

use super::backoff::Backoff;
use super::event::{payload_ids, Event};
use super::filter::Filter;
use super::frame::{self, ChannelEntry, ServerFrame, PROTOCOL_VERSION};
use super::registry::{ChannelChange, Registry, SubId};
use serde_json::value::RawValue;
use std::collections::{BTreeMap, VecDeque};
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
    /// How long after the relay's announced ping interval the link is declared dead.
    pub ping_grace_ms: Millis,
    /// How long a connection may take from opening the socket to the relay's `hello`.
    pub connect_timeout_ms: Millis,
    /// How long a sent publish waits for the relay's ack.
    pub publish_timeout_ms: Millis,
    /// How many publishes may wait for a connection; past that the oldest is rejected.
    pub publish_queue: usize,
    /// How long the connection stays open after the last subscription is gone.
    pub idle_close_ms: Millis,
    /// Seed of the reconnect jitter.
    pub seed: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            backoff_min_ms: 500,
            backoff_max_ms: 20_000,
            ping_grace_ms: 10_000,
            connect_timeout_ms: 10_000,
            publish_timeout_ms: 10_000,
            publish_queue: 100,
            idle_close_ms: 5_000,
            seed: 1,
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
    /// Lost the connection; the next attempt starts after `delay_ms`.
    Reconnecting {
        attempt: u32,
        delay_ms: Millis,
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
    /// No ack within the timeout.
    Timeout { after_ms: Millis },
    /// The connection dropped after the frame was sent and before the ack: the relay may or may not
    /// have published it.
    ConnectionLost,
    /// Too many publishes were waiting for a connection; this one was the oldest.
    QueueFull { capacity: usize },
    /// The relay refused it.
    Rejected { code: String, message: String },
    /// The provider was closed.
    Closed,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::InvalidJson { field, reason } => write!(f, "{field} is not valid JSON: {reason}"),
            PublishError::Timeout { after_ms } => {
                write!(f, "publish timed out: no ack from the relay after {after_ms} ms")
            }
            PublishError::ConnectionLost => write!(
                f,
                "the connection was lost before the relay acknowledged the publish; it may or may not have been published"
            ),
            PublishError::QueueFull { capacity } => write!(
                f,
                "publish dropped: more than {capacity} publishes were waiting for a connection"
            ),
            PublishError::Rejected { code, message } => write!(f, "the relay rejected the publish ({code}): {message}"),
            PublishError::Closed => write!(f, "the live provider was closed"),
        }
    }
}

impl std::error::Error for PublishError {}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Open a new connection to the relay.
    Connect,
    /// Send this text frame on the open connection.
    Send(String),
    /// Close the current connection (the session already counts it as gone).
    Disconnect,
    /// Call these subscriptions' callbacks with the event, in this order.
    Deliver { subs: Vec<SubId>, event: Event },
    /// A publish was acknowledged: the relay gave it this sequence number on its channel.
    PublishAcked { id: PublishId, seq: u64 },
    /// A publish failed.
    PublishFailed { id: PublishId, error: PublishError },
    /// The connection state changed.
    State(ConnectionState),
    /// Something from the network was wrong; nothing was thrown, this is for the error hook.
    Problem(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Link {
    /// No connection and no reason to have one.
    Idle,
    /// A connection is being opened; `opened` once the socket is open, waiting for `hello`.
    Connecting { since: Millis },
    /// `hello` received.
    Open { last_rx: Millis, ping_ms: Millis },
    /// Waiting before the next attempt.
    Waiting { until: Millis },
    /// Closed by the app or for good.
    Closed,
}

#[derive(Debug)]
struct PendingPublish {
    frame: String,
    /// `Some(deadline)` once sent; `None` while waiting for a connection.
    deadline: Option<Millis>,
}

/// The connection state machine. See the module documentation.
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    registry: Registry,
    link: Link,
    backoff: Backoff,
    state: ConnectionState,
    next_publish: PublishId,
    publishes: BTreeMap<PublishId, PendingPublish>,
    idle_deadline: Option<Millis>,
    outputs: VecDeque<Output>,
    problems: u64,
}

impl Session {
    pub fn new(cfg: SessionConfig) -> Self {
        let backoff = Backoff::new(cfg.backoff_min_ms, cfg.backoff_max_ms, cfg.seed);
        Session {
            cfg,
            registry: Registry::new(),
            link: Link::Idle,
            backoff,
            state: ConnectionState::Idle,
            next_publish: 0,
            publishes: BTreeMap::new(),
            idle_deadline: None,
            outputs: VecDeque::new(),
            problems: 0,
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

    /// How many malformed or unexpected things came from the network.
    pub fn problems(&self) -> u64 {
        self.problems
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Adds a subscription; connects if this is the first thing to do.
    pub fn subscribe(&mut self, now: Millis, channel: &str, filter: Filter) -> SubId {
        let (id, change) = self.registry.insert(channel, filter);
        self.idle_deadline = None;
        if change == ChannelChange::Added {
            match self.link {
                Link::Open { .. } => {
                    let entry = [ChannelEntry {
                        channel: channel.into(),
                        seq: None,
                    }];
                    self.send(frame::encode_subscribe(&entry));
                }
                Link::Idle => self.connect(now),
                Link::Connecting { .. } | Link::Waiting { .. } | Link::Closed => {}
            }
        }
        id
    }

    /// Removes a subscription; `false` when it was already gone.
    pub fn unsubscribe(&mut self, now: Millis, id: SubId) -> bool {
        let Some((channel, change)) = self.registry.remove(id) else {
            return false;
        };
        if change == ChannelChange::Removed {
            if let Link::Open { .. } = self.link {
                let entry = [ChannelEntry {
                    channel: channel.as_str().into(),
                    seq: None,
                }];
                self.send(frame::encode_unsubscribe(&entry));
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
        let payload: &RawValue =
            serde_json::from_str(payload).map_err(|e| PublishError::InvalidJson {
                field: "payload",
                reason: e.to_string(),
            })?;
        let meta: Option<&RawValue> = match meta {
            Some(m) => Some(
                serde_json::from_str(m).map_err(|e| PublishError::InvalidJson {
                    field: "meta",
                    reason: e.to_string(),
                })?,
            ),
            None => None,
        };
        self.next_publish += 1;
        let id = self.next_publish;
        let text = frame::encode_publish(id, channel, kind, payload, date_ms, meta);
        self.idle_deadline = None;
        match self.link {
            Link::Open { .. } => {
                self.send(text.clone());
                let deadline = Some(now + self.cfg.publish_timeout_ms);
                self.publishes.insert(
                    id,
                    PendingPublish {
                        frame: text,
                        deadline,
                    },
                );
            }
            Link::Closed => return Err(PublishError::Closed),
            Link::Idle | Link::Connecting { .. } | Link::Waiting { .. } => {
                self.publishes.insert(
                    id,
                    PendingPublish {
                        frame: text,
                        deadline: None,
                    },
                );
                self.trim_publish_queue();
                if self.link == Link::Idle {
                    self.connect(now);
                }
            }
        }
        Ok(id)
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

    /// The transport opened. The session waits for the relay's `hello` before it counts as open.
    pub fn handle_open(&mut self, _now: Millis) {}

    /// A text frame arrived.
    pub fn handle_text(&mut self, now: Millis, text: &str) {
        match &mut self.link {
            Link::Open { last_rx, .. } => *last_rx = now,
            Link::Connecting { .. } => {}
            // A frame from a connection the session already gave up on.
            Link::Idle | Link::Waiting { .. } | Link::Closed => return,
        }
        let frame = match frame::decode_server(text) {
            Ok(f) => f,
            Err(e) => return self.problem(format!("malformed frame from the relay: {e}")),
        };
        match frame {
            ServerFrame::Hello {
                version, ping_ms, ..
            } => self.on_hello(now, version, ping_ms),
            ServerFrame::Event(ev) => {
                let ids = match payload_ids(ev.payload) {
                    Ok(ids) => ids,
                    Err(e) => {
                        // Deliver as if the event had no ids: a needless refetch beats a lost update.
                        self.problem(format!(
                            "event on `{}`: {e}; delivered without id filtering",
                            ev.channel
                        ));
                        None
                    }
                };
                let subs = self.registry.route(&ev.channel, &ev.kind, ids.as_deref());
                if subs.is_empty() {
                    return;
                }
                let event = Event {
                    channel: ev.channel.into_owned(),
                    kind: ev.kind.into_owned(),
                    seq: ev.seq,
                    payload: ev.payload.get().to_owned(),
                    date: ev.date,
                    meta: ev.meta.map(|m| m.get().to_owned()),
                    ids,
                };
                self.outputs.push_back(Output::Deliver { subs, event });
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
            } if self.publishes.contains_key(&id) => {
                self.publishes.remove(&id);
                let error = PublishError::Rejected {
                    code: code.into_owned(),
                    message: message.into_owned(),
                };
                self.outputs.push_back(Output::PublishFailed { id, error });
                self.check_idle(now);
            }
            ServerFrame::Error { code, message, .. } => {
                self.problem(format!("the relay reported an error ({code}): {message}"))
            }
            ServerFrame::Ping => self.send(frame::encode_pong()),
            ServerFrame::Subscribed { .. } | ServerFrame::Pong => {}
        }
    }

    /// The transport closed (or failed to open). `reason` is for the state report.
    pub fn handle_close(&mut self, now: Millis, reason: &str) {
        match self.link {
            Link::Open { .. } | Link::Connecting { .. } => self.lose_link(now, reason),
            Link::Idle | Link::Waiting { .. } | Link::Closed => {}
        }
    }

    /// When the shell must call [`Session::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let link = match self.link {
            Link::Connecting { since } => Some(since + self.cfg.connect_timeout_ms),
            Link::Open { last_rx, ping_ms } => Some(last_rx + ping_ms + self.cfg.ping_grace_ms),
            Link::Waiting { until } => Some(until),
            Link::Idle | Link::Closed => None,
        };
        let publish = self.publishes.values().filter_map(|p| p.deadline).min();
        [link, publish, self.idle_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Time passed: fire whatever deadline is due.
    pub fn handle_timeout(&mut self, now: Millis) {
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
        match self.link {
            Link::Connecting { since } if now >= since + self.cfg.connect_timeout_ms => {
                self.outputs.push_back(Output::Disconnect);
                let reason = format!(
                    "no hello from the relay within {} ms",
                    self.cfg.connect_timeout_ms
                );
                self.lose_link(now, &reason);
            }
            Link::Open { last_rx, ping_ms }
                if now >= last_rx + ping_ms + self.cfg.ping_grace_ms =>
            {
                self.outputs.push_back(Output::Disconnect);
                let reason = format!("nothing heard from the relay for {} ms", now - last_rx);
                self.lose_link(now, &reason);
            }
            Link::Waiting { until } if now >= until => self.connect(now),
            _ => {}
        }
        if self.idle_deadline.is_some_and(|d| now >= d) {
            self.idle_deadline = None;
            if self.has_work() {
                return;
            }
            if matches!(self.link, Link::Open { .. } | Link::Connecting { .. }) {
                self.outputs.push_back(Output::Disconnect);
            }
            self.link = Link::Idle;
            self.set_state(ConnectionState::Idle);
        }
        self.check_idle(now);
    }

    fn on_hello(&mut self, now: Millis, version: u32, ping_ms: Millis) {
        if version != PROTOCOL_VERSION {
            self.problem(format!(
                "the relay speaks protocol version {version}; this client speaks {PROTOCOL_VERSION}"
            ));
            self.close(&format!("incompatible relay (protocol {version})"));
            return;
        }
        self.link = Link::Open {
            last_rx: now,
            ping_ms,
        };
        self.backoff.reset();
        self.set_state(ConnectionState::Open);
        let channels: Vec<ChannelEntry> = self
            .registry
            .channels()
            .map(|c| ChannelEntry {
                channel: c.into(),
                seq: None,
            })
            .collect();
        if !channels.is_empty() {
            let text = frame::encode_subscribe(&channels);
            self.send(text);
        }
        let deadline = now + self.cfg.publish_timeout_ms;
        let mut queued = Vec::new();
        for p in self.publishes.values_mut().filter(|p| p.deadline.is_none()) {
            p.deadline = Some(deadline);
            queued.push(p.frame.clone());
        }
        for text in queued {
            self.send(text);
        }
        self.check_idle(now);
    }

    fn connect(&mut self, now: Millis) {
        self.link = Link::Connecting { since: now };
        self.outputs.push_back(Output::Connect);
        self.set_state(ConnectionState::Connecting);
    }

    fn lose_link(&mut self, now: Millis, reason: &str) {
        let sent: Vec<PublishId> = self
            .publishes
            .iter()
            .filter(|(_, p)| p.deadline.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in sent {
            self.publishes.remove(&id);
            self.outputs.push_back(Output::PublishFailed {
                id,
                error: PublishError::ConnectionLost,
            });
        }
        if !self.has_work() {
            self.link = Link::Idle;
            self.idle_deadline = None;
            self.set_state(ConnectionState::Idle);
            return;
        }
        let delay_ms = self.backoff.next_delay();
        self.link = Link::Waiting {
            until: now + delay_ms,
        };
        self.set_state(ConnectionState::Reconnecting {
            attempt: self.backoff.attempt(),
            delay_ms,
            reason: reason.to_owned(),
        });
    }

    /// Whether there is a reason to be connected.
    fn has_work(&self) -> bool {
        !self.registry.is_empty() || !self.publishes.is_empty()
    }

    /// Arms (or drops) the idle-close deadline after something went away.
    fn check_idle(&mut self, now: Millis) {
        if self.has_work() {
            self.idle_deadline = None;
            return;
        }
        match self.link {
            Link::Open { .. } | Link::Connecting { .. } => {
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
        let waiting: Vec<PublishId> = self
            .publishes
            .iter()
            .filter(|(_, p)| p.deadline.is_none())
            .map(|(id, _)| *id)
            .collect();
        let over = waiting.len().saturating_sub(self.cfg.publish_queue);
        for id in waiting.into_iter().take(over) {
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

    fn problem(&mut self, message: String) {
        self.problems += 1;
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
mod tests;
