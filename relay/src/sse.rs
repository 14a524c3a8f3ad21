//! `GET /sse`: protocol v1's relay → client frames over Server-Sent Events, for a fixed set of
//! channels given in the query (see *Server-Sent Events transport* in `docs/PROTOCOL.md`).
//!
//! The handler checks the query, registers the connection with the broker and subscribes it (the
//! broker queues the `subscribed` answer and the replay atomically, as for a WebSocket `subscribe`),
//! then spawns a task that owns the connection and writes the stream:
//!
//! ```text
//! retry: 1000
//!
//! data: {"op":"hello",...}
//!
//! data: {"op":"subscribed","channels":[...]}
//!
//! id: <epoch>:<seq>,<seq>,...
//! data: {"op":"event",...}
//!
//! : keepalive
//! data: {"op":"ping"}
//!
//! ```
//!
//! Every `event` and `skip` frame carries as its `id` the connection's position vector over its
//! channels, in the order of the query. A channel starts at the seq of its `subscribed` entry, or,
//! for an entry that is recovered, at its `since` seq; each `event` or `skip` of the channel moves
//! it to that frame's seq.
//!
//! With authentication on, `EventSource` cannot send a header and a token in the URL would be
//! logged: the client first trades its token for a single-use ticket at `POST /sse/ticket` (see
//! [`crate::auth::ticket`]) and opens `GET /sse?ticket=…`. The stream then carries `authed` after
//! `hello`, a `forbidden` error frame for each channel the token does not allow (the others are
//! subscribed), and ends with an `unauthorized` error frame when the token expires: the client
//! reopens it with a new ticket and `since`, losing nothing.
//!
//! The task ends, unregistering the connection, when the client goes away (the response body is
//! dropped), when one write waits longer than two ping intervals, when the connection is closed as
//! a slow consumer (after an `error` frame), when its token expires, or when the relay shuts down.

use crate::auth::{self, bearer_credential, ticket::TICKET_TTL, Grant};
use crate::broker::kick::{farewell, Transport};
use crate::broker::{self, Member, Next, Outbound, Request, Scopes, Since, SubscribeError};
use crate::error::frame_error_response;
use crate::limits::{write_timeout, write_within, IpSlot, WriteFailed};
use crate::metrics::limit;
use crate::publish::check_subscription;
use crate::query::{bad_query, Params};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use live_protocol::frame::{
    encode_authed, encode_channel_error, encode_error, encode_hello, encode_ping, excerpt,
    ErrorCode, FrameError,
};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tracing::debug;

/// The reconnect delay announced to plain `EventSource` clients (`retry:`), in milliseconds.
pub const RETRY_MS: u64 = 1000;

/// The header a reconnecting `EventSource` sends with the last `id` it received.
pub const LAST_EVENT_ID: &str = "last-event-id";

/// Frames written at most in one chunk of the response body.
const BATCH_FRAMES: usize = 256;
/// Bytes after which a chunk is sent without waiting for more frames.
const BATCH_BYTES: usize = 64 * 1024;

#[derive(Serialize)]
struct Ticket {
    ticket: String,
    ttl_ms: u64,
}

/// `POST /sse/ticket` with `Authorization: Bearer <token>`: `200 {"ticket", "ttl_ms"}`, a ticket
/// that opens one stream within `ttl_ms`; `401` when the token is refused. A relay without
/// authentication answers the ticket `open`, which `GET /sse` does not need.
pub async fn ticket(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let ttl_ms = u64::try_from(TICKET_TTL.as_millis()).unwrap_or(u64::MAX);
    if !state.auth.connections_need_token() {
        let ticket = "open".to_owned();
        return Json(Ticket { ticket, ttl_ms }).into_response();
    }
    let verified = bearer_credential(&headers)
        .and_then(|token| state.auth.verify(token).map(|claims| (token, claims)));
    let (token, claims) = match verified {
        Ok(verified) => verified,
        Err(failure) => return frame_error_response(&state.refuse(&failure)),
    };
    match state.issue_ticket(token, &claims).await {
        Ok(ticket) => Json(Ticket { ticket, ttl_ms }).into_response(),
        Err(e) => frame_error_response(&e),
    }
}

