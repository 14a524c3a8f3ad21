//! What a presence store is asked and answers, shared by both stores ([`super::memory`] and
//! [`super::redis::store`]) and by [`super::store::Store`], which dispatches to them: a join's
//! request and outcome, a member as a snapshot holds it, a snapshot, and the store's errors.

use super::set::{ConnId, Millis, Refusal};
use live_protocol::frame::PresenceMember;
use serde_json::Value;

/// A member, owned (as a snapshot holds it).
#[derive(Debug, Clone, PartialEq)]
pub struct MemberView {
    pub key: String,
    pub user: String,
    pub info: Value,
    pub data: Value,
    /// Milliseconds since the epoch.
    pub since: Millis,
}

impl MemberView {
    /// The member as the wire says it.
    pub fn wire(&self) -> PresenceMember<'_> {
        PresenceMember {
            key: &self.key,
            user: &self.user,
            info: &self.info,
            data: &self.data,
            since: self.since,
        }
    }
}

/// A channel's whole set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The version of its last diff (0: none yet).
    pub version: u64,
    pub members: Vec<MemberView>,
    /// Distinct users among the members.
    pub users: usize,
}

/// A `join`, decided by the relay: who the member is (the token's, or the frame's in open mode).
#[derive(Debug, Clone)]
pub struct JoinRequest<'a> {
    pub key: &'a str,
    pub user: &'a str,
    /// An object or null.
    pub info: Value,
    /// An object.
    pub data: Value,
    /// The connection (on this node) that holds the member from now on.
    pub conn: ConnId,
}

/// What a join did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutcome {
    /// A new member, announced (`join`).
    New,
    /// The key was present (a reconnect within the grace period, on any node) and is this
    /// connection's now: announced only when its `data` changed (`update`).
    Resumed { changed: bool },
}

/// Why a store did not do it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Refused by the set's rules (with its protocol code).
    Refused(Refusal),
    /// The store cannot be reached now (Redis).
    Unavailable(String),
}

impl From<Refusal> for StoreError {
    fn from(refusal: Refusal) -> Self {
        StoreError::Refused(refusal)
    }
}
