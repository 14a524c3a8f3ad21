//! One WebSocket connection: `hello`, the client's frames, the outbound queue, pings, the
//! liveness deadline and, with authentication on, the token's deadline.
//!
//! With authentication on, the connection holds no rights until its first `auth` frame is
//! accepted (within [`AUTH_TIMEOUT`]); then its token's claims say what it may subscribe and
//! publish to and give its scopes. Another `auth` frame refreshes the token in-band. When the
//! token expires unrefreshed, or the first `auth` fails, the connection gets an `unauthorized`
//! error and is closed with [`CLOSE_UNAUTHORIZED`].
//!
//! A single task owns the socket. It writes replies itself and drains the outbound queue the
//! broker fills. The broker queues a `subscribed` answer itself, followed by any replayed events,
//! so the answer always precedes the events it announces.

use crate::auth::{self, AuthFailure, Grant};
use crate::broker::kick::{farewell, Transport};
use crate::broker::{self, KickReason, Member, Next, Outbound, Request, Scopes, SubscribeError};
use crate::error::{error_response, frame_error_response};
use crate::limits::{write_timeout, write_within, IpSlot, TokenBucket, WriteFailed};
use crate::metrics::limit;
use crate::query::Params;
use crate::state::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use closing::{close_socket, is_over_transport_limit};
use deadlines::{Deadlines, Due};
use live_protocol::frame::{
    decode_client, encode_ack, encode_authed, encode_channel_error, encode_error,
    encode_hello_with, encode_ping, encode_pong, request_id, ChannelEntry, ClientFrame, ErrorCode,
    CLOSE_UNAUTHORIZED, SUBPROTOCOL,
};
use publishing::{Outcome, Publisher};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};
use tracing::debug;

mod closing;
mod deadlines;
mod presence;
mod publishing;

/// How long a connection may take to send its first `auth` frame when authentication is on.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest frame a connection may send before its `auth` frame is accepted (with
/// authentication on): room for a large token, not for the `--max-frame-bytes` of a publish. A
/// larger one closes the connection (1009): it has no rights to spend the relay's memory on.
pub const MAX_FRAME_BYTES_BEFORE_AUTH: usize = 16 * 1024;

pub use closing::CLOSE_HANDSHAKE_TIMEOUT;

/// The transport's own message limit. Text frames between `max_frame_bytes` and this are refused
/// with a `too_large` error frame and the connection stays open; beyond it the WebSocket layer
/// closes the connection (close code 1009).
pub fn transport_limit(max_frame_bytes: usize) -> usize {
    max_frame_bytes.saturating_mul(4).max(1 << 20)
}

/// `GET /ws`: upgrades to WebSocket, selecting `wlp.v1` when the client offers it. A page from an
/// origin not allowed gets `403`, an IP address over its connection limit `429`. Without
/// authentication the connection's scopes come from the `scopes` query parameter (malformed ones
/// are answered `400` with a JSON error body instead of the upgrade); with it, from the token.
pub async fn upgrade(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    State(state): State<Arc<AppState>>,
) -> Response {
    let scopes = if state.auth.connections_need_token() {
        Scopes::from([])
    } else {
        match Params::parse(query.as_deref()).scopes() {
            Ok(scopes) => scopes,
            Err(e) => return frame_error_response(&e),
        }
    };
    let slot = match state.admit(&headers, peer.ip()) {
        Ok(slot) => slot,
        Err(e) => return frame_error_response(&e),
    };
    if let Err(e) = state.broker.health() {
        return error_response(ErrorCode::Unavailable, &e.to_string());
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let limit = transport_limit(state.config.max_frame_bytes);
    ws.protocols([SUBPROTOCOL])
        // tungstenite zero-fills its whole read buffer (128 KiB by default) before every read:
        // that is 128 KiB of RSS per connection. A client's frames are small (auth, subscribe,
        // pong); the buffer still grows for a large one, read 1 KiB per call.
        .read_buffer_size(1024)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| run(socket, state, scopes, slot))
}

/// The close reason (code 1013, try again later) when the relay loses its broker (Redis).
const UNAVAILABLE_REASON: &str = "relay unavailable: its Redis is unreachable";

/// The socket is gone (closed, failed, or too slow to take a write).
struct Gone;

