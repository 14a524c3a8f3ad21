//! One WebSocket connection: `hello`, the client's frames, the outbound queue, pings and the
//! liveness deadline.
//!
//! A single task owns the socket. It writes replies itself and drains the outbound queue the
//! broker fills. The broker queues a `subscribed` answer itself, followed by any replayed events,
//! so the answer always precedes the events it announces.

use crate::broker::{Member, Request, Scopes, Since};
use crate::http::error_response;
use crate::publish::{check_subscription, validate};
use crate::query::Params;
use crate::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{interval_at, sleep_until, timeout, Instant, MissedTickBehavior};
use tracing::{debug, info};
use wasm_live_provider::engine::frame::{
    decode_client, encode_ack, encode_error, encode_hello, encode_ping, encode_pong, ChannelEntry,
    ClientFrame, ErrorCode, Publish, SUBPROTOCOL,
};

/// The transport's own message limit. Text frames between `max_frame_bytes` and this are refused
/// with a `too_large` error frame and the connection stays open; beyond it the WebSocket layer
/// closes the connection (close code 1009).
pub fn transport_limit(max_frame_bytes: usize) -> usize {
    max_frame_bytes.saturating_mul(4).max(1 << 20)
}

/// `GET /ws`: upgrades to WebSocket, selecting `wlp.v1` when the client offers it. The
/// connection's scopes come from the `scopes` query parameter; malformed ones are answered
/// `400` with a JSON error body instead of the upgrade.
pub async fn upgrade(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    RawQuery(query): RawQuery,
    State(state): State<Arc<AppState>>,
) -> Response {
    let scopes = match Params::parse(query.as_deref()).scopes() {
        Ok(scopes) => scopes,
        Err(e) => return error_response(e.code, &e.message),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let limit = transport_limit(state.config.max_frame_bytes);
    ws.protocols([SUBPROTOCOL])
        // tungstenite zero-fills its whole read buffer (128 KiB by default) before every read:
        // that is 128 KiB of RSS per connection. Frames are small; the buffer still grows for
        // large ones.
        .read_buffer_size(4 * 1024)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| run(socket, state, scopes))
}

/// The socket is gone (closed, failed, or too slow to take a write).
struct Gone;

struct Connection {
    socket: WebSocket,
    state: Arc<AppState>,
    member: Member,
    /// How long one write may take before the connection is given up.
    write_timeout: Duration,
}

/// Serves one upgraded connection, holding `scopes`, until it closes.
pub async fn run(socket: WebSocket, state: Arc<AppState>, scopes: Scopes) {
    let member = state
        .broker
        .connect_scoped(state.config.outbound_queue, scopes);
    let write_timeout = state.config.ping_interval() * 2;
    let id = member.id;
    debug!(conn = id, "connection opened");
    Connection {
        socket,
        state,
        member,
        write_timeout,
    }
    .serve()
    .await;
    debug!(conn = id, "connection closed");
}

impl Connection {
    async fn serve(mut self) {
        let hello = encode_hello(&self.state.epoch, self.state.config.ping_ms);
        if self.send(hello.into()).await.is_err() {
            return;
        }
        let ping_every = self.state.config.ping_interval();
        let silence_limit = ping_every * 2;
        let mut last_heard = Instant::now();
        let mut ticker = interval_at(Instant::now() + ping_every, ping_every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut shutdown = self.state.shutdown.clone();
        let kick = Arc::clone(&self.member.kick);

        loop {
            let step = tokio::select! {
                biased;
                _ = kick.wait() => {
                    info!(conn = self.member.id, "closing a slow consumer");
                    let message = format!(
                        "the outbound queue ({} frames) is full: the connection is closed",
                        self.state.config.outbound_queue
                    );
                    let _ = self.send(encode_error(ErrorCode::SlowConsumer, &message, None).into()).await;
                    self.close(close_code::POLICY, "slow consumer").await;
                    return;
                }
                _ = shutdown.changed() => {
                    self.close(close_code::AWAY, "relay shutting down").await;
                    return;
                }
                _ = sleep_until(last_heard + silence_limit) => {
                    debug!(conn = self.member.id, "nothing heard for two ping intervals");
                    self.close(close_code::POLICY, "no frame for two ping intervals").await;
                    return;
                }
                frame = self.member.rx.recv() => match frame {
                    Some(frame) => self.send_queued(frame.text).await,
                    None => return,
                },
                _ = ticker.tick() => self.send(Utf8Bytes::from(encode_ping())).await,
                incoming = self.socket.recv() => match incoming {
                    Some(Ok(message)) => {
                        last_heard = Instant::now();
                        self.on_message(message).await
                    }
                    Some(Err(e)) => {
                        debug!(conn = self.member.id, "read failed: {e}");
                        return;
                    }
                    None => return,
                },
            };
            if step.is_err() {
                return;
            }
        }
    }

    async fn send(&mut self, text: Utf8Bytes) -> Result<(), Gone> {
        match timeout(self.write_timeout, self.socket.send(Message::Text(text))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                debug!(conn = self.member.id, "write failed: {e}");
                Err(Gone)
            }
            Err(_) => {
                debug!(conn = self.member.id, "write timed out");
                Err(Gone)
            }
        }
    }