/// `GET /sse?channels=a,b&since=E:41,7&scopes=...` (or `&ticket=…` with authentication on).
pub async fn stream(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    State(state): State<Arc<AppState>>,
) -> Response {
    let opened = match state.admit(&headers, peer.ip()) {
        Ok(slot) => open(&state, query.as_deref(), &headers, slot).await,
        Err(e) => Err(e),
    };
    match opened {
        Ok(response) => response,
        Err(e) => frame_error_response(&e),
    }
}

/// Checks the request, registers and subscribes the connection, and starts its stream.
async fn open(
    state: &Arc<AppState>,
    query: Option<&str>,
    headers: &HeaderMap,
    slot: IpSlot,
) -> Result<Response, FrameError> {
    let params = Params::parse(query);
    let channels = read_channels(state, &params)?;
    let Rights {
        grant,
        scopes,
        expires,
    } = rights(state, &params).await?;
    let (preamble, allowed) = preamble(state, &grant, &channels);
    let since = read_since(&params, headers, channels.len())?;
    let member = state
        .broker
        .connect(state.config.outbound_queue, scopes)
        .map_err(|e| FrameError::new(ErrorCode::Unavailable, e.to_string()))?;
    let positions = subscribe(state, &member, &channels, &allowed, since.as_ref()).await?;
    let index = channels
        .iter()
        .enumerate()
        .map(|(i, channel)| (channel.clone(), i))
        .collect();
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let connection = Connection {
        state: Arc::clone(state),
        member,
        index,
        positions,
        tx,
        write_timeout: write_timeout(state.config.ping_interval()),
        preamble,
        expires,
        _slot: slot,
    };
    Ok(start(connection, rx, channels.len()))
}

/// What an SSE connection may do, and until when.
struct Rights {
    grant: Grant,
    scopes: Scopes,
    /// When the token expires (authentication on).
    expires: Option<Instant>,
}

/// The connection's rights: a ticket's token with authentication on (the ticket is used up), the
/// query's `scopes` and everything else without.
async fn rights(state: &AppState, params: &Params<'_>) -> Result<Rights, FrameError> {
    if !state.auth.connections_need_token() {
        let scopes = params.scopes()?;
        return Ok(Rights {
            grant: Grant::Open,
            scopes,
            expires: None,
        });
    }
    let ticket = params.text("ticket")?.unwrap_or_default();
    let claims = state.redeem_ticket(&ticket).await?;
    Ok(Rights {
        scopes: broker::scopes(&claims.scopes),
        expires: Some(auth::deadline(&claims)),
        grant: Grant::Token(claims),
    })
}

/// The frames written right after `hello` (`authed`, and a `forbidden` error per channel the
/// grant does not allow), and whether each channel is allowed.
fn preamble(state: &AppState, grant: &Grant, channels: &[String]) -> (String, Vec<bool>) {
    let mut preamble = String::new();
    if let Grant::Token(claims) = grant {
        let ttl_ms = auth::ttl_ms(claims);
        push_data(
            &mut preamble,
            &encode_authed(claims.sub.as_deref(), Some(ttl_ms)),
        );
    }
    let allowed = channels
        .iter()
        .map(
            |channel| match state.authorize_subscription(grant, channel) {
                Ok(()) => true,
                Err(e) => {
                    push_data(
                        &mut preamble,
                        &encode_channel_error(e.code, &e.message, channel),
                    );
                    false
                }
            },
        )
        .collect();
    (preamble, allowed)
}

/// Where the client is: the query's `since`, else the `Last-Event-ID` header a reconnecting
/// `EventSource` sends, else nowhere (live events only).
fn read_since(
    params: &Params<'_>,
    headers: &HeaderMap,
    channels: usize,
) -> Result<Option<Positions>, FrameError> {
    if let Some(text) = params.text("since")?.filter(|s| !s.is_empty()) {
        let since = parse_since(&text, channels).map_err(|e| bad_query(format!("`since` {e}")))?;
        return Ok(Some(since));
    }
    let Some(value) = headers.get(LAST_EVENT_ID) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| bad_query("`Last-Event-ID` is not ASCII"))?
        .trim();
    if text.is_empty() {
        return Ok(None);
    }
    parse_since(text, channels)
        .map(Some)
        .map_err(|e| bad_query(format!("`Last-Event-ID` {e}")))
}

