//! The presence store of a cluster node ([`Store::Redis`](crate::presence::store::Store)):
//! [`RedisPresence`] on the broker's connection to Redis ([`PresenceLink`]).
//!
//! - Every diff reaches the watchers through Redis: the scripts `PUBLISH` it on
//!   `<prefix>:pp:<channel>`, which each node with watchers of the channel has subscribed to
//!   ([`RedisStore::follow`], before the snapshot of a `sync`), its own diffs included. So a diff
//!   is announced once per node, in version order (Redis publishes in the order the scripts ran).
//! - The service's tick (every 250 ms) calls [`RedisStore::sweep`], which refreshes this node's
//!   members every [`REFRESH_EVERY`], sweeps the cluster's expired ones every [`SWEEP_EVERY`],
//!   and unsubscribes the channels nobody here has watched for [`IDLE_UNFOLLOW`].
//! - When the broker loses Redis it closes every WebSocket: their grace periods cannot be started
//!   (Redis is gone), so their members leave at their expiry instead (≤ [`TTL_MS`](super::TTL_MS)),
//!   unless their clients resume them on another node first. Subscriptions die with the
//!   connection: a channel is subscribed again on the new one at its next `follow`.

use super::{parse_diff, RedisPresence, StoreError as RedisError, REFRESH_EVERY, SWEEP_EVERY};
use crate::broker::redis::PresenceLink;
use crate::presence::contract::{JoinOutcome, JoinRequest, MemberView, Snapshot, StoreError};
use crate::presence::set::{ConnId, Diff, Joined, Limits};
use crate::presence::watchers::{Announcement, Watchers};
use redis::aio::MultiplexedConnection;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tracing::warn;

/// A channel nobody on this node watches is unsubscribed after this long.
pub const IDLE_UNFOLLOW: Duration = Duration::from_secs(10);
/// How long a join, update or leave waits for its own diff to come back through Redis.
pub const CATCH_UP: Duration = Duration::from_secs(1);

/// The last version of each channel this node's watchers were handed, and a wake-up for those
/// waiting for one ([`RedisStore::caught_up`]).
#[derive(Debug, Default)]
struct Seen {
    versions: Mutex<HashMap<String, u64>>,
    notify: tokio::sync::Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Hands a diff received from Redis to this node's watchers.
fn announce(watchers: &Watchers, channel: &str, version: u64, diff: &Diff) {
    watchers.announce(channel, version, Announcement::of(diff));
}

fn from_redis(e: RedisError) -> StoreError {
    match e {
        RedisError::Refused(refusal) => StoreError::Refused(refusal),
        RedisError::Redis(why) => StoreError::Unavailable(why),
    }
}

/// A subscription to a channel's diffs.
#[derive(Debug, Clone, Copy)]
struct Followed {
    /// The generation of the connection it was made on.
    generation: u64,
    /// When it was last followed or seen watched.
    seen: Instant,
}

#[derive(Debug, Default)]
struct Timers {
    refreshed: Option<Instant>,
    swept: Option<Instant>,
}

/// See the module doc.
#[derive(Debug)]
pub struct RedisStore {
    presence: RedisPresence,
    link: PresenceLink,
    watchers: Arc<Watchers>,
    followed: Mutex<HashMap<String, Followed>>,
    /// Serializes `SUBSCRIBE`s and `UNSUBSCRIBE`s.
    follow: tokio::sync::Mutex<()>,
    timers: Mutex<Timers>,
    seen: Arc<Seen>,
}

impl RedisStore {
    /// The store of this node, announcing the diffs it receives to `watchers`.
    pub fn new(limits: Limits, link: PresenceLink, watchers: Arc<Watchers>) -> Self {
        let presence = RedisPresence::new(link.prefix(), link.node(), limits);
        let sink = Arc::clone(&watchers);
        let seen = Arc::new(Seen::default());
        let sink_seen = Arc::clone(&seen);
        link.on_diff(move |channel, payload| match parse_diff(payload) {
            Ok((version, diff)) => {
                announce(&sink, channel, version, &diff);
                let mut versions = lock(&sink_seen.versions);
                let last = versions.entry(channel.to_owned()).or_default();
                *last = (*last).max(version);
                drop(versions);
                sink_seen.notify.notify_waiters();
            }
            Err(e) => warn!(channel, "a presence message that is not ours: {e}"),
        });
        RedisStore {
            presence,
            link,
            watchers,
            followed: Mutex::new(HashMap::new()),
            follow: tokio::sync::Mutex::new(()),
            timers: Mutex::new(Timers::default()),
            seen,
        }
    }

