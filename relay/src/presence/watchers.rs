//! This node's watchers of each channel's presence: the connections that joined or watched it,
//! each with the sending side of its outbound queue, so that presence frames keep their order with
//! everything else a connection is sent. A store announces every diff here, in version order per
//! channel; the frame is encoded once and queued for each watcher (a full queue kicks the
//! connection as a slow consumer, as events do).
//!
//! A connection whose `join` was refused as `presence_full` watches the counts only: it gets
//! `stats` frames instead of diffs, at most one per [`STATS_EVERY_MS`] and only when the set
//! changed.

use super::set::{Diff, Member};
use super::settings::STATS_EVERY_MS;
use crate::broker::{ConnId, Outbound, Outbox};
use axum::extract::ws::Utf8Bytes;
use live_protocol::frame::{
    encode_presence_join, encode_presence_leave, encode_presence_stats, encode_presence_update,
    PresenceMember,
};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// A diff, as a store announces it.
#[derive(Debug, Clone, Copy)]
pub enum Announcement<'a> {
    Join(PresenceMember<'a>),
    Update(PresenceMember<'a>),
    Leave { key: &'a str, user: &'a str },
}

impl<'a> Announcement<'a> {
    /// A set's diff as the watchers are told it.
    pub fn of(diff: &'a Diff) -> Self {
        let wire = |m: &'a Member| PresenceMember {
            key: &m.key,
            user: &m.user,
            info: &m.info,
            data: &m.data,
            since: m.since,
        };
        match diff {
            Diff::Join(m) => Announcement::Join(wire(m)),
            Diff::Update(m) => Announcement::Update(wire(m)),
            Diff::Leave { key, user } => Announcement::Leave { key, user },
        }
    }
}

#[derive(Debug)]
struct Watcher {
    outbox: Outbox,
    /// Gets `stats` instead of diffs (its join was refused: the set is full).
    counts_only: bool,
}

#[derive(Debug, Default)]
struct Channel {
    conns: HashMap<ConnId, Watcher>,
    /// A diff was announced since the last `stats`.
    changed: bool,
    last_stats: Option<Instant>,
}

/// Every channel watched on this node (see the module doc).
#[derive(Debug, Default)]
pub struct Watchers {
    channels: Mutex<HashMap<String, Channel>>,
}

impl Watchers {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Channel>> {
        // Each update is a few map operations that do not panic midway.
        self.channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes `conn` a watcher of `channel` (or changes how it watches). True when it is the
    /// channel's first watcher on this node (a store that follows channels starts following).
    pub fn add(&self, channel: &str, conn: ConnId, outbox: Outbox, counts_only: bool) -> bool {
        let mut channels = self.lock();
        let first = !channels.contains_key(channel);
        let entry = channels.entry(channel.to_owned()).or_default();
        entry.conns.insert(
            conn,
            Watcher {
                outbox,
                counts_only,
            },
        );
        if counts_only {
            // Its first `stats` goes at the next tick.
            entry.changed = true;
            entry.last_stats = None;
        }
        first
    }

    /// `conn` stops watching `channel`. True when no one on this node watches it any more.
    pub fn remove(&self, channel: &str, conn: ConnId) -> bool {
        let mut channels = self.lock();
        let Some(entry) = channels.get_mut(channel) else {
            return false;
        };
        entry.conns.remove(&conn);
        if entry.conns.is_empty() {
            channels.remove(channel);
            return true;
        }
        false
    }

    /// Whether anyone on this node watches `channel`.
    pub fn is_watched(&self, channel: &str) -> bool {
        self.lock().contains_key(channel)
    }

    /// Whether `conn` watches `channel` (diffs or counts).
    pub fn watches(&self, channel: &str, conn: ConnId) -> bool {
        self.lock()
            .get(channel)
            .is_some_and(|c| c.conns.contains_key(&conn))
    }

    /// Queues the diff's frame for every watcher of `channel` (but those watching counts only).
    pub fn announce(&self, channel: &str, version: u64, diff: Announcement<'_>) {
        let mut channels = self.lock();
        let Some(entry) = channels.get_mut(channel) else {
            return;
        };
        entry.changed = true;
        let text = match diff {
            Announcement::Join(m) => encode_presence_join(channel, version, &m),
            Announcement::Update(m) => encode_presence_update(channel, version, &m),
            Announcement::Leave { key, user } => encode_presence_leave(channel, version, key, user),
        };
        let text = Utf8Bytes::from(text);
        for watcher in entry.conns.values().filter(|w| !w.counts_only) {
            watcher.outbox.push(Outbound::other(text.clone()));
        }
    }

    /// The channels whose counts-only watchers are due a `stats` frame at `now`.
    pub fn stats_due(&self, now: Instant) -> Vec<String> {
        let every = std::time::Duration::from_millis(STATS_EVERY_MS);
        self.lock()
            .iter()
            .filter(|(_, c)| {
                c.changed
                    && c.conns.values().any(|w| w.counts_only)
                    && c.last_stats
                        .is_none_or(|at| now.duration_since(at) >= every)
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Queues a `stats` frame for the counts-only watchers of `channel`.
    pub fn send_stats(&self, channel: &str, members: usize, users: usize, now: Instant) {
        let mut channels = self.lock();
        let Some(entry) = channels.get_mut(channel) else {
            return;
        };
        entry.changed = false;
        entry.last_stats = Some(now);
        let text = Utf8Bytes::from(encode_presence_stats(channel, members, users));
        for watcher in entry.conns.values().filter(|w| w.counts_only) {
            watcher.outbox.push(Outbound::other(text.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::hub::Hub;
    use crate::broker::{scopes, Settings};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn counts_only_watchers_get_stats_at_most_once_a_second_and_only_after_a_change() {
        let hub = Arc::new(Hub::new(Settings::default(), "e", true));
        let watchers = Watchers::default();
        let mut full = hub.connect(16, scopes::<&str>([]));
        let mut diffs = hub.connect(16, scopes::<&str>([]));
        watchers.add("c", diffs.id, hub.outbox(diffs.id).expect("diffs"), false);
        watchers.add("c", full.id, hub.outbox(full.id).expect("full"), true);
        let t0 = Instant::now();
        assert_eq!(watchers.stats_due(t0), vec!["c".to_owned()], "at once");
        watchers.send_stats("c", 2, 1, t0);
        assert!(watchers.stats_due(t0).is_empty(), "nothing changed");
        watchers.announce(
            "c",
            5,
            Announcement::Leave {
                key: "k",
                user: "u",
            },
        );
        assert!(
            watchers
                .stats_due(t0 + Duration::from_millis(500))
                .is_empty(),
            "within the second"
        );
        assert_eq!(watchers.stats_due(t0 + Duration::from_secs(1)).len(), 1);
        let got = full.rx.try_recv().expect("stats");
        assert!(
            got.text.as_str().contains(r#""action":"stats""#),
            "{}",
            got.text.as_str()
        );
        assert!(
            full.rx.try_recv().is_none(),
            "no diff for a counts-only watcher"
        );
        let got = diffs.rx.try_recv().expect("the leave");
        assert!(got.text.as_str().contains(r#""action":"leave""#));
        assert!(!watchers.remove("c", full.id));
        assert!(watchers.remove("c", diffs.id), "the last watcher");
        assert!(!watchers.is_watched("c"));
    }
}
