//! Publishes: their errors, and the queue of those not yet settled with their timeouts.
//!
//! Publishing (`publish`, its timeouts and retries, the answers) is in `publishing.rs`.

use super::config::{Millis, PublishId};
use crate::cat;
use crate::engine::code::Code;
use crate::prelude::*;
use core::fmt;

/// Why a publish did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishError {
    /// The payload or meta given was not valid JSON.
    InvalidJson { field: &'static str, reason: String },
    /// No ack within the timeout. The relay may or may not have published it.
    Timeout { after_ms: Millis },
    /// Too many publishes were waiting for a connection; this one was the oldest.
    QueueFull { capacity: usize },
    /// The relay refused it.
    Rejected { code: Code, message: String },
    /// The provider was closed.
    Closed,
}

impl PublishError {
    /// A stable name for the kind of error (the JS error's `code`).
    pub fn code(&self) -> &'static str {
        match self {
            PublishError::InvalidJson { .. } => "invalid_json",
            PublishError::Timeout { .. } => "timeout",
            PublishError::QueueFull { .. } => "queue_full",
            PublishError::Rejected { .. } => "rejected",
            PublishError::Closed => "closed",
        }
    }
}

impl PublishError {
    /// What went wrong, for the app (built without `core::fmt`; see `engine::text`).
    pub fn message(&self) -> String {
        match self {
            PublishError::InvalidJson { field, reason } => {
                cat!(field, " is not valid JSON: ", reason)
            }
            PublishError::Timeout { after_ms } => cat!(
                "publish timed out: no ack from the relay within ",
                after_ms,
                " ms (it may or may not have been published)"
            ),
            PublishError::QueueFull { capacity } => cat!(
                "publish dropped: more than ",
                capacity,
                " publishes were waiting for a connection"
            ),
            PublishError::Rejected { code, message } => {
                cat!(
                    "the relay rejected the publish (",
                    code.name(),
                    "): ",
                    message
                )
            }
            PublishError::Closed => "the live provider was closed".to_owned(),
        }
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl core::error::Error for PublishError {}

/// A publish not settled yet.
#[derive(Debug)]
pub(super) struct PendingPublish {
    /// The `publish` frame; over SSE the same JSON is the `POST /publish` body (the relay ignores
    /// `op` and `id` there).
    pub(super) frame: String,
    /// `Some(deadline)` once first sent; `None` while it has never left.
    pub(super) deadline: Option<Millis>,
    /// SSE: when to POST it again after the relay could not be reached.
    pub(super) retry_at: Option<Millis>,
    /// SSE with authentication: not POSTed yet, waiting for the first token.
    pub(super) held: bool,
}

impl PendingPublish {
    /// A publish not retried yet: sent with an ack `deadline`, or `None` while it has not left.
    pub(super) fn new(frame: String, deadline: Option<Millis>, held: bool) -> Self {
        PendingPublish {
            frame,
            deadline,
            retry_at: None,
            held,
        }
    }
}

/// The publishes not settled yet, oldest (smallest id) first, and how the next one is named.
#[derive(Debug)]
pub(super) struct PublishQueue {
    /// The idempotency keys' random prefix (the keys are `<prefix>:<id>`).
    key_prefix: String,
    /// The last id given out.
    last_id: PublishId,
    /// Sorted by id. A `Vec`: the queue holds at most `publishQueue` (100) waiting publishes plus
    /// those in flight, and a map type would cost kilobytes of wasm for nothing.
    pending: Vec<(PublishId, PendingPublish)>,
}

impl PublishQueue {
    pub(super) fn new(key_prefix: String) -> Self {
        PublishQueue {
            key_prefix,
            last_id: 0,
            pending: Vec::new(),
        }
    }

    /// The id and idempotency key of a new publish.
    pub(super) fn next_id(&mut self) -> (PublishId, String) {
        self.last_id += 1;
        let id = self.last_id;
        (id, cat!(self.key_prefix, ':', id))
    }

    fn find(&self, id: PublishId) -> Result<usize, usize> {
        self.pending.binary_search_by_key(&id, |(known, _)| *known)
    }

    pub(super) fn insert(&mut self, id: PublishId, publish: PendingPublish) {
        match self.find(id) {
            Ok(at) => self.pending[at].1 = publish,
            Err(at) => self.pending.insert(at, (id, publish)),
        }
    }

    pub(super) fn remove(&mut self, id: &PublishId) -> Option<PendingPublish> {
        let at = self.find(*id).ok()?;
        Some(self.pending.remove(at).1)
    }

    pub(super) fn contains_key(&self, id: &PublishId) -> bool {
        self.find(*id).is_ok()
    }

    #[cfg(feature = "sse")]
    pub(super) fn get_mut(&mut self, id: &PublishId) -> Option<&mut PendingPublish> {
        let at = self.find(*id).ok()?;
        Some(&mut self.pending[at].1)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Empties the queue: the ids, oldest first.
    pub(super) fn take_all(&mut self) -> Vec<PublishId> {
        core::mem::take(&mut self.pending)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// Removes the oldest publishes past `capacity`: their ids.
    pub(super) fn trim(&mut self, capacity: usize) -> Vec<PublishId> {
        let over = self.pending.len().saturating_sub(capacity);
        self.pending.drain(..over).map(|(id, _)| id).collect()
    }

    /// Starts the timeout (`deadline`) of every publish that has none yet — they are all being
    /// sent — and returns every one's id and frame, oldest first.
    pub(super) fn send_all(&mut self, deadline: Millis) -> Vec<(PublishId, String)> {
        let mut frames = Vec::with_capacity(self.pending.len());
        for (id, p) in &mut self.pending {
            p.deadline.get_or_insert(deadline);
            frames.push((*id, p.frame.clone()));
        }
        frames
    }

    /// The earliest ack deadline ([`super::deadlines::Timer::PublishTimeout`]).
    pub(super) fn next_timeout(&self) -> Option<Millis> {
        self.pending.iter().filter_map(|(_, p)| p.deadline).min()
    }

    /// The earliest retry of a POST ([`super::deadlines::Timer::PublishRetry`]).
    pub(super) fn next_retry(&self) -> Option<Millis> {
        self.pending.iter().filter_map(|(_, p)| p.retry_at).min()
    }

    /// Removes the publishes whose ack is overdue at `now`: their ids.
    pub(super) fn expire(&mut self, now: Millis) -> Vec<PublishId> {
        self.take_where(|p| p.deadline.is_some_and(|d| d <= now))
    }

    /// SSE: the publishes whose retry time has come, with their bodies; their retry is done.
    #[cfg(feature = "sse")]
    pub(super) fn due_retries(&mut self, now: Millis) -> Vec<(PublishId, String)> {
        let mut retries = Vec::new();
        for (id, p) in &mut self.pending {
            if p.retry_at.is_some_and(|t| t <= now) {
                p.retry_at = None;
                retries.push((*id, p.frame.clone()));
            }
        }
        retries
    }

    /// SSE: the publishes that waited for a first token, with their bodies; they wait no more.
    #[cfg(feature = "sse")]
    pub(super) fn release_held(&mut self) -> Vec<(PublishId, String)> {
        let mut posts = Vec::new();
        for (id, p) in self.pending.iter_mut().filter(|(_, p)| p.held) {
            p.held = false;
            posts.push((*id, p.frame.clone()));
        }
        posts
    }

    /// Removes the publishes that waited for a first token: their ids.
    pub(super) fn drop_held(&mut self) -> Vec<PublishId> {
        self.take_where(|p| p.held)
    }

    /// Removes the publishes `which` selects: their ids, oldest first.
    fn take_where(&mut self, which: impl Fn(&PendingPublish) -> bool) -> Vec<PublishId> {
        let mut taken = Vec::new();
        self.pending.retain(|(id, p)| {
            let take = which(p);
            if take {
                taken.push(*id);
            }
            !take
        });
        taken
    }
}
