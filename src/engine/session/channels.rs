//! Subscriptions: adding and removing them, where their channels stand, and the channels the
//! relay or the server refused.

use super::channel_state::ChannelStatus;
use super::deadlines::Timer;
use super::link::Link;
use super::{Millis, Output, Session};
use crate::cat;
use crate::engine::code::Code;
use crate::engine::filter::Filter;
use crate::engine::frame::{self, ChannelEntry, ErrorCode};
use crate::engine::registry::{ChannelChange, SubId};
use crate::prelude::*;

/// How many unsubscribed channels a connection remembers ([`Session`]'s `left`).
const LEFT_REMEMBERED: usize = 256;

impl Session {
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

    /// Adds a subscription; connects if this is the first thing to do.
    pub fn subscribe(&mut self, now: Millis, channel: &str, filter: Filter) -> SubId {
        self.subscribe_clocked(|| now, channel, filter)
    }

    /// [`subscribe`](Self::subscribe), reading the clock `now` only when the time matters (a
    /// channel's first subscription): the browser's clock costs about 0.4 µs a reading, as much
    /// as the rest of a subscription to a channel already subscribed.
    pub fn subscribe_clocked(
        &mut self,
        now: impl FnOnce() -> Millis,
        channel: &str,
        filter: Filter,
    ) -> SubId {
        let (id, change) = self.registry.insert(channel, filter);
        self.timers.clear(Timer::Idle);
        if change == ChannelChange::Added {
            match self.link {
                Link::Open { .. } | Link::Connecting { .. } if self.uses_sse() => {
                    self.schedule_reopen(now())
                }
                Link::Open { .. } => {
                    self.awaiting.insert(channel.to_owned());
                    self.send(frame::encode_subscribe(&[ChannelEntry::named(channel)]));
                }
                Link::Idle => self.start(now()),
                Link::Authorizing { .. }
                | Link::Connecting { .. }
                | Link::Waiting { .. }
                | Link::Closed => {}
            }
        } else if let Some(message) = self.refused.get(channel) {
            // Refused outright by the server: so is this subscription.
            self.outputs.push_back(Output::Error {
                code: Code::Refused,
                channel: Some(channel.to_owned()),
                message: message.clone(),
            });
        } else if self.forbidden.contains(channel) {
            // The channel's server-side subscription was already refused: this one is too.
            self.forbidden_error(channel, " for this token (forbidden)", "");
        }
        id
    }

    /// Gives subscription `id` its own coalescing window, ms (`0`: every event at once), instead
    /// of [`super::SessionConfig::coalesce_ms`]. Ignored for a subscription that has ended.
    pub fn set_coalesce_ms(&mut self, id: SubId, ms: Millis) {
        if self.registry.channel_of(id).is_some() {
            self.coalesce.set_window(id, ms);
        }
    }

    /// Removes a subscription; `false` when it was already gone.
    pub fn unsubscribe(&mut self, now: Millis, id: SubId) -> bool {
        self.unsubscribe_clocked(|| now, id)
    }

    /// [`unsubscribe`](Self::unsubscribe), reading the clock `now` only when the time matters (a
    /// channel's last subscription, the last piece of work).
    pub fn unsubscribe_clocked(&mut self, now: impl Fn() -> Millis, id: SubId) -> bool {
        let Some((channel, change)) = self.registry.remove(id) else {
            return false;
        };
        self.coalesce.remove(id);
        if change == ChannelChange::Removed {
            let channel = &*channel;
            self.positions.remove(channel);
            self.awaiting.remove(channel);
            self.forbidden.remove(channel);
            let was_refused = self.refused.remove(channel).is_some();
            if self.uses_sse() {
                if !was_refused
                    && self.has_work()
                    && matches!(self.link, Link::Open { .. } | Link::Connecting { .. })
                {
                    self.schedule_reopen(now());
                }
            } else if let Link::Open { .. } = self.link {
                self.send(frame::encode_unsubscribe(&[ChannelEntry::named(channel)]));
                if self.left.len() >= LEFT_REMEMBERED {
                    self.left.pop_front();
                }
                self.left.push_back(channel.to_owned());
            }
        }
        if self.has_work() {
            // What `check_idle` does then, without reading the clock.
            self.timers.clear(Timer::Idle);
        } else {
            self.check_idle(now());
        }
        true
    }

    /// The server refused these channels outright — an Igniter.js server answers a stream that names
    /// a channel its app never registered with HTTP 500 — as `(channel, message)`. Each is reported
    /// once ([`Code::Refused`]), its subscriptions show `forbidden`, and it is left out of every connection
    /// until all of its subscriptions have ended. The attempt that was refused is replaced at once
    /// by one without them: no backoff, the server answered (and every round drops a channel).
    pub fn refuse_channels(&mut self, now: Millis, refusals: &[(String, String)]) {
        for (channel, message) in refusals {
            if !self.registry.has_channel(channel) || self.refused.contains_key(channel) {
                continue;
            }
            self.awaiting.remove(channel);
            self.positions.remove(channel);
            self.refused.insert(channel.clone(), message.clone());
            self.stats.problems += 1;
            self.outputs.push_back(Output::Error {
                code: Code::Refused,
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
    /// The `forbidden` error of `channel` for the error hook: "the relay refused the subscription
    /// to `channel`" followed by `how` and `detail`.
    fn forbidden_error(&mut self, channel: &str, how: &str, detail: &str) {
        self.outputs.push_back(Output::Error {
            code: Code::Relay(ErrorCode::Forbidden),
            channel: Some(channel.to_owned()),
            message: cat!(
                "the relay refused the subscription to `",
                channel,
                '`',
                how,
                detail
            ),
        });
    }

    pub(super) fn on_forbidden(&mut self, channel: &str, message: &str) {
        if !self.registry.has_channel(channel) {
            return; // ended meanwhile
        }
        self.awaiting.remove(channel);
        self.positions.remove(channel);
        if self.forbidden.insert(channel.to_owned()) {
            // Told once per refusal, not again on every reconnect that is refused the same way.
            self.forbidden_error(channel, " (forbidden): ", message);
        }
    }
}