impl From<WriteFailed> for Gone {
    fn from(_: WriteFailed) -> Self {
        Gone
    }
}

struct Connection {
    socket: WebSocket,
    state: Arc<AppState>,
    member: Member,
    /// How long one write may take before the connection is given up.
    write_timeout: Duration,
    /// What the connection may do: `None` until its first `auth` frame is accepted.
    grant: Option<Grant>,
    /// Its deadlines (with authentication on, the first `auth` frame, then the token's expiry;
    /// the silence limit; the next ping), behind the one timer of its loop.
    deadlines: Deadlines,
    /// The connection's publishes per second.
    publishes: TokenBucket,
    /// Channels a refreshed token no longer allows: frames of theirs still queued are dropped.
    revoked: HashSet<Arc<str>>,
    /// The connection's publish task, from its first publish on.
    publisher: Option<Publisher>,
    /// Its presence frames' rate and the channels it is in or watches the presence of, from its
    /// first presence frame on (most connections never send one: a pointer, not ~110 bytes
    /// carried by every idle connection's task).
    presence: Option<Box<presence::ConnectionPresence>>,
    /// Counts the connection against its IP address's limit while it lives.
    _slot: IpSlot,
}

/// Serves one upgraded connection, holding `scopes`, until it closes.
pub async fn run(mut socket: WebSocket, state: Arc<AppState>, scopes: Scopes, slot: IpSlot) {
    let member = match state.broker.connect(state.config.outbound_queue, scopes) {
        Ok(member) => member,
        Err(e) => {
            // Redis went away during the upgrade.
            let error = encode_error(ErrorCode::Unavailable, &e.to_string(), None);
            let limit = write_timeout(state.config.ping_interval());
            let metrics = &state.metrics;
            let sent = socket.send(Message::Text(error.into()));
            let _ = write_within(metrics, None, limit, sent).await;
            let (code, reason) = (close_code::AGAIN, UNAVAILABLE_REASON);
            close_socket(&mut socket, code, reason, limit, (metrics, None)).await;
            return;
        }
    };
    let write_timeout = write_timeout(state.config.ping_interval());
    let id = member.id;
    let now = Instant::now();
    let (grant, auth_deadline) = if state.auth.connections_need_token() {
        (None, Some(now + AUTH_TIMEOUT))
    } else {
        (Some(Grant::Open), None)
    };
    let deadlines = Deadlines::new(now, state.config.ping_interval(), auth_deadline);
    let publishes = TokenBucket::new(state.config.publish_rate, state.config.publish_burst);
    debug!(conn = id, "connection opened");
    Connection {
        socket,
        state,
        member,
        write_timeout,
        grant,
        deadlines,
        publishes,
        presence: None,
        revoked: HashSet::new(),
        publisher: None,
        _slot: slot,
    }
    .serve()
    .await;
    debug!(conn = id, "connection closed");
}

/// Whether `frame` belongs to a channel the connection's token no longer allows.
fn is_revoked(revoked: &HashSet<Arc<str>>, frame: &Outbound) -> bool {
    !revoked.is_empty()
        && frame
            .position
            .as_ref()
            .is_some_and(|position| revoked.contains(&position.channel))
}

/// The next outcome of the connection's publish task (pending when it has none).
async fn next_outcome(publisher: &mut Option<Publisher>) -> Option<Outcome> {
    match publisher {
        Some(publisher) => publisher.next().await,
        None => std::future::pending().await,
    }
}

