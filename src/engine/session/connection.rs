//! The link's transitions: starting and opening a connection, `hello`, losing it and backing off,
//! the page's conditions, idling, closing, and the `Auto` fallback from WebSocket to SSE.

use super::deadlines::Timer;
use super::link::{Link, MIN_USEFUL_MS};
#[cfg(feature = "sse")]
use super::sse_query::sse_query;
use super::token::Refresh;
#[cfg(feature = "sse")]
use super::TransportKind;
use super::{ConnectionState, Millis, Output, PublishError, Session};
use crate::cat;
use crate::engine::frame::{self, ChannelEntry, Position, CLOSE_UNAUTHORIZED, PROTOCOL_VERSION};
use crate::prelude::*;

/// Consecutive WebSocket attempts that never reach `hello` before `Auto` falls back to SSE.
#[cfg(feature = "sse")]
const WS_FAILURES_BEFORE_SSE: u32 = 2;

impl Session {
    /// Closes for good: the connection, pending publishes, and any further delivery.
    pub fn close(&mut self, reason: &str) {
        if self.link == Link::Closed {
            return;
        }
        if matches!(self.link, Link::Open { .. } | Link::Connecting { .. }) {
            self.outputs.push_back(Output::Disconnect);
        }
        self.link = Link::Closed;
        self.presence_lost(true);
        self.timers.clear(Timer::Idle);
        self.refresh = Refresh::None;
        self.coalesce.clear();
        for id in self.publishes.take_all() {
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
            let message = cat!("a frame of ", len, " bytes, over maxFrameBytes (", max, ")");
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

    /// The WebSocket closed with its close frame's `code` and `reason`: [`Session::handle_close`],
    /// with a report saying what the code means (4001: the relay refused or expired the token).
    pub fn handle_socket_close(&mut self, now: Millis, code: u16, reason: &str) {
        self.handle_close(now, &socket_close_reason(code, reason));
    }

    /// Leaves `Idle`: connects now, or waits when the page does not allow it.
    pub(super) fn start(&mut self, now: Millis) {
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
    pub(super) fn connect(&mut self, now: Millis) {
        self.refresh = Refresh::None;
        self.expires_at = None;
        if self.cfg.auth {
            self.link = Link::Authorizing { since: now };
            self.awaiting.clear();
            self.timers.clear(Timer::Reopen);
            self.request_token();
            self.set_state(ConnectionState::Connecting);
        } else {
            self.open_transport(now);
        }
    }

    /// Opens the transport (the token, if any, is at hand).
    pub(super) fn open_transport(&mut self, now: Millis) {
        self.link = Link::Connecting { since: now };
        self.left.clear();
        self.useful_since = None;
        self.awaiting.clear();
        self.timers.clear(Timer::Reopen);
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

    pub(super) fn on_hello(&mut self, now: Millis, version: u32, epoch: &str, ping_ms: Millis) {
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
        for (_, text) in self.publishes.send_all(deadline) {
            self.send(text);
        }
        self.check_useful(now);
        self.check_idle(now);
    }

    /// The connection became useful once open with no `subscribed` answer due.
    pub(super) fn check_useful(&mut self, now: Millis) {
        if self.useful_since.is_none()
            && matches!(self.link, Link::Open { .. })
            && self.awaiting.is_empty()
        {
            self.useful_since = Some(now);
        }
    }

    /// SSE: the channel set changed; reopen the stream soon (once for a burst of changes).
    pub(super) fn schedule_reopen(&mut self, now: Millis) {
        self.timers
            .arm(Timer::Reopen, now + self.cfg.reopen_debounce_ms);
    }

    /// The connection (or the attempt, or the wait for its token) is gone. `relay_failed`: the
    /// relay could not be reached or dropped the connection (not: the page went offline, or no
    /// token could be had), so the next attempt goes to the next relay.
    pub(super) fn lose_link(&mut self, now: Millis, reason: &str, relay_failed: bool) {
        #[cfg(feature = "sse")]
        self.count_websocket_failure(now);
        if relay_failed && matches!(self.link, Link::Connecting { .. } | Link::Open { .. }) {
            self.relay = (self.relay + 1) % self.relay_count();
        }
        self.timers.clear(Timer::Reopen);
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
        self.presence_lost(false);
        if !self.has_work() {
            self.link = Link::Idle;
            self.timers.clear(Timer::Idle);
            self.set_state(ConnectionState::Idle);
            return;
        }
        self.wait_for_retry(now, reason);
    }

    /// `Auto`: a WebSocket attempt that never reached `hello` counts towards the fallback to SSE.
    #[cfg(feature = "sse")]
    pub(super) fn count_websocket_failure(&mut self, now: Millis) {
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
    pub(super) fn fall_back_to_sse(&mut self, now: Millis) {
        self.using_sse = true;
        self.problem(cat!(
            "WebSocket failed ",
            self.ws_failures,
            " times without reaching the relay; falling back to Server-Sent Events"
        ));
        let deadline = now + self.cfg.publish_timeout_ms;
        let posts = self.publishes.send_all(deadline).into_iter();
        (self.outputs).extend(posts.map(|(id, body)| Output::PostPublish { id, body }));
    }

    pub(super) fn relay_count(&self) -> usize {
        self.cfg.relays.max(1)
    }

    /// Schedules the next attempt, or waits for the page to allow one.
    pub(super) fn wait_for_retry(&mut self, now: Millis, reason: &str) {
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

    pub(super) fn conditions_changed(&mut self, now: Millis) {
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
    pub(super) fn has_work(&self) -> bool {
        let subscribed = if self.refused.is_empty() {
            !self.registry.is_empty()
        } else {
            (self.registry).any_channel(|c| !self.refused.contains_key(c))
        };
        // Publishes waiting, presence memberships: over WebSocket only.
        let socket_work = !self.publishes.is_empty() || !self.presence.is_empty();
        subscribed || (!self.uses_sse() && socket_work)
    }

    /// Arms (or drops) the idle-close deadline after something went away.
    pub(super) fn check_idle(&mut self, now: Millis) {
        if self.has_work() {
            self.timers.clear(Timer::Idle);
            return;
        }
        match self.link {
            Link::Open { .. } | Link::Connecting { .. } | Link::Authorizing { .. } => {
                self.timers.arm(Timer::Idle, now + self.cfg.idle_close_ms);
            }
            Link::Waiting { .. } => {
                self.link = Link::Idle;
                self.set_state(ConnectionState::Idle);
            }
            Link::Idle | Link::Closed => {}
        }
    }

    /// The relay broke the protocol on this connection: reported (counted in `problems`), the
    /// connection dropped and retried with backoff, as if it had failed.
    pub(super) fn violation(&mut self, now: Millis, message: &str) {
        self.problem(cat!("protocol violation: ", message, "; reconnecting"));
        self.outputs.push_back(Output::Disconnect);
        self.lose_link(now, message, true);
    }
}

/// What a WebSocket's close frame says, for the state report.
fn socket_close_reason(code: u16, reason: &str) -> String {
    if code == CLOSE_UNAUTHORIZED {
        cat!(
            "the relay refused or expired the token (close ",
            code,
            if reason.is_empty() { "" } else { ": " },
            reason,
            "); reconnecting with a new one"
        )
    } else if reason.is_empty() {
        cat!("connection closed (code ", code, ")")
    } else {
        cat!("connection closed (code ", code, "): ", reason)
    }
}

#[cfg(test)]
mod tests {
    use super::socket_close_reason;

    #[test]
    fn a_close_frame_is_reported_with_what_its_code_means() {
        assert_eq!(
            socket_close_reason(4001, "token expired"),
            "the relay refused or expired the token (close 4001: token expired); reconnecting with a new one"
        );
        assert_eq!(
            socket_close_reason(4001, ""),
            "the relay refused or expired the token (close 4001); reconnecting with a new one"
        );
        assert_eq!(
            socket_close_reason(1006, ""),
            "connection closed (code 1006)"
        );
        assert_eq!(
            socket_close_reason(1013, "try again later"),
            "connection closed (code 1013): try again later"
        );
    }
}
