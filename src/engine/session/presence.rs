//! Presence (`docs/PROTOCOL.md`, *Presence*): this client's memberships, one per channel.
//!
//! The session keeps what it must send: per channel, whether this client is in the set (`join`) or
//! only watches it, its `data`, and how many handles share the membership (two `presence()`
//! handles on one channel are one membership; the last to go leaves). It sends the frames only
//! after a `hello` whose `features` name `presence`, and again after every reconnect (a `join`
//! with the same key and data: the relay resumes the member without announcing anything).
//! Without the feature (an older relay, Server-Sent Events, the simple protocol) every membership
//! reports [`PresenceStatus::Unsupported`] and nothing is sent.
//!
//! The members themselves are not kept here, nor the relay's `presence` frames read: the browser's
//! socket listener hands those to the entry's JS (`frameListener`, `pkg-template/presence.js`),
//! which keeps the member list, applies the `version` rules, groups members by user and makes a set
//! `live` on its sync. The session reports what only it knows: [`PresenceStatus::Unsupported`]
//! (the `hello`), [`PresenceStatus::Stale`] (the connection lost after a join was sent) and
//! [`PresenceStatus::Closed`]. That keeps the wasm small (issue 26 allows the default build 4,000 B
//! of gzip for presence); what must survive reconnects and be tested on the session's clock is here.

use super::link::Link;
use super::{Millis, Output, Session};
use crate::engine::json;
use crate::prelude::*;

/// Presence request ids start here, far from the publishes' (which count from 1), so that an
/// `error` frame's `id` names one or the other. Below 2^53: JS reads it exactly.
const FIRST_ID: u64 = 1 << 40;

/// Where a membership stands, as its handles report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceStatus {
    /// Waiting for a connection, its `hello`, or the `sync` answering the `join` / `watch`.
    Connecting,
    /// The relay's `sync` arrived on this connection: the members are current (the entry's JS
    /// sets it; the session never reports it).
    Live,
    /// The connection was lost after the members were current: they are kept, maybe outdated.
    Stale,
    /// The relay offers no presence (no `features: ["presence"]` in its `hello`; Server-Sent
    /// Events; the simple protocol).
    Unsupported,
    /// Ended: the last handle left, the client was closed, or the relay refused the channel.
    Closed,
}

impl PresenceStatus {
    pub fn name(self) -> &'static str {
        match self {
            PresenceStatus::Connecting => "connecting",
            PresenceStatus::Live => "live",
            PresenceStatus::Stale => "stale",
            PresenceStatus::Unsupported => "unsupported",
            PresenceStatus::Closed => "closed",
        }
    }
}

/// One channel's membership.
#[derive(Debug)]
pub(super) struct Membership {
    /// Handles in the set.
    joins: u32,
    /// Handles that only watch.
    watches: u32,
    /// This client's `data` (JSON text of an object).
    data: String,
    /// The join's identity members, JSON text (`"key":…`, and in open mode `"user":…,"info":…`).
    who: String,
    /// What this connection was sent: `Some(true)` a `join`, `Some(false)` a `watch`.
    sent: Option<bool>,
    status: PresenceStatus,
}

/// Every membership, and what the current connection offers.
#[derive(Debug)]
pub(super) struct Presences {
    /// Whether the current connection's `hello` offered presence; `None` before it.
    offered: Option<bool>,
    /// By channel: a few (the relay allows 16 per connection), so a list.
    channels: Vec<(String, Membership)>,
    last_id: u64,
}

