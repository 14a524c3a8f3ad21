//! The presence service a relay runs ([`Presence`], in `AppState`): the store, this node's
//! watchers, the tick that sweeps the members whose grace period ended, and the requests of the
//! connections (checked for rights and per-connection limits by `ws::presence`).

use super::contract::{JoinOutcome, JoinRequest, Snapshot, StoreError};
use super::memory::MemoryStore;
use super::metrics::PresenceMetrics;
use super::redis::store::RedisStore;
use super::settings::{Settings, FEATURE, TICK_MS};
use super::store::Store;
use super::watchers::Watchers;
use crate::broker::redis::PresenceLink;
use crate::broker::{ConnId, Outbound, Outbox};
use axum::extract::ws::Utf8Bytes;
use live_protocol::frame::{encode_presence_sync, PresenceMember};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Presence on this relay (see the module doc of [`super`]).
#[derive(Debug)]
pub struct Presence {
    settings: Settings,
    store: Store,
    watchers: Arc<Watchers>,
    metrics: PresenceMetrics,
}

impl Presence {
    /// Presence on the in-process store.
    pub fn in_memory(settings: Settings, metrics: PresenceMetrics) -> Self {
        let watchers = Arc::new(Watchers::default());
        let store = Store::Memory(MemoryStore::new(settings.limits, Arc::clone(&watchers)));
        Presence::with_store(settings, store, watchers, metrics)
    }

    /// Presence on a cluster node: a [`RedisStore`] on `link`.
    pub fn on_redis(settings: Settings, metrics: PresenceMetrics, link: PresenceLink) -> Self {
        let watchers = Arc::new(Watchers::default());
        let store = RedisStore::new(settings.limits, link, Arc::clone(&watchers));
        Presence::with_store(settings, Store::Redis(Box::new(store)), watchers, metrics)
    }

    /// Presence on `store`, which announces its diffs to `watchers`.
    pub fn with_store(
        settings: Settings,
        store: Store,
        watchers: Arc<Watchers>,
        metrics: PresenceMetrics,
    ) -> Self {
        Presence {
            settings,
            store,
            watchers,
            metrics,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn metrics(&self) -> &PresenceMetrics {
        &self.metrics
    }

    /// What `hello` offers.
    pub fn features(&self) -> &'static [&'static str] {
        if self.settings.enabled {
            &[FEATURE]
        } else {
            &[]
        }
    }

    /// Makes `conn` a watcher of `channel` (the store follows it first) and queues the `sync`
    /// answering `id` after everything queued so far.
    async fn start_watching(
        &self,
        channel: &str,
        conn: ConnId,
        outbox: &Outbox,
        id: u64,
    ) -> Result<(), StoreError> {
        self.store.follow(channel).await?;
        self.watchers.add(channel, conn, outbox.clone(), false);
        // Taken after the watcher is in: a diff made meanwhile is in the snapshot (its frame,
        // version ≤ the sync's, is dropped by the client) or comes after it.
        let snapshot = self.store.snapshot(channel).await?;
        outbox.push(Outbound::other(sync_frame(channel, id, &snapshot)));
        Ok(())
    }

    /// `join`: enters `channel` as `request.key` (or resumes it), then watches it (the `sync`
    /// answering `id` is queued). Refused as full, `conn` watches the set's counts instead.
    pub async fn join(
        &self,
        channel: &str,
        request: JoinRequest<'_>,
        outbox: &Outbox,
        id: u64,
    ) -> Result<(), StoreError> {
        let conn = request.conn;
        match self.store.join(channel, request).await {
            Ok(JoinOutcome::New) => self.metrics.event("join"),
            Ok(JoinOutcome::Resumed { changed }) => {
                self.metrics.resumes.inc();
                if changed {
                    self.metrics.event("update");
                }
            }
            Err(StoreError::Refused(super::set::Refusal::Full)) => {
                // A connection already watching the diffs keeps them.
                if !self.watchers.watches(channel, conn) {
                    self.store.follow(channel).await?;
                    self.watchers.add(channel, conn, outbox.clone(), true);
                }
                return Err(StoreError::Refused(super::set::Refusal::Full));
            }
            Err(e) => return Err(e),
        }
        self.start_watching(channel, conn, outbox, id).await
    }

    /// `watch`: the `sync` answering `id` is queued, then the diffs.
    pub async fn watch(
        &self,
        channel: &str,
        conn: ConnId,
        outbox: &Outbox,
        id: u64,
    ) -> Result<(), StoreError> {
        self.start_watching(channel, conn, outbox, id).await
    }

    /// `update`: replaces the `data` of `conn`'s member `key`.
    pub async fn update(
        &self,
        channel: &str,
        key: &str,
        conn: ConnId,
        data: Value,
    ) -> Result<(), StoreError> {
        if self.store.update(channel, key, conn, data).await? {
            self.metrics.event("update");
        }
        Ok(())
    }

    /// `leave` (or a refreshed token that no longer allows the channel): `conn`'s member `key`
    /// (if any) leaves at once, and `conn` stops watching.
    pub async fn leave(
        &self,
        channel: &str,
        key: Option<&str>,
        conn: ConnId,
    ) -> Result<(), StoreError> {
        self.stop_watching(channel, conn);
        if let Some(key) = key {
            if self.store.leave(channel, key, conn).await? {
                self.metrics.event("leave");
            }
        }
        Ok(())
    }

    fn stop_watching(&self, channel: &str, conn: ConnId) {
        if self.watchers.remove(channel, conn) {
            self.store.unfollow(channel);
        }
    }

    /// The socket of `conn` ended, in whatever way: it stops watching, and its members leave
    /// when the grace period ends unless resumed.
    pub async fn socket_ended(&self, conn: ConnId, memberships: Vec<(String, Option<String>)>) {
        for (channel, key) in memberships {
            self.stop_watching(&channel, conn);
            if let Some(key) = key {
                if let Err(e) = self.store.disconnected(&channel, &key, conn).await {
                    // Its member then lives on until the store forgets it (a cluster's TTL).
                    tracing::warn!(conn, channel, "presence grace not started: {e:?}");
                }
            }
        }
    }

    /// One tick: sweeps the members whose grace period ended, sends the due `stats` frames and
    /// updates the members gauge.
    pub async fn tick(&self) {
        match self.store.sweep().await {
            Ok(swept) => {
                let swept = swept as u64;
                self.metrics.swept.inc_by(swept);
                if swept > 0 {
                    self.metrics
                        .events
                        .get_or_create(&super::metrics::Action { action: "leave" })
                        .inc_by(swept);
                }
            }
            Err(e) => tracing::warn!("presence sweep failed: {e:?}"),
        }
        let now = std::time::Instant::now();
        for channel in self.watchers.stats_due(now) {
            if let Ok(Snapshot { members, users, .. }) = self.store.snapshot(&channel).await {
                self.watchers
                    .send_stats(&channel, members.len(), users, now);
            }
        }
        let members = i64::try_from(self.store.members()).unwrap_or(i64::MAX);
        self.metrics.members.set(members);
    }

    /// Ticks every [`TICK_MS`] for as long as the relay serves.
    pub async fn run(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(Duration::from_millis(TICK_MS));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.tick().await;
        }
    }
}

fn sync_frame(channel: &str, id: u64, snapshot: &Snapshot) -> Utf8Bytes {
    let members: Vec<PresenceMember<'_>> = snapshot.members.iter().map(|m| m.wire()).collect();
    Utf8Bytes::from(encode_presence_sync(
        channel,
        id,
        snapshot.version,
        &members,
    ))
}