/// Subscribes the allowed channels (from `since`, where given) and answers where each channel of
/// the query starts: the `since` of a recovered entry (its replay follows), else the channel's
/// seq at subscribing, 0 for a refused one. One pass over the channels (by index: the query's
/// order is the position vector's). `answer` is empty when the replay did not fit the queue: the
/// connection is then closed as a slow consumer before any event.
async fn subscribe(
    state: &AppState,
    member: &Member,
    channels: &[String],
    allowed: &[bool],
    since: Option<&Positions>,
) -> Result<Vec<u64>, FrameError> {
    let since_of = |i: usize| match since.and_then(|p| p.seqs[i].map(|seq| (&p.epoch, seq))) {
        Some((epoch, seq)) => member.since(epoch, seq),
        None => Since::Now,
    };
    let requests: Vec<Request<'_>> = (channels.iter().enumerate())
        .filter(|(i, _)| allowed[*i])
        .map(|(i, channel)| Request {
            channel,
            since: since_of(i),
        })
        .collect();
    let answer = state
        .broker
        .subscribe(member.id, &requests, state.config.max_channels)
        .await
        .map_err(|e| match e {
            SubscribeError::TooManyChannels(e) => {
                state.metrics.limit_hit(limit::MAX_CHANNELS);
                FrameError::new(ErrorCode::TooManyChannels, e.to_string())
            }
            SubscribeError::Unavailable(e) => {
                FrameError::new(ErrorCode::Unavailable, e.to_string())
            }
        })?;
    let mut answered: HashMap<&str, (u64, Option<bool>)> = HashMap::with_capacity(answer.len());
    for entry in &answer {
        state.metrics.resumed(entry.recovered);
        answered.insert(entry.channel, (entry.seq, entry.recovered));
    }
    let positions = channels
        .iter()
        .enumerate()
        .map(|(i, channel)| match answered.get(channel.as_str()) {
            None => 0,
            Some(&(seq, recovered)) => match since_of(i) {
                Since::Seq(seen) if recovered == Some(true) && allowed[i] => seen,
                _ => seq,
            },
        })
        .collect();
    Ok(positions)
}

/// Spawns the task that writes `connection`'s stream, and answers with the stream (`rx`, the
/// chunks the connection sends).
fn start(connection: Connection, mut rx: mpsc::Receiver<Bytes>, channels: usize) -> Response {
    let id = connection.member.id;
    debug!(conn = id, channels, "SSE connection opened");
    tokio::spawn(async move {
        connection.serve().await;
        debug!(conn = id, "SSE connection closed");
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|chunk| chunk.map(Ok::<Bytes, Infallible>))
    }));
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            axum::http::HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        ),
    ];
    (headers, body).into_response()
}

/// The `channels` parameter: required, at most `--max-channels`, each a channel one may subscribe
/// to, none twice.
fn read_channels(state: &AppState, params: &Params<'_>) -> Result<Vec<String>, FrameError> {
    let channels = params.list("channels")?.ok_or_else(|| {
        bad_query(
            "`channels` is required: the channels to listen to, comma-joined, each URL-encoded",
        )
    })?;
    if channels.is_empty() {
        return Err(FrameError::new(
            ErrorCode::BadChannel,
            "`channels` is empty: give at least one channel",
        ));
    }
    let max = state.config.max_channels;
    if channels.len() > max {
        state.metrics.limit_hit(limit::MAX_CHANNELS);
        return Err(FrameError::new(
            ErrorCode::TooManyChannels,
            format!(
                "`channels` lists {} channels, over the limit of {max} channels per connection",
                channels.len()
            ),
        ));
    }
    let limits = state.limits();
    let mut seen = HashSet::with_capacity(channels.len());
    for (i, channel) in channels.iter().enumerate() {
        check_subscription(channel, &limits)
            .map_err(|e| FrameError::new(e.code, format!("`channels`: item {i}: {}", e.message)))?;
        if !seen.insert(channel.as_str()) {
            return Err(FrameError::new(
                ErrorCode::BadChannel,
                format!("`channels`: \"{}\" is listed twice", excerpt(channel)),
            ));
        }
    }
    Ok(channels)
}

