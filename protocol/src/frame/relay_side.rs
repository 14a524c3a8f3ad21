//! The relay's side of protocol v1, with serde: reading the frames a client sends, writing the
//! frames the relay sends. Compiled with the `serde` feature (the relay turns it on) and for the
//! crate's tests, where each frame is checked against the client's hand-written side.

use super::{
    ChannelEntry, ClientFrame, DateInput, ErrorCode, FrameError, Publish, PROTOCOL_VERSION,
};
use alloc::borrow::Cow;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

impl<'a> DateInput<'a> {
    /// Reads a raw JSON `date`; anything but a number or a string is a `bad_event`.
    pub fn read(raw: &'a RawValue) -> Result<DateInput<'a>, FrameError> {
        let text = raw.get();
        let read = if text.starts_with('"') {
            serde_json::from_str::<String>(text).map(|s| DateInput::Text(Cow::Owned(s)))
        } else {
            serde_json::from_str::<f64>(text).map(DateInput::Millis)
        };
        read.map_err(|_| {
            FrameError::new(
                ErrorCode::BadEvent,
                format!(
                    "`date` must be a number of milliseconds or an RFC 3339 string, not `{}`",
                    super::excerpt(text)
                ),
            )
        })
    }
}

/// Every field a client frame may carry; which ones are required depends on `op`.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    op: Cow<'a, str>,
    #[serde(default)]
    id: Option<u64>,
    #[serde(borrow, default)]
    key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    channels: Option<Vec<ChannelEntry<'a>>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
    #[serde(borrow, default)]
    date: Option<&'a RawValue>,
    #[serde(borrow, default)]
    meta: Option<&'a RawValue>,
    #[serde(borrow, default)]
    scopes: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default)]
    token: Option<Cow<'a, str>>,
}

fn envelope(text: &str) -> Result<Envelope<'_>, FrameError> {
    serde_json::from_str(text).map_err(|e| FrameError::not_valid(&describe(text, e)))
}

/// The decoding error, with the path of the offending field when the `field-paths` feature is on.
#[cfg(feature = "field-paths")]
fn describe(text: &str, e: serde_json::Error) -> String {
    let mut de = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, Envelope<'_>>(&mut de) {
        Err(pe) if pe.path().iter().next().is_some() => format!("`{}`: {}", pe.path(), pe.inner()),
        _ => e.to_string(),
    }
}

#[cfg(not(feature = "field-paths"))]
fn describe(_text: &str, e: serde_json::Error) -> String {
    e.to_string()
}

fn required<T>(value: Option<T>, op: &str, field: &str) -> Result<T, FrameError> {
    value.ok_or_else(|| FrameError::bad(format!("`{op}` frame without `{field}`")))
}

/// Reads a frame sent by a client.
pub fn decode_client(text: &str) -> Result<ClientFrame<'_>, FrameError> {
    let e = envelope(text).map_err(|err| FrameError {
        id: request_id(text),
        ..err
    })?;
    let op = e.op.as_ref();
    let frame = match op {
        "subscribe" => ClientFrame::Subscribe {
            channels: required(e.channels, op, "channels")?,
        },
        "unsubscribe" => ClientFrame::Unsubscribe {
            channels: required(e.channels, op, "channels")?,
        },
        "publish" => {
            let id = required(e.id, op, "id")?;
            let with_id = |err: FrameError| FrameError {
                id: Some(id),
                ..err
            };
            ClientFrame::Publish {
                id,
                event: Publish {
                    key: e.key,
                    channel: required(e.channel, op, "channel").map_err(with_id)?,
                    kind: required(e.kind, op, "type").map_err(with_id)?,
                    payload: e.payload,
                    date: e.date.map(DateInput::read).transpose().map_err(with_id)?,
                    meta: e.meta,
                    scopes: e.scopes,
                },
            }
        }
        "auth" => ClientFrame::Auth {
            token: required(e.token, op, "token")?,
        },
        "ping" => ClientFrame::Ping,
        "pong" => ClientFrame::Pong,
        other => return Err(FrameError::bad(format!("unknown op `{other}`"))),
    };
    Ok(frame)
}

/// The `id` of a frame that failed to decode (or was refused unread, as too large), when it has a
/// readable one: a publish that is malformed elsewhere can still be answered by id.
pub fn request_id(text: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<u64>,
    }
    serde_json::from_str::<IdOnly>(text).ok().and_then(|f| f.id)
}

#[derive(Serialize)]
struct ChannelsOut<'a> {
    op: &'static str,
    channels: &'a [ChannelEntry<'a>],
}

#[derive(Serialize)]
struct EventOut<'a> {
    op: &'static str,
    channel: &'a str,
    seq: u64,
    #[serde(rename = "type")]
    kind: &'a str,
    payload: &'a RawValue,
    date: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct SkipOut<'a> {
    op: &'static str,
    channel: &'a str,
    seq: u64,
}

#[derive(Serialize)]
struct HelloOut<'a> {
    op: &'static str,
    version: u32,
    epoch: &'a str,
    ping_ms: u64,
}

#[derive(Serialize)]
struct AckOut {
    op: &'static str,
    id: u64,
    seq: u64,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    op: &'static str,
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
}

#[derive(Serialize)]
struct AuthedOut<'a> {
    op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl_ms: Option<u64>,
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs (strings, numbers, already-valid raw JSON) cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

pub fn encode_subscribed(channels: &[ChannelEntry<'_>]) -> String {
    to_json(&ChannelsOut {
        op: "subscribed",
        channels,
    })
}

pub fn encode_event(
    channel: &str,
    seq: u64,
    kind: &str,
    payload: &RawValue,
    date: f64,
    meta: Option<&RawValue>,
) -> String {
    to_json(&EventOut {
        op: "event",
        channel,
        seq,
        kind,
        payload,
        date,
        meta,
    })
}

pub fn encode_skip(channel: &str, seq: u64) -> String {
    to_json(&SkipOut {
        op: "skip",
        channel,
        seq,
    })
}

pub fn encode_hello(epoch: &str, ping_ms: u64) -> String {
    to_json(&HelloOut {
        op: "hello",
        version: PROTOCOL_VERSION,
        epoch,
        ping_ms,
    })
}

pub fn encode_ack(id: u64, seq: u64) -> String {
    to_json(&AckOut { op: "ack", id, seq })
}

pub fn encode_error(code: ErrorCode, message: &str, id: Option<u64>) -> String {
    to_json(&ErrorOut {
        op: "error",
        code: code.as_str(),
        message,
        id,
        channel: None,
    })
}

/// An `error` frame about one channel of a `subscribe` (e.g. `forbidden`).
pub fn encode_channel_error(code: ErrorCode, message: &str, channel: &str) -> String {
    to_json(&ErrorOut {
        op: "error",
        code: code.as_str(),
        message,
        id: None,
        channel: Some(channel),
    })
}

pub fn encode_authed(sub: Option<&str>, ttl_ms: Option<u64>) -> String {
    to_json(&AuthedOut {
        op: "authed",
        sub,
        ttl_ms,
    })
}
