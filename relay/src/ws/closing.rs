//! Closing a WebSocket so that the close arrives: the relay's error frame and Close frame, then
//! the closing handshake.
//!
//! A socket closed with unread bytes in its receive buffer is reset (RST) instead of ended (FIN),
//! and a reset destroys what is still on its way to the client: it would see 1006 and no error
//! frame. A client that is refused is often still sending (a reconnecting client sends `auth`, its
//! subscribes and its queued publishes back to back), so after its Close frame the relay reads and
//! discards until the client's Close, the end of the stream or [`CLOSE_HANDSHAKE_TIMEOUT`].
//!
//! After a frame over the transport's limit, WebSocket frames can no longer be read: the TCP
//! connection itself then drains what is left (`crate::tcp::GracefulClose`).

use crate::limits::write_within;
use crate::metrics::Metrics;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// How long the relay waits, after its Close frame, for the client's.
pub const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// Sends a Close frame with `code` (within `write_timeout`, as every write: [`write_within`]),
/// then completes the closing handshake (see the module doc). `conn`: the connection's id, once it
/// has one.
pub async fn close_socket(
    socket: &mut WebSocket,
    code: u16,
    reason: &'static str,
    write_timeout: Duration,
    (metrics, conn): (&Metrics, Option<u64>),
) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let close = socket.send(Message::Close(Some(frame)));
    if write_within(metrics, conn, write_timeout, close)
        .await
        .is_err()
    {
        return;
    }
    let deadline = Instant::now() + CLOSE_HANDSHAKE_TIMEOUT;
    loop {
        match timeout_at(deadline, socket.recv()).await {
            Ok(Some(Ok(Message::Close(_))) | None) | Err(_) => return,
            Ok(Some(Ok(_))) => {}
            // The stream is broken (a frame over the transport's limit): nothing more can be
            // read as frames; the TCP connection drains the rest when it is dropped.
            Ok(Some(Err(_))) => return,
        }
    }
}

/// Whether a read failed on a frame or message over the transport's limit (tungstenite's
/// `Capacity` error, "Space limit exceeded: …", somewhere in the error's sources).
pub fn is_over_transport_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.to_string().starts_with("Space limit exceeded") {
            return true;
        }
        source = e.source();
    }
    false
}
