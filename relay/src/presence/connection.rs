//! One connection's presence: the channels it is in (with its key) or watches, bounded by
//! `--presence-max-per-connection`. When the connection ends, in whatever way (a close, a
//! network loss, a kick, a panic of its task), dropping this starts the grace period of its
//! members and ends its watches.

use super::service::Presence;
use crate::broker::ConnId;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug)]
pub struct Memberships {
    presence: Arc<Presence>,
    conn: ConnId,
    /// Channel → the key the connection is in it as (`None`: it only watches).
    channels: BTreeMap<String, Option<String>>,
}

impl Memberships {
    pub fn new(presence: Arc<Presence>, conn: ConnId) -> Self {
        Memberships {
            presence,
            conn,
            channels: BTreeMap::new(),
        }
    }

    pub fn presence(&self) -> &Arc<Presence> {
        &self.presence
    }

    /// Whether one more channel would be over the limit (a channel it has already is not).
    pub fn is_full_for(&self, channel: &str) -> bool {
        !self.channels.contains_key(channel)
            && self.channels.len() >= self.presence.settings().max_per_connection
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