    /// Waits (at most [`CATCH_UP`]) until this node's watchers of `channel` were handed the diff
    /// of `version`, when it follows the channel: a call returns after its own diff was
    /// announced here, as on the in-process store (a `join` then adds its connection as a
    /// watcher: it does not receive its own join before its `sync`).
    async fn caught_up(&self, channel: &str, version: u64) {
        let Ok((_, generation)) = self.link.conn() else {
            return;
        };
        let followed = lock(&self.followed)
            .get(channel)
            .is_some_and(|f| f.generation == generation);
        if !followed {
            return;
        }
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        loop {
            let notified = self.seen.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if lock(&self.seen.versions)
                .get(channel)
                .is_some_and(|&seen| seen >= version)
            {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    fn conn(&self) -> Result<(MultiplexedConnection, u64), StoreError> {
        self.link
            .conn()
            .map_err(|unavailable| StoreError::Unavailable(unavailable.0))
    }

    pub async fn join(&self, channel: &str, r: JoinRequest<'_>) -> Result<JoinOutcome, StoreError> {
        let (mut redis, _) = self.conn()?;
        let (version, joined) = self
            .presence
            .join(&mut redis, channel, r.key, r.user, r.info, r.data, r.conn)
            .await
            .map_err(from_redis)?;
        if !matches!(joined, Joined::Resumed(None)) {
            self.caught_up(channel, version).await;
        }
        Ok(match joined {
            Joined::New(_) => JoinOutcome::New,
            Joined::Resumed(diff) => JoinOutcome::Resumed {
                changed: diff.is_some(),
            },
        })
    }

    pub async fn update(
        &self,
        channel: &str,
        key: &str,
        conn: ConnId,
        data: Value,
    ) -> Result<bool, StoreError> {
        let (mut redis, _) = self.conn()?;
        let updated = self
            .presence
            .update(&mut redis, channel, key, conn, data)
            .await
            .map_err(from_redis)?;
        if let Some((version, _)) = &updated {
            self.caught_up(channel, *version).await;
        }
        Ok(updated.is_some())
    }

    pub async fn leave(&self, channel: &str, key: &str, conn: ConnId) -> Result<bool, StoreError> {
        let (mut redis, _) = self.conn()?;
        let left = self
            .presence
            .leave(&mut redis, channel, key, conn)
            .await
            .map_err(from_redis)?;
        if let Some((version, _)) = &left {
            self.caught_up(channel, *version).await;
        }
        Ok(left.is_some())
    }

    pub async fn disconnected(
        &self,
        channel: &str,
        key: &str,
        conn: ConnId,
    ) -> Result<(), StoreError> {
        let (mut redis, _) = match self.conn() {
            Ok(link) => link,
            Err(e) => {
                // Not refreshed any more: it leaves at its expiry instead (never a ghost that this
                // node would keep refreshing once Redis is back).
                self.presence.abandon(channel, key, conn);
                return Err(e);
            }
        };
        self.presence
            .release(&mut redis, channel, key, conn)
            .await
            .map_err(from_redis)?;
        Ok(())
    }

    pub async fn snapshot(&self, channel: &str) -> Result<Snapshot, StoreError> {
        let (mut redis, _) = self.conn()?;
        let (version, members) = self
            .presence
            .snapshot(&mut redis, channel)
            .await
            .map_err(from_redis)?;
        let users = members
            .iter()
            .map(|m| m.user.as_str())
            .collect::<BTreeSet<_>>()
            .len();
        let members = members
            .into_iter()
            .map(|m| MemberView {
                key: m.key,
                user: m.user,
                info: m.info,
                data: m.data,
                since: m.since,
            })
            .collect();
        Ok(Snapshot {
            version,
            members,
            users,
        })
    }

    /// Called at every tick of the service: refreshes this node's members when
    /// [`REFRESH_EVERY`] has passed, sweeps when [`SWEEP_EVERY`] has, and unsubscribes idle
    /// channels. Returns how many members this node's sweep removed (each leave announced once in
    /// the cluster).
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let now = Instant::now();
        let (refresh, sweep) = {
            let mut timers = lock(&self.timers);
            let due = |at: &mut Option<Instant>, every: Duration| {
                // The tick is not exact: a little early counts.
                let early = Duration::from_millis(50);
                let due = at.is_none_or(|t| now.duration_since(t) + early >= every);
                if due {
                    *at = Some(now);
                }
                due
            };
            (
                due(&mut timers.refreshed, REFRESH_EVERY),
                due(&mut timers.swept, SWEEP_EVERY),
            )
        };
        if !refresh && !sweep {
            return Ok(0);
        }
        let (mut redis, generation) = self.conn()?;
        if refresh {
            let refreshed = self
                .presence
                .refresh(&mut redis)
                .await
                .map_err(from_redis)?;
            for (channel, key, conn) in &refreshed.lost {
                tracing::info!(
                    channel,
                    key,
                    conn,
                    "a presence member was taken over on another node (or the set filled up)"
                );
            }
            self.unfollow_idle(&mut redis, generation).await;
        }
        if !sweep {
            return Ok(0);
        }
        let swept = self.presence.sweep(&mut redis).await.map_err(from_redis)?;
        Ok(swept.len())
    }

    /// Unsubscribes the channels nobody on this node has watched for [`IDLE_UNFOLLOW`].
    async fn unfollow_idle(&self, redis: &mut MultiplexedConnection, generation: u64) {
        let _one_at_a_time = self.follow.lock().await;
        let now = Instant::now();
        let idle: Vec<String> = {
            let mut followed = lock(&self.followed);
            followed.retain(|_, f| f.generation == generation);
            let mut idle = Vec::new();
            for (channel, f) in followed.iter_mut() {
                if self.watchers.is_watched(channel) {
                    f.seen = now;
                } else if now.duration_since(f.seen) >= IDLE_UNFOLLOW {
                    idle.push(channel.clone());
                }
            }
            let mut seen = lock(&self.seen.versions);
            for channel in &idle {
                followed.remove(channel);
                seen.remove(channel);
            }
            idle
        };
        if idle.is_empty() {
            return;
        }
        let names: Vec<String> = idle.iter().map(|c| self.presence.keys().diffs(c)).collect();
        if let Err(e) = redis.unsubscribe(&names).await {
            // Their messages reach no watcher until the connection is replaced.
            self.link
                .failed(generation, "unsubscribe from presence diffs", e);
        }
    }

    /// Subscribes this node to `channel`'s diffs (once per connection to Redis).
    pub async fn follow(&self, channel: &str) -> Result<(), StoreError> {
        let _one_at_a_time = self.follow.lock().await;
        let (mut redis, generation) = self.conn()?;
        let now = Instant::now();
        if let Some(f) = lock(&self.followed).get_mut(channel) {
            if f.generation == generation {
                f.seen = now;
                return Ok(());
            }
        }
        redis
            .subscribe(self.presence.keys().diffs(channel))
            .await
            .map_err(|e| {
                let failed = self
                    .link
                    .failed(generation, "subscribe to presence diffs", e);
                StoreError::Unavailable(failed.0)
            })?;
        lock(&self.followed).insert(
            channel.to_owned(),
            Followed {
                generation,
                seen: now,
            },
        );
        Ok(())
    }

    /// Nobody here watches `channel` any more: unsubscribed after [`IDLE_UNFOLLOW`] (a watcher
    /// that comes back meanwhile finds the subscription there).
    pub fn unfollow(&self, channel: &str) {
        if let Some(f) = lock(&self.followed).get_mut(channel) {
            f.seen = Instant::now();
        }
    }

    /// The memberships of this node's open sockets.
    pub fn members(&self) -> usize {
        self.presence.owned_count()
    }
}
