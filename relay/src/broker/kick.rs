//! How the broker ends a connection: a [`Kick`] with its [`KickReason`], raised once, that the
//! connection's task waits on.

use std::sync::atomic::{AtomicU8, Ordering};
use tokio::sync::Notify;

/// Why the broker ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum KickReason {
    /// Its outbound queue was full.
    SlowConsumer = 1,
    /// The broker lost its connection to Redis: nothing can be delivered in order until it is
    /// back, so the client reconnects (to this node once it is back, or to another one).
    Unavailable = 2,
    /// The cluster's history was lost (Redis restarted without its data): the relay has a new
    /// epoch, announced to the client when it reconnects.
    EpochChanged = 3,
    /// The demo's `POST /demo/cut`: the connection is dropped without a word, as a network blip
    /// would drop it; the client reconnects and resumes with its positions.
    Cut = 4,
}

/// Raised once when the broker ends a connection; the connection waits on it.
#[derive(Debug, Default)]
pub struct Kick {
    /// 0 until kicked, then a [`KickReason`].
    reason: AtomicU8,
    notify: Notify,
}

impl Kick {
    /// Marks the connection as ended; wakes it the first time (the first reason stays).
    pub(crate) fn kick(&self, reason: KickReason) {
        if self
            .reason
            .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.notify.notify_one();
        }
    }

    pub fn is_kicked(&self) -> bool {
        self.reason.load(Ordering::Acquire) != 0
    }

    /// Why the connection was kicked (None while it was not).
    pub fn reason(&self) -> Option<KickReason> {
        match self.reason.load(Ordering::Acquire) {
            1 => Some(KickReason::SlowConsumer),
            2 => Some(KickReason::Unavailable),
            3 => Some(KickReason::EpochChanged),
            4 => Some(KickReason::Cut),
            _ => None,
        }
    }

    /// Resolves once the connection has been kicked.
    pub async fn wait(&self) {
        // `notify_one` keeps a permit when nobody waits yet, so a kick is never missed.
        self.notify.notified().await;
    }
}