/// A position vector, as in `since` and in the `id` of the frames.
#[derive(Debug, PartialEq, Eq)]
struct Positions {
    epoch: String,
    /// One per channel; `None` for an empty entry (no position).
    seqs: Vec<Option<u64>>,
}

/// Reads `<epoch>:<seq>,<seq>,...` with one (possibly empty) entry per channel. The error
/// completes "`since` …".
fn parse_since(text: &str, channels: usize) -> Result<Positions, String> {
    let Some((epoch, list)) = text.split_once(':') else {
        return Err(format!(
            "\"{}\" is not `<epoch>:<seq>,<seq>,...` (no `:`)",
            excerpt(text)
        ));
    };
    if epoch.is_empty() {
        return Err(format!("\"{}\" has an empty epoch", excerpt(text)));
    }
    let entries: Vec<&str> = list.split(',').collect();
    if entries.len() != channels {
        return Err(format!(
            "has {} positions for {channels} channels (one per channel, in order; empty for none)",
            entries.len()
        ));
    }
    let seqs = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            if entry.is_empty() {
                return Ok(None);
            }
            if !entry.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "position {i} (\"{}\") is not a seq",
                    excerpt(entry)
                ));
            }
            entry
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("position {i} (\"{}\") is too large", excerpt(entry)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Positions {
        epoch: epoch.to_owned(),
        seqs,
    })
}

/// Appends one SSE event carrying `frame` (one `data:` line per line of it, though frames are
/// compact JSON without newlines).
fn push_data(buf: &mut String, frame: &str) {
    if frame.contains(['\n', '\r']) {
        for line in frame.split(['\n', '\r']).filter(|l| !l.is_empty()) {
            buf.push_str("data: ");
            buf.push_str(line);
            buf.push('\n');
        }
    } else {
        buf.push_str("data: ");
        buf.push_str(frame);
        buf.push('\n');
    }
    buf.push('\n');
}

/// The stream has no reader any more, or a write took too long.
struct Gone;

struct Connection {
    state: Arc<AppState>,
    member: Member,
    /// Each channel's place in the query (and in the position vector).
    index: HashMap<String, usize>,
    /// The seq each channel is at, as sent to the client.
    positions: Vec<u64>,
    /// Chunks of the response body.
    tx: mpsc::Sender<Bytes>,
    write_timeout: Duration,
    /// Frames written right after `hello`: `authed`, and a `forbidden` error per channel refused.
    preamble: String,
    /// When the token expires (authentication on).
    expires: Option<Instant>,
    /// Counts the connection against its IP address's limit while it lives.
    _slot: IpSlot,
}

