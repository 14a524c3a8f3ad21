//! One connection's presence: the channels it is in (with its key) or watches, bounded by
//! `--presence-max-per-connection`. When the connection ends, in whatever way (a close, a
//! network loss, a kick, a panic of its task), dropping this starts the grace period of its
//! members and ends its watches.

use super::service::Presence;
use super::set::{take_update, Millis};
use crate::broker::ConnId;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug)]
pub struct Memberships {
    presence: Arc<Presence>,
    conn: ConnId,
    /// Channel → the key the connection is in it as (`None`: it only watches).
    channels: BTreeMap<String, Option<String>>,
    /// Channel → when the connection entered it as a new member lately (a join with another key
    /// than the one it holds there), in ms since `born`: each is announced, so they count against
    /// `--presence-max-updates` like `data` changes (a leave does not reset them).
    entries: BTreeMap<String, Vec<Millis>>,
    born: Instant,
}

impl Memberships {
    pub fn new(presence: Arc<Presence>, conn: ConnId) -> Self {
        Memberships {
            presence,
            conn,
            channels: BTreeMap::new(),
            entries: BTreeMap::new(),
            born: Instant::now(),
        }
    }

    /// Counts a join of `channel` as a new member at `now`; false when over
    /// `--presence-max-updates` in the window (the join is refused as `rate_limited`).
    pub fn take_entry(&mut self, channel: &str, now: Instant) -> bool {
        let limits = self.presence.settings().limits;
        let now =
            u64::try_from(now.saturating_duration_since(self.born).as_millis()).unwrap_or(u64::MAX);
        // Forget what is out of every window, so the map holds the last window's channels only.
        self.entries.retain(|_, times| {
            times.retain(|&at| now.saturating_sub(at) < limits.update_window_ms);
            !times.is_empty()
        });
        let times = self.entries.entry(channel.to_owned()).or_default();
        take_update(times, now, &limits).is_ok()
    }

    pub fn presence(&self) -> &Arc<Presence> {
        &self.presence
    }

    /// Whether one more channel would be over the limit (a channel it has already is not).
    pub fn is_full_for(&self, channel: &str) -> bool {
        !self.channels.contains_key(channel)
            && self.channels.len() >= self.presence.settings().max_per_connection
    }

    /// Whether the connection is in `channel`'s presence or watches it.
    pub fn has(&self, channel: &str) -> bool {
        self.channels.contains_key(channel)
    }

    /// The key the connection is in `channel` as.
    pub fn key_in(&self, channel: &str) -> Option<&str> {
        self.channels.get(channel).and_then(|k| k.as_deref())
    }

    /// Records that the connection is in `channel` as `key`, or watches it (`None`).
    pub fn record(&mut self, channel: &str, key: Option<&str>) {
        self.channels
            .insert(channel.to_owned(), key.map(str::to_owned));
    }

    /// Forgets `channel`; the key it was in it as.
    pub fn forget(&mut self, channel: &str) -> Option<String> {
        self.channels.remove(channel).flatten()
    }

    /// The channels, for a refreshed token's check.
    pub fn channels(&self) -> Vec<String> {
        self.channels.keys().cloned().collect()
    }
}

impl Drop for Memberships {
    fn drop(&mut self) {
        if self.channels.is_empty() {
            return;
        }
        let memberships: Vec<(String, Option<String>)> =
            std::mem::take(&mut self.channels).into_iter().collect();
        let (presence, conn) = (Arc::clone(&self.presence), self.conn);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { presence.socket_ended(conn, memberships).await });
            }
            Err(_) => tracing::warn!(conn, "presence: no runtime to end the memberships on"),
        }
    }
}