    /// Writes `first` and whatever else is already queued (up to 64 frames) with one flush, so a
    /// busy connection costs one write syscall per batch instead of one per frame.
    async fn send_queued(&mut self, first: Utf8Bytes) -> Result<(), Gone> {
        use futures_util::SinkExt;
        let socket = &mut self.socket;
        let rx = &mut self.member.rx;
        let kick = &self.member.kick;
        let write = async move {
            socket.feed(Message::Text(first)).await?;
            for _ in 1..64 {
                if kick.is_kicked() {
                    break;
                }
                match rx.try_recv() {
                    Ok(frame) => socket.feed(Message::Text(frame.text)).await?,
                    Err(_) => break,
                }
            }
            socket.flush().await
        };
        match timeout(self.write_timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                debug!(conn = self.member.id, "write failed: {e}");
                Err(Gone)
            }
            Err(_) => {
                debug!(conn = self.member.id, "write timed out");
                Err(Gone)
            }
        }
    }

    async fn send_error(
        &mut self,
        code: ErrorCode,
        message: &str,
        id: Option<u64>,
    ) -> Result<(), Gone> {
        self.send(encode_error(code, message, id).into()).await
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = timeout(
            self.write_timeout,
            self.socket.send(Message::Close(Some(frame))),
        )
        .await;
    }

    async fn on_message(&mut self, message: Message) -> Result<(), Gone> {
        match message {
            Message::Text(text) => self.on_text(text.as_str()).await,
            Message::Binary(_) => {
                self.send_error(
                    ErrorCode::BadFrame,
                    "binary frames are not used: send JSON text frames",
                    None,
                )
                .await
            }
            // WebSocket-level pings are answered by the transport; a close is answered by it too,
            // and the next read then ends the connection.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => Ok(()),
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), Gone> {
        let max = self.state.config.max_frame_bytes;
        if text.len() > max {
            let message = format!(
                "frame of {} bytes is over the limit of {max} bytes",
                text.len()
            );
            return self.send_error(ErrorCode::TooLarge, &message, None).await;
        }
        let frame = match decode_client(text) {
            Ok(frame) => frame,
            Err(e) => return self.send_error(e.code, &e.message, e.id).await,
        };
        match frame {
            ClientFrame::Subscribe { channels } => self.subscribe(&channels).await,
            ClientFrame::Unsubscribe { channels } => {
                let names: Vec<&str> = channels.iter().map(|c| c.channel.as_ref()).collect();
                self.state.broker.unsubscribe(self.member.id, &names);
                Ok(())
            }
            ClientFrame::Publish { id, event } => self.publish(id, event).await,
            ClientFrame::Ping => self.send(Utf8Bytes::from(encode_pong())).await,
            ClientFrame::Pong => Ok(()),
        }
    }

    /// Writes what the broker queued so far (unless the connection is being closed as a slow
    /// consumer), so that a reply written next comes after it.
    async fn flush_queue(&mut self) -> Result<(), Gone> {
        while !self.member.kick.is_kicked() {
            match self.member.rx.try_recv() {
                Ok(frame) => self.send(frame.text).await?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    async fn subscribe(&mut self, channels: &[ChannelEntry<'_>]) -> Result<(), Gone> {
        let limits = self.state.limits();
        let mut requests = Vec::with_capacity(channels.len());
        for entry in channels {
            if let Err(e) = check_subscription(&entry.channel, &limits) {
                return self.send_error(e.code, &e.message, None).await;
            }
            let since = match &entry.since {
                None => Since::Now,
                Some(position) if position.epoch == self.state.epoch => Since::Seq(position.seq),
                Some(_) => Since::OtherEpoch,
            };
            requests.push(Request {
                channel: entry.channel.as_ref(),
                since,
            });
        }
        let max = self.state.config.max_channels;
        // The broker queues the `subscribed` answer and the replay.
        match self.state.broker.subscribe(self.member.id, &requests, max) {
            Ok(_) => self.flush_queue().await,
            Err(e) => {
                self.send_error(ErrorCode::TooManyChannels, &e.to_string(), None)
                    .await
            }
        }
    }

    async fn publish(&mut self, id: u64, event: Publish<'_>) -> Result<(), Gone> {
        let event = match validate(event, &self.state.limits()) {
            Ok(event) => event,
            Err(e) => return self.send_error(e.code, &e.message, Some(id)).await,
        };
        let seq = self.state.broker.publish(&event).seq();
        // Send what is queued first, so the publisher sees its own event before the ack.
        self.flush_queue().await?;
        self.send(encode_ack(id, seq).into()).await
    }
}