impl Connection {
    async fn serve(mut self) {
        let mut buf = format!("retry: {RETRY_MS}\n\n");
        push_data(
            &mut buf,
            &encode_hello(&self.member.epoch, self.state.config.ping_ms),
        );
        buf.push_str(&std::mem::take(&mut self.preamble));
        // The `subscribed` answer and the replay are queued already.
        self.drain(&mut buf);
        if self.send(buf).await.is_err() {
            return;
        }
        let ping_every = self.state.config.ping_interval();
        let mut ticker = interval_at(Instant::now() + ping_every, ping_every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut shutdown = self.state.shutdown.clone();
        let tx = self.tx.clone();

        let expires = self.expires;
        let expiry = async move {
            match expires {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        // Made once, not on every turn of the loop (as the WebSocket loop does).
        let shutting_down = shutdown.changed();
        let stream_closed = tx.closed();
        tokio::pin!(expiry, shutting_down, stream_closed);

        loop {
            // A kick comes before anything else that is ready (as on WebSocket).
            if self.member.kick.is_kicked() {
                self.kicked().await;
                return;
            }
            let step = tokio::select! {
                biased;
                _ = &mut expiry => {
                    self.state.metrics.token_expiries.inc();
                    let mut buf = String::new();
                    let message = "the token has expired: get a new ticket and reopen the stream with `since`";
                    push_data(&mut buf, &encode_error(ErrorCode::Unauthorized, message, None));
                    let _ = self.send(buf).await;
                    return;
                }
                _ = &mut shutting_down => return,
                _ = &mut stream_closed => return,
                next = self.member.next() => match next {
                    Next::Frame(frame) => {
                        let mut buf = String::new();
                        self.write(&mut buf, frame);
                        self.drain(&mut buf);
                        self.send(buf).await
                    }
                    Next::Kicked => {
                        self.kicked().await;
                        return;
                    }
                    Next::Ended => return,
                },
                _ = ticker.tick() => {
                    let mut buf = String::from(": keepalive\n");
                    push_data(&mut buf, &encode_ping());
                    self.send(buf).await
                }
            };
            if step.is_err() {
                return;
            }
        }
    }

    /// Ends a stream the broker ended, telling the client why ([`farewell`], what WebSocket says
    /// too); a new epoch or a cut end it without a word (the client reopens with its position, and
    /// is told to resync or resumes).
    async fn kicked(&mut self) {
        let (conn, queue) = (self.member.id, self.state.config.outbound_queue);
        let told = farewell(
            self.member.kick.reason(),
            Transport::Sse,
            conn,
            queue,
            &self.state.metrics,
        );
        let mut buf = String::new();
        if let Some(frame) = told {
            push_data(&mut buf, &frame);
        }
        let _ = self.send(buf).await;
    }

    /// Appends what the broker has queued, up to a batch (nothing once the connection is being
    /// closed as a slow consumer).
    fn drain(&mut self, buf: &mut String) {
        for _ in 0..BATCH_FRAMES {
            if buf.len() >= BATCH_BYTES || self.member.kick.is_kicked() {
                return;
            }
            match self.member.rx.try_recv() {
                Some(frame) => self.write(buf, frame),
                None => return,
            }
        }
    }

    /// Appends one frame; an `event` or a `skip` moves its channel's position and carries the
    /// position vector as its `id`.
    fn write(&mut self, buf: &mut String, frame: Outbound) {
        if let Some(position) = &frame.position {
            self.state.metrics.delivered.inc();
            if let Some(&i) = self.index.get(&*position.channel) {
                self.positions[i] = position.seq;
                buf.push_str("id: ");
                buf.push_str(&self.member.epoch);
                buf.push(':');
                for (n, position) in self.positions.iter().enumerate() {
                    if n > 0 {
                        buf.push(',');
                    }
                    let _ = write!(buf, "{position}");
                }
                buf.push('\n');
            }
        }
        push_data(buf, frame.text.as_str());
    }

    /// Sends `chunk` within the write timeout ([`write_within`], as WebSocket writes: a timed-out
    /// write is counted).
    async fn send(&mut self, chunk: String) -> Result<(), Gone> {
        let write = self.tx.send(Bytes::from(chunk));
        let (metrics, conn) = (&self.state.metrics, Some(self.member.id));
        match write_within(metrics, conn, self.write_timeout, write).await {
            Ok(()) => Ok(()),
            Err(WriteFailed) => Err(Gone),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_has_one_entry_per_channel() {
        assert_eq!(
            parse_since("e1:41,,7", 3),
            Ok(Positions {
                epoch: "e1".into(),
                seqs: vec![Some(41), None, Some(7)]
            })
        );
        assert_eq!(
            parse_since("e1:", 1),
            Ok(Positions {
                epoch: "e1".into(),
                seqs: vec![None]
            })
        );
        assert!(parse_since("e1:1,2", 3)
            .unwrap_err()
            .contains("2 positions for 3"));
        assert!(parse_since("e1", 1).unwrap_err().contains("no `:`"));
        assert!(parse_since(":1", 1).unwrap_err().contains("empty epoch"));
        assert!(parse_since("e:x", 1).unwrap_err().contains("not a seq"));
        assert!(parse_since("e:+1", 1).unwrap_err().contains("not a seq"));
        assert!(parse_since("e:99999999999999999999", 1)
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn frames_become_data_lines() {
        let mut buf = String::new();
        push_data(&mut buf, r#"{"op":"ping"}"#);
        assert_eq!(buf, "data: {\"op\":\"ping\"}\n\n");
        buf.clear();
        push_data(&mut buf, "{\"a\":\n1}\r\n");
        assert_eq!(buf, "data: {\"a\":\ndata: 1}\n\n");
    }
}