impl Presences {
    pub(super) fn new() -> Self {
        Presences {
            offered: None,
            channels: Vec::new(),
            last_id: FIRST_ID,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    fn get(&self, channel: &str) -> Option<&Membership> {
        self.channels
            .iter()
            .find(|(c, _)| c == channel)
            .map(|(_, m)| m)
    }

    fn get_mut(&mut self, channel: &str) -> Option<&mut Membership> {
        self.channels
            .iter_mut()
            .find(|(c, _)| c == channel)
            .map(|(_, m)| m)
    }
}

/// What a handle asks for when it enters a channel's presence.
#[derive(Debug, Clone, Copy)]
pub struct Enter<'a> {
    /// JSON text of an object (checked by the caller).
    pub data: &'a str,
    /// Only watch: see the members without being one.
    pub watch: bool,
    /// The join's identity, the JSON text of object members: `"key":…` (this client's member
    /// key, the same for all its memberships and across reconnects) and, in open mode, the
    /// `"user":…` and `"info":…` it declares. The entry builds it (`presence.js`).
    pub who: &'a str,
}

impl Session {
    /// Where `channel`'s membership stands; `None` when there is none.
    pub fn presence_status(&self, channel: &str) -> Option<PresenceStatus> {
        self.presence.get(channel).map(|m| m.status)
    }

    /// A handle enters `channel`'s presence: the first one makes the membership (and connects if
    /// idle); a later one shares it (a joining handle makes a watching membership a joined one,
    /// and its `data` replaces the membership's).
    pub fn presence_enter(&mut self, now: Millis, channel: &str, enter: Enter<'_>) {
        self.timers.clear(super::deadlines::Timer::Idle);
        let sse = self.uses_sse();
        let offered = self.presence.offered;
        if self.presence.get(channel).is_none() {
            let m = Membership {
                joins: 0,
                watches: 0,
                data: String::new(),
                who: String::new(),
                sent: None,
                status: PresenceStatus::Connecting,
            };
            self.presence.channels.push((channel.to_owned(), m));
        }
        let Some(m) = self.presence.get_mut(channel) else {
            return;
        };
        let data_changed = !enter.watch && m.data != enter.data;
        if enter.watch {
            m.watches += 1;
        } else {
            m.joins += 1;
            m.data = enter.data.to_owned();
            m.who = enter.who.to_owned();
        }
        // A new membership over a connection known to lack presence (the entry shows the status
        // of an existing one to its new handles).
        if sse || offered == Some(false) {
            self.set_presence_status(channel, PresenceStatus::Unsupported);
        }
        match (offered, &self.link) {
            (Some(true), Link::Open { .. }) => self.presence_send(channel, data_changed),
            (_, Link::Idle) if !sse => self.start(now),
            _ => {}
        }
    }

    /// Replaces this client's `data` on `channel` (JSON text of an object); sent at once when the
    /// relay has the membership, else with the next `join`.
    pub fn presence_update(&mut self, channel: &str, data: &str) {
        let Some(m) = self.presence.get_mut(channel) else {
            return;
        };
        if m.joins == 0 || m.data == data {
            return;
        }
        m.data = data.to_owned();
        if m.sent == Some(true) && self.presence.offered == Some(true) {
            let text = self.presence_frame("update", channel);
            self.send(text);
        }
    }

    /// A handle leaves `channel`'s presence (`watch`: a watching one). The last handle of the set
    /// leaves it (announced at once); the last handle of all ends the membership.
    pub fn presence_exit(&mut self, now: Millis, channel: &str, watch: bool) {
        let Some(m) = self.presence.get_mut(channel) else {
            return;
        };
        let count = if watch { &mut m.watches } else { &mut m.joins };
        if *count == 0 {
            return;
        }
        *count -= 1;
        let (joins, watches, sent) = (m.joins, m.watches, m.sent);
        if joins + watches == 0 {
            self.presence.channels.retain(|(c, _)| c != channel);
            if sent.is_some() {
                let text = self.presence_frame("leave", channel);
                self.send(text);
            }
            self.outputs.push_back(Output::PresenceStatus {
                channel: channel.to_owned(),
                status: PresenceStatus::Closed,
            });
            self.check_idle(now);
        } else if joins == 0 && sent == Some(true) {
            // Still watched: out of the set (announced), then a watch (answered by a new sync).
            let text = self.presence_frame("leave", channel);
            self.send(text);
            if let Some(m) = self.presence.get_mut(channel) {
                m.sent = None;
            }
            self.presence_send(channel, false);
        }
    }

