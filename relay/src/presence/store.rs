//! Where the presence sets live: [`Store`], one variant per broker (see the module doc of
//! [`super`] for the interface a store implements). Every method is async and keyed by channel
//! (and member key); a store announces each diff it makes (or, on a cluster, receives) to the
//! [`Watchers`](super::watchers::Watchers) it was built with, in version order per channel.

use super::contract::{JoinOutcome, JoinRequest, Snapshot, StoreError};
use super::memory::MemoryStore;
use super::redis::store::RedisStore;
use super::set::ConnId;
use serde_json::Value;

/// The store a relay runs: its sets in this process, or (a cluster) in Redis.
#[derive(Debug)]
pub enum Store {
    Memory(MemoryStore),
    /// A cluster's: the sets in Redis (relay/src/presence/redis.rs).
    Redis(Box<RedisStore>),
}

impl Store {
    /// Joins (or resumes) `request.key` on `channel`.
    pub async fn join(
        &self,
        channel: &str,
        request: JoinRequest<'_>,
    ) -> Result<JoinOutcome, StoreError> {
        match self {
            Store::Memory(s) => s.join(channel, request),
            Store::Redis(s) => s.join(channel, request).await,
        }
    }

    /// Replaces the `data` of member `key`, held by `conn`; true when it changed (announced).
    pub async fn update(
        &self,
        channel: &str,
        key: &str,
        conn: ConnId,
        data: Value,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Memory(s) => s.update(channel, key, conn, data),
            Store::Redis(s) => s.update(channel, key, conn, data).await,
        }
    }

    /// Member `key`, held by `conn`, leaves at once (announced); false when it was not there.
    pub async fn leave(&self, channel: &str, key: &str, conn: ConnId) -> Result<bool, StoreError> {
        match self {
            Store::Memory(s) => Ok(s.leave(channel, key, conn)),
            Store::Redis(s) => s.leave(channel, key, conn).await,
        }
    }

    /// The socket of `conn` ended: member `key` leaves when the grace period ends, unless a join
    /// with its key resumes it first. Announces nothing now.
    pub async fn disconnected(
        &self,
        channel: &str,
        key: &str,
        conn: ConnId,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(s) => {
                s.disconnected(channel, key, conn);
                Ok(())
            }
            Store::Redis(s) => s.disconnected(channel, key, conn).await,
        }
    }

    /// The channel's whole set (members in their grace period included).
    pub async fn snapshot(&self, channel: &str) -> Result<Snapshot, StoreError> {
        match self {
            Store::Memory(s) => Ok(s.snapshot(channel)),
            Store::Redis(s) => s.snapshot(channel).await,
        }
    }

    /// Removes the members whose grace period has ended (each announced once, also when several
    /// nodes sweep); how many.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        match self {
            Store::Memory(s) => Ok(s.sweep()),
            Store::Redis(s) => s.sweep().await,
        }
    }

    /// This node now has a watcher of `channel`: a cluster's store starts receiving its diffs
    /// (before the snapshot a `sync` is made of).
    pub async fn follow(&self, channel: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => {
                let _ = channel;
                Ok(())
            }
            Store::Redis(s) => s.follow(channel).await,
        }
    }

    /// No one on this node watches `channel` any more.
    pub fn unfollow(&self, channel: &str) {
        match self {
            Store::Memory(_) => {
                let _ = channel;
            }
            Store::Redis(s) => s.unfollow(channel),
        }
    }

    /// Members in the sets this node knows (the `live_relay_presence_members` gauge).
    pub fn members(&self) -> usize {
        match self {
            Store::Memory(s) => s.members(),
            Store::Redis(s) => s.members(),
        }
    }
}