impl Connection {
    async fn serve(mut self) {
        let features = self.state.presence.features();
        let hello = encode_hello_with(&self.member.epoch, self.state.config.ping_ms, features);
        if self.send(hello.into()).await.is_err() {
            return;
        }
        let mut shutdown = self.state.shutdown.clone();
        // Made once, not on every turn of the loop: a timer made and dropped per turn costs two
        // trips through tokio's timer wheel per delivered frame (see `deadlines`).
        let shutting_down = shutdown.changed();
        let mut armed = self.deadlines.earliest();
        let timer = sleep_until(armed);
        tokio::pin!(shutting_down, timer);

        loop {
            // A kick comes before anything else that is ready (in `select!` it comes after the
            // deadlines and a shutdown, which a steady stream of frames must not starve).
            if self.member.kick.is_kicked() {
                Box::pin(self.kicked(self.member.kick.reason())).await;
                return;
            }
            // Only an `auth` frame brings a deadline closer (a frame heard moves silence later;
            // a ping is only taken when the timer fires).
            if self.deadlines.earliest() < armed {
                armed = self.deadlines.earliest();
                timer.as_mut().reset(armed);
            }
            let step = tokio::select! {
                biased;
                _ = &mut timer => {
                    let due = self.deadlines.due(Instant::now());
                    armed = self.deadlines.earliest();
                    timer.as_mut().reset(armed);
                    match due {
                        Some(Due::Auth) => {
                            let message = if self.grant.is_some() {
                                self.state.metrics.token_expiries.inc();
                                "the token has expired: refresh it and reconnect"
                            } else {
                                self.state.metrics.auth_failure(AuthFailure::Missing.reason());
                                "no `auth` frame with a token within 10 s"
                            };
                            self.refuse(message).await;
                            return;
                        }
                        Some(Due::Silence) => {
                            debug!(conn = self.member.id, "nothing heard for two ping intervals");
                            self.state.metrics.limit_hit(limit::SILENCE);
                            self.close(close_code::POLICY, "no frame for two ping intervals").await;
                            return;
                        }
                        Some(Due::Ping) => self.send(Utf8Bytes::from(encode_ping())).await,
                        None => Ok(()),
                    }
                }
                _ = &mut shutting_down => {
                    self.close(close_code::AWAY, "relay shutting down").await;
                    return;
                }
                next = self.member.next() => match next {
                    Next::Frame(frame) => self.send_queued(frame).await,
                    Next::Kicked => {
                        Box::pin(self.kicked(self.member.kick.reason())).await;
                        return;
                    }
                    Next::Ended => return,
                },
                Some(outcome) = next_outcome(&mut self.publisher) => {
                    Box::pin(self.answer_publish(outcome)).await
                }
                incoming = self.socket.recv() => match incoming {
                    Some(Ok(message)) => {
                        self.deadlines.heard(Instant::now());
                        // Boxed: a frame's handling (a subscribe that follows a channel on Redis,
                        // an auth) is the largest state of this loop, and every idle connection's
                        // task would carry its size (bench/RESULTS.md, memory per connection).
                        Box::pin(self.on_message(message)).await
                    }
                    Some(Err(e)) => {
                        debug!(conn = self.member.id, "read failed: {e}");
                        if is_over_transport_limit(&e) {
                            self.too_large_for_transport().await;
                        }
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

    /// Tells the client the broker is unavailable and closes with 1013: it reconnects and resumes.
    async fn unavailable(&mut self, message: &str) -> Result<(), Gone> {
        let _ = self.send_error(ErrorCode::Unavailable, message, None).await;
        self.close(close_code::AGAIN, UNAVAILABLE_REASON).await;
        Err(Gone)
    }

    /// Closes a connection the broker ended, telling the client why ([`farewell`], as SSE does),
    /// then with the close code of the reason; a cut drops it without a close frame, as a network
    /// blip would.
    async fn kicked(&mut self, reason: Option<KickReason>) {
        let (conn, queue) = (self.member.id, self.state.config.outbound_queue);
        let told = farewell(
            reason,
            Transport::WebSocket,
            conn,
            queue,
            &self.state.metrics,
        );
        if let Some(frame) = told {
            let _ = self.send(frame.into()).await;
        }
        match reason {
            Some(KickReason::Unavailable) => {
                self.close(close_code::AGAIN, UNAVAILABLE_REASON).await
            }
            Some(KickReason::Cut) => {}
            Some(KickReason::EpochChanged) => {
                let reason = "relay history reset: reconnect";
                self.close(close_code::RESTART, reason).await
            }
            Some(KickReason::SlowConsumer) | None => {
                self.close(close_code::POLICY, "slow consumer").await
            }
        }
    }

    async fn send(&mut self, text: Utf8Bytes) -> Result<(), Gone> {
        let write = self.socket.send(Message::Text(text));
        let (metrics, conn) = (&self.state.metrics, Some(self.member.id));
        Ok(write_within(metrics, conn, self.write_timeout, write).await?)
    }

    /// Writes `first` and whatever else is already queued (up to 64 frames) with one flush, so a
    /// busy connection costs one write syscall per batch instead of one per frame.
    async fn send_queued(&mut self, first: Outbound) -> Result<(), Gone> {
        use futures_util::SinkExt;
        let socket = &mut self.socket;
        let rx = &mut self.member.rx;
        let kick = &self.member.kick;
        let delivered = &self.state.metrics.delivered;
        let revoked = &self.revoked;
        let write = async move {
            let mut events = 0;
            let mut next = Some(first);
            let mut fed = 0;
            while let Some(frame) = next.take() {
                if !is_revoked(revoked, &frame) {
                    events += u64::from(frame.position.is_some());
                    socket.feed(Message::Text(frame.text)).await?;
                }
                fed += 1;
                // Only take another frame off the queue when it will be written.
                if kick.is_kicked() || fed == 64 {
                    break;
                }
                next = rx.try_recv();
            }
            delivered.inc_by(events);
            socket.flush().await
        };
        let (metrics, conn) = (&self.state.metrics, Some(self.member.id));
        Ok(write_within(metrics, conn, self.write_timeout, write).await?)
    }

    async fn send_error(
        &mut self,
        code: ErrorCode,
        message: &str,
        id: Option<u64>,
    ) -> Result<(), Gone> {
        self.send(encode_error(code, message, id).into()).await
    }

    /// Sends `unauthorized` and closes with [`CLOSE_UNAUTHORIZED`]: the client gets a new token
    /// and reconnects.
    async fn refuse(&mut self, message: &str) {
        let _ = self
            .send_error(ErrorCode::Unauthorized, message, None)
            .await;
        self.close(CLOSE_UNAUTHORIZED, "unauthorized").await;
    }

    /// Closes with `code` (see [`close_socket`]). Every close the relay decides goes through here.
    async fn close(&mut self, code: u16, reason: &'static str) {
        let metrics = (&self.state.metrics, Some(self.member.id));
        close_socket(&mut self.socket, code, reason, self.write_timeout, metrics).await;
    }

    /// A frame over the transport's limit: `too_large`, then close 1009 (message too big).
    async fn too_large_for_transport(&mut self) {
        self.state.metrics.limit_hit(limit::TRANSPORT_SIZE);
        let message = format!(
            "a frame over {} bytes: the connection is closed",
            transport_limit(self.state.config.max_frame_bytes)
        );
        let _ = self.send_error(ErrorCode::TooLarge, &message, None).await;
        self.close(close_code::SIZE, "frame too large").await;
    }

    async fn on_message(&mut self, message: Message) -> Result<(), Gone> {
        match message {
            Message::Text(text) => self.on_text(text).await,
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

    async fn on_text(&mut self, frame_text: Utf8Bytes) -> Result<(), Gone> {
        let text = frame_text.as_str();
        if self.grant.is_none() && text.len() > MAX_FRAME_BYTES_BEFORE_AUTH {
            self.state.metrics.limit_hit(limit::FRAME_SIZE);
            let message = format!(
                "frame of {} bytes before `auth`: at most {MAX_FRAME_BYTES_BEFORE_AUTH} bytes \
                 until the token is accepted",
                text.len()
            );
            let _ = self.send_error(ErrorCode::TooLarge, &message, None).await;
            self.close(close_code::SIZE, "frame too large before auth")
                .await;
            return Err(Gone);
        }
        let max = self.state.config.max_frame_bytes;
        if text.len() > max {
            let message = format!(
                "frame of {} bytes is over the limit of {max} bytes",
                text.len()
            );
            self.state.metrics.limit_hit(limit::FRAME_SIZE);
            // A publish's `id` is read (the frame is within the transport's limit) so the client
            // can reject that publish at once instead of waiting for its ack to time out.
            return self
                .send_error(ErrorCode::TooLarge, &message, request_id(text))
                .await;
        }
        let frame = match decode_client(text) {
            Ok(frame) => frame,
            Err(e) => return self.send_error(e.code, &e.message, e.id).await,
        };
        let needs_grant = matches!(
            frame,
            ClientFrame::Subscribe { .. } | ClientFrame::Publish { .. } | ClientFrame::Presence(_)
        );
        if needs_grant && self.grant.is_none() {
            self.state
                .metrics
                .auth_failure(AuthFailure::Missing.reason());
            self.refuse("send an `auth` frame with a token before subscribing or publishing")
                .await;
            return Err(Gone);
        }
        match frame {
            ClientFrame::Auth { token } => self.authenticate(&token).await,
            ClientFrame::Subscribe { channels } => self.subscribe(&channels).await,
            ClientFrame::Unsubscribe { channels } => {
                let names: Vec<&str> = channels.iter().map(|c| c.channel.as_ref()).collect();
                self.state.broker.unsubscribe(self.member.id, &names);
                Ok(())
            }
            ClientFrame::Publish { id, .. } => self.publish(id, frame_text.clone()).await,
            ClientFrame::Presence(request) => self.presence(request).await,
            ClientFrame::Ping => self.send(Utf8Bytes::from(encode_pong())).await,
            ClientFrame::Pong => Ok(()),
        }
    }

    /// Writes what the broker queued so far (unless the connection is being closed as a slow
    /// consumer), so that a reply written next comes after it.
    async fn flush_queue(&mut self) -> Result<(), Gone> {
        while !self.member.kick.is_kicked() {
            match self.member.rx.try_recv() {
                Some(frame) if is_revoked(&self.revoked, &frame) => {}
                Some(frame) => {
                    if frame.position.is_some() {
                        self.state.metrics.delivered.inc();
                    }
                    self.send(frame.text).await?
                }
                None => break,
            }
        }
        Ok(())
    }

    /// An `auth` frame: the first one grants the connection its rights (or closes it), a later
    /// one refreshes the token (a refused refresh leaves the current token in force until it
    /// expires).
    async fn authenticate(&mut self, token: &str) -> Result<(), Gone> {
        if !self.state.auth.connections_need_token() {
            // Nothing to check, nothing to refresh.
            return self.send(encode_authed(None, None).into()).await;
        }
        let first = self.grant.is_none();
        let current = self.grant.as_ref().map(Grant::subject);
        let claims = self
            .state
            .auth
            .verify(token)
            .and_then(|claims| match current {
                // A refresh is for the same user (or, without `sub`, for no user).
                Some(sub) if claims.sub.as_deref() != sub => Err(AuthFailure::SubjectChanged),
                _ if auth::time_left(&claims).is_zero() => Err(AuthFailure::Expired),
                _ => Ok(claims),
            });
        let claims = match claims {
            Ok(claims) => claims,
            Err(failure) => {
                let e = self.state.refuse(&failure);
                if first {
                    self.refuse(&e.message).await;
                    return Err(Gone);
                }
                return self.send_error(e.code, &e.message, None).await;
            }
        };
        self.deadlines.set_auth(Some(auth::deadline(&claims)));
        let ttl_ms = auth::ttl_ms(&claims);
        let authed = encode_authed(claims.sub.as_deref(), Some(ttl_ms));
        let grant = Grant::Token(claims);
        // A refreshed token may allow fewer channels: those are left at once (before anything
        // awaits), and what is already queued for them is not sent.
        let lost: Vec<String> = self
            .state
            .broker
            .channels_of(self.member.id)
            .into_iter()
            .filter(|channel| !grant.may_subscribe(channel))
            .collect();
        if !lost.is_empty() {
            let names: Vec<&str> = lost.iter().map(String::as_str).collect();
            self.state.broker.unsubscribe(self.member.id, &names);
            self.revoked
                .extend(lost.iter().map(|c| Arc::<str>::from(c.as_str())));
        }
        if let Grant::Token(claims) = &grant {
            self.state
                .broker
                .set_scopes(self.member.id, broker::scopes(&claims.scopes));
        }
        let mut presence_ended = Vec::new();
        if !first {
            self.state.metrics.token_refreshes.inc();
            presence_ended = self.presence_after_refresh(&grant).await;
        }
        self.grant = Some(grant);
        self.send(authed.into()).await?;
        for channel in &presence_ended {
            self.send_presence_closed(channel, ErrorCode::Forbidden)
                .await?;
        }
        if !lost.is_empty() {
            for channel in &lost {
                self.state.metrics.forbid("subscribe");
                let message = format!(
                    "the refreshed token does not allow `{channel}`: the subscription has ended"
                );
                let frame = encode_channel_error(ErrorCode::Forbidden, &message, channel);
                self.send(frame.into()).await?;
            }
        }
        Ok(())
    }

    async fn subscribe(&mut self, channels: &[ChannelEntry<'_>]) -> Result<(), Gone> {
        let Some(grant) = self.grant.clone() else {
            return Err(Gone);
        };
        let mut requests = Vec::with_capacity(channels.len());
        for entry in channels {
            if crate::test_hooks::panics_on(&entry.channel) {
                panic!("test hook: a subscribe to `{}` panics", entry.channel);
            }
            match self.state.authorize_subscription(&grant, &entry.channel) {
                Ok(()) => {
                    self.revoked.remove(entry.channel.as_ref());
                }
                Err(e) if e.code == ErrorCode::Forbidden => {
                    let frame = encode_channel_error(e.code, &e.message, &entry.channel);
                    self.send(frame.into()).await?;
                    continue;
                }
                Err(e) => return self.send_error(e.code, &e.message, None).await,
            }
            let since = match &entry.since {
                None => broker::Since::Now,
                Some(position) => self.member.since(&position.epoch, position.seq),
            };
            requests.push(Request {
                channel: entry.channel.as_ref(),
                since,
            });
        }
        if requests.is_empty() {
            return Ok(());
        }
        let max = self.state.config.max_channels;
        // The broker queues the `subscribed` answer and the replay.
        match self
            .state
            .broker
            .subscribe(self.member.id, &requests, max)
            .await
        {
            Ok(answer) => {
                for entry in &answer {
                    self.state.metrics.resumed(entry.recovered);
                }
                self.flush_queue().await
            }
            Err(SubscribeError::TooManyChannels(e)) => {
                self.state.metrics.limit_hit(limit::MAX_CHANNELS);
                self.send_error(ErrorCode::TooManyChannels, &e.to_string(), None)
                    .await
            }
            // The client resubscribes after reconnecting.
            Err(SubscribeError::Unavailable(e)) => self.unavailable(&e.to_string()).await,
        }
    }

    /// A `publish` frame: counted against the connection's rate, then handed to its publish task
    /// (the loop goes on serving meanwhile; [`Connection::answer_publish`] answers it).
    async fn publish(&mut self, id: u64, frame: Utf8Bytes) -> Result<(), Gone> {
        let Some(grant) = self.grant.clone() else {
            return Err(Gone);
        };
        if !self.publishes.take() {
            self.state.metrics.limit_hit(limit::PUBLISH_RATE);
            let message = format!(
                "over {} publishes per second on this connection (--publish-rate): retry later",
                self.state.config.publish_rate
            );
            return self
                .send_error(ErrorCode::RateLimited, &message, Some(id))
                .await;
        }
        let (state, member) = (&self.state, self.member.id);
        let publisher = self
            .publisher
            .get_or_insert_with(|| Publisher::start(Arc::clone(state), member));
        if publisher.submit(frame, grant).await {
            Ok(())
        } else {
            Err(Gone)
        }
    }

    /// Answers a publish the publish task is done with.
    async fn answer_publish(&mut self, outcome: Outcome) -> Result<(), Gone> {
        match outcome {
            Outcome::Published { id, seq } => {
                // Send what is queued first, so the publisher sees its own event before the ack.
                self.flush_queue().await?;
                self.send(encode_ack(id, seq).into()).await
            }
            // Not answered with its id: the client keeps it and resends it, with its key, after
            // reconnecting (to another node, or here once Redis is back); the key makes it once.
            Outcome::Refused { error, .. } if error.code == ErrorCode::Unavailable => {
                self.unavailable(&error.message).await
            }
            // The same, said distinctly: it may have been published (the error has no id, so the
            // client does not fail the publish; its resend with the key is answered with the
            // first seq).
            Outcome::Refused { error, .. } if error.code == ErrorCode::OutcomeUnknown => {
                let _ = self
                    .send_error(ErrorCode::OutcomeUnknown, &error.message, None)
                    .await;
                self.close(close_code::AGAIN, UNAVAILABLE_REASON).await;
                Err(Gone)
            }
            Outcome::Refused { id, error } => {
                self.send_error(error.code, &error.message, Some(id)).await
            }
        }
    }
}