    /// `hello` said what the relay offers: send every membership, or report them unsupported.
    pub(super) fn presence_hello(&mut self, offered: bool) {
        let offered = offered && !self.uses_sse();
        self.presence.offered = Some(offered);
        let channels: Vec<String> = self
            .presence
            .channels
            .iter()
            .map(|(c, _)| c.clone())
            .collect();
        for channel in channels {
            if offered {
                self.presence_send(&channel, false);
            } else {
                self.set_presence_status(&channel, PresenceStatus::Unsupported);
            }
        }
    }

    /// The connection is gone: members shown stay (stale) until the next `sync`.
    #[inline(never)] // called from `close` and `lose_link`: once in the wasm
    pub(super) fn presence_lost(&mut self, closed: bool) {
        self.presence.offered = None;
        for (channel, m) in &mut self.presence.channels {
            // Stale: what the relay was sent is gone with the connection (the entry keeps the
            // members it showed, and says `stale` only when it had them).
            let status = match m.sent.take() {
                _ if closed => PresenceStatus::Closed,
                Some(_) => PresenceStatus::Stale,
                None => continue,
            };
            m.status = status;
            self.outputs.push_back(Output::PresenceStatus {
                channel: channel.clone(),
                status,
            });
        }
        if closed {
            self.presence.channels.clear();
        }
    }

    /// Sends `channel`'s `join` (or `watch`) on the open connection, or its `update` when only
    /// the data changed since.
    fn presence_send(&mut self, channel: &str, data_changed: bool) {
        let Some(m) = self.presence.get(channel) else {
            return;
        };
        let join = m.joins > 0;
        let text = match m.sent {
            Some(true) if join && data_changed => self.presence_frame("update", channel),
            Some(sent) if sent || !join => return,
            _ => {
                let action = if join { "join" } else { "watch" };
                let text = self.presence_frame(action, channel);
                if let Some(m) = self.presence.get_mut(channel) {
                    m.sent = Some(join);
                    // Until the entry sees the relay's sync (which makes it `live`).
                    m.status = PresenceStatus::Connecting;
                }
                text
            }
        };
        self.send(text);
    }

    /// `{"op":"presence","id":…,"action":…,"channel":…}` with what `action` takes, under a new
    /// request id (`last_id`; the relay answers a refusal with it).
    fn presence_frame(&mut self, action: &str, channel: &str) -> String {
        self.presence.last_id += 1;
        let id = self.presence.last_id;
        let mut out = String::from(r#"{"op":"presence""#);
        json::push_key(&mut out, "id");
        json::push_u64(&mut out, id);
        json::push_key(&mut out, "action");
        json::push_str(&mut out, action);
        json::push_key(&mut out, "channel");
        json::push_str(&mut out, channel);
        let m = self
            .presence
            .channels
            .iter_mut()
            .find(|(c, _)| c == channel);
        let Some((_, m)) = m else {
            out.push('}');
            return out;
        };
        if let "join" | "update" = action {
            if action == "join" && !m.who.is_empty() {
                out.push(',');
                out.push_str(&m.who);
            }
            json::push_key(&mut out, "data");
            out.push_str(if m.data.is_empty() { "{}" } else { &m.data });
        }
        out.push('}');
        out
    }

    /// Sets `channel`'s status, reported when it changes.
    fn set_presence_status(&mut self, channel: &str, status: PresenceStatus) {
        if let Some(m) = self
            .presence
            .get_mut(channel)
            .filter(|m| m.status != status)
        {
            m.status = status;
            self.outputs.push_back(Output::PresenceStatus {
                channel: channel.to_owned(),
                status,
            });
        }
    }
}
