//! How the broker ends a connection: a [`Kick`] with its [`KickReason`], raised once, that the
//! connection's task waits on; and what the client is told then ([`farewell`]), the same over
//! WebSocket and SSE.

use crate::metrics::Metrics;
use live_protocol::frame::{encode_error, ErrorCode};
use std::sync::atomic::{AtomicU8, Ordering};
use tracing::info;

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

/// Raised once when the broker ends a connection. The broker raises it through the connection's
/// [`Outbox`](super::Outbox), which also wakes the connection's task through its queue; the task
/// sees it in [`Member::next`](super::Member::next), which gives it before any queued frame, and
/// at the top of its loop. (No `Notify` of its own: waiting on one took a lock on every turn of
/// that loop, that is for every frame delivered.)
#[derive(Debug, Default)]
pub struct Kick {
    /// 0 until kicked, then a [`KickReason`].
    reason: AtomicU8,
}

impl Kick {
    /// Marks the connection as ended; true the first time (the first reason stays).
    pub(super) fn raise(&self, reason: KickReason) -> bool {
        self.reason
            .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
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
}

/// The transport of a connection the broker ends: what its client is told to do next differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    Sse,
}

/// What a connection the broker ended (`reason`; `None`: kicked without one, as a slow consumer)
/// tells its client last: the `error` frame to send before it closes, or `None` (a cut or a new
/// epoch end it without a word: the client reconnects and resumes, or is told to resync). Logged,
/// and a slow consumer counted, here for both transports; WebSocket then closes with its code.
pub fn farewell(
    reason: Option<KickReason>,
    transport: Transport,
    conn: u64,
    outbound_queue: usize,
    metrics: &Metrics,
) -> Option<String> {
    match reason {
        Some(KickReason::Unavailable) => {
            info!(
                conn,
                ?transport,
                "ending a connection: the broker is unavailable"
            );
            let message = match transport {
                Transport::WebSocket => "the relay lost its connection to Redis: reconnect (to another relay, or to this one once it is back)",
                Transport::Sse => "the relay lost its connection to Redis: reopen the stream with `since` (on another relay, or here once it is back)",
            };
            Some(encode_error(ErrorCode::Unavailable, message, None))
        }
        Some(KickReason::EpochChanged) => {
            info!(
                conn,
                ?transport,
                "ending a connection: the cluster's epoch changed"
            );
            None
        }
        Some(KickReason::Cut) => {
            info!(conn, ?transport, "cut (demo): dropping a connection");
            None
        }
        Some(KickReason::SlowConsumer) | None => {
            info!(conn, ?transport, "closing a slow consumer");
            metrics.slow_consumers.inc();
            let message = format!(
                "the outbound queue ({outbound_queue} frames) is full: the connection is closed"
            );
            Some(encode_error(ErrorCode::SlowConsumer, &message, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use live_protocol::frame::{decode_server, ServerFrame};

    fn code_of(frame: &str) -> String {
        match decode_server(frame) {
            Ok(ServerFrame::Error { code, id: None, .. }) => code.into_owned(),
            other => panic!("{other:?}"),
        }
    }

    /// One answer per reason for both transports: the same code, counted once per slow consumer,
    /// only what to do next worded per transport.
    #[test]
    fn both_transports_say_the_same_when_the_broker_ends_them() {
        let metrics = Metrics::default();
        for transport in [Transport::WebSocket, Transport::Sse] {
            let said = |reason| farewell(reason, transport, 7, 16, &metrics);
            let slow = said(Some(KickReason::SlowConsumer)).expect("an error frame");
            assert_eq!(code_of(&slow), "slow_consumer");
            assert!(
                slow.contains("outbound queue (16 frames) is full"),
                "{slow}"
            );
            assert_eq!(
                said(None),
                Some(slow),
                "kicked without a reason: a slow consumer"
            );
            let gone = said(Some(KickReason::Unavailable)).expect("an error frame");
            assert_eq!(code_of(&gone), "unavailable");
            assert_eq!(said(Some(KickReason::Cut)), None);
            assert_eq!(said(Some(KickReason::EpochChanged)), None);
        }
        assert_eq!(
            metrics.slow_consumers.get(),
            4,
            "two slow consumers per transport"
        );
    }
}
