//! Channel positions: the relay's `subscribed` answers, moving a position with each event
//! (`advance`: duplicates, gaps), and which channels are being replayed after a resume.

use super::channel_state::ChannelPosition;
use super::Session;
use crate::cat;
use crate::engine::frame::ChannelEntry;
#[cfg(feature = "simple")]
use crate::engine::simple::{no_replay_reason, Protocol};
use crate::prelude::*;

impl Session {
    pub(super) fn on_subscribed(&mut self, entries: &[ChannelEntry<'_>]) {
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
    pub(super) fn advance(&mut self, channel: &str, seq: u64) -> bool {
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
}
