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
    #[serde(borrow, default)]
    action: Option<Cow<'a, str>>,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(borrow, default)]
    user: Option<Cow<'a, str>>,
    #[serde(default)]
    info: Option<serde_json::Value>,
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
        "presence" => ClientFrame::Presence(presence_request(e)?),
        other => return Err(FrameError::bad(format!("unknown op `{other}`"))),
    };
    Ok(frame)
}

/// What a client's `presence` frame asks (`docs/PROTOCOL.md`, *Presence*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceVerb {
    /// Enter the channel's presence as `key` (or resume it) and watch it.
    Join,
    /// Replace this connection's `data` on the channel.
    Update,
    /// See the channel's presence without being in it.
    Watch,
    /// Leave (announced at once) and stop watching.
    Leave,
}

impl PresenceVerb {
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceVerb::Join => "join",
            PresenceVerb::Update => "update",
            PresenceVerb::Watch => "watch",
            PresenceVerb::Leave => "leave",
        }
    }
}

/// A client's `presence` frame, checked: `key` is of the protocol's form (for `join`), `data` and
/// `info` are objects when given, `update` has `data`. What the relay allows (the channel, the
/// limits, who the user is) is decided by the relay.
#[derive(Debug, Clone)]
pub struct PresenceRequest<'a> {
    pub id: u64,
    pub verb: PresenceVerb,
    pub channel: Cow<'a, str>,
    /// `join` only (ignored otherwise).
    pub key: Option<Cow<'a, str>>,
    /// An object (`join`, `update`).
    pub data: Option<serde_json::Value>,
    /// Open mode only (the relay ignores them with authentication on).
    pub user: Option<Cow<'a, str>>,
    /// An object, open mode only.
    pub info: Option<serde_json::Value>,
}

/// Whether `key` is a presence key: 16 to 64 of `[0-9A-Za-z_-]`.
pub fn is_presence_key(key: &str) -> bool {
    (16..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn presence_request(e: Envelope<'_>) -> Result<PresenceRequest<'_>, FrameError> {
    let op = "presence";
    let id = required(e.id, op, "id")?;
    let with_id = |err: FrameError| FrameError {
        id: Some(id),
        ..err
    };
    let action = required(e.action, op, "action").map_err(with_id)?;
    let verb = match action.as_ref() {
        "join" => PresenceVerb::Join,
        "update" => PresenceVerb::Update,
        "watch" => PresenceVerb::Watch,
        "leave" => PresenceVerb::Leave,
        other => {
            return Err(with_id(FrameError::bad(format!(
                "unknown presence `action` `{}` (join, update, watch or leave)",
                super::excerpt(other)
            ))))
        }
    };
    let channel = required(e.channel, op, "channel").map_err(with_id)?;
    let key = match verb {
        PresenceVerb::Join => {
            let key = required(e.key, op, "key").map_err(with_id)?;
            if !is_presence_key(&key) {
                return Err(with_id(FrameError::bad(format!(
                    "presence `key` `{}` must be 16 to 64 of `0-9 A-Z a-z _ -`",
                    super::excerpt(&key)
                ))));
            }
            Some(key)
        }
        _ => None,
    };
    for (name, value) in [("data", &e.data), ("info", &e.info)] {
        if value.as_ref().is_some_and(|v| !v.is_object()) {
            return Err(with_id(FrameError::bad(format!(
                "presence `{name}` must be an object"
            ))));
        }
    }
    if verb == PresenceVerb::Update && e.data.is_none() {
        return Err(with_id(FrameError::bad(
            "presence `update` without `data`".to_owned(),
        )));
    }
    Ok(PresenceRequest {
        id,
        verb,
        channel,
        key,
        data: e.data,
        user: e.user,
        info: e.info,
    })
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
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    features: &'a [&'a str],
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
    encode_hello_with(epoch, ping_ms, &[])
}

/// `hello` offering `features` beyond protocol v1's base (`"presence"`); none: no `features`
/// field, as an older relay writes it.
pub fn encode_hello_with(epoch: &str, ping_ms: u64, features: &[&str]) -> String {
    to_json(&HelloOut {
        op: "hello",
        version: PROTOCOL_VERSION,
        epoch,
        ping_ms,
        features,
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

/// One member of a channel's presence, as the relay sends it (`M` in `docs/PROTOCOL.md`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PresenceMember<'a> {
    pub key: &'a str,
    pub user: &'a str,
    /// An object, or null.
    pub info: &'a serde_json::Value,
    /// An object.
    pub data: &'a serde_json::Value,
    /// When it joined, in milliseconds since the epoch.
    pub since: u64,
}

#[derive(Serialize)]
struct PresenceOut<'a> {
    op: &'static str,
    channel: &'a str,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    members: Option<&'a [PresenceMember<'a>]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    member: Option<&'a PresenceMember<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
}

impl<'a> PresenceOut<'a> {
    fn new(channel: &'a str, action: &'static str) -> Self {
        PresenceOut {
            op: "presence",
            channel,
            action,
            id: None,
            version: None,
            members: None,
            member: None,
            key: None,
            user: None,
        }
    }
}

/// A presence `sync`: the whole set at `version`, answering the `join` / `watch` `id`.
pub fn encode_presence_sync(
    channel: &str,
    id: u64,
    version: u64,
    members: &[PresenceMember<'_>],
) -> String {
    to_json(&PresenceOut {
        id: Some(id),
        version: Some(version),
        members: Some(members),
        ..PresenceOut::new(channel, "sync")
    })
}

/// A presence `join` diff: `member` entered the set.
pub fn encode_presence_join(channel: &str, version: u64, member: &PresenceMember<'_>) -> String {
    to_json(&PresenceOut {
        version: Some(version),
        member: Some(member),
        ..PresenceOut::new(channel, "join")
    })
}

/// A presence `update` diff: `member` changed its `data`.
pub fn encode_presence_update(channel: &str, version: u64, member: &PresenceMember<'_>) -> String {
    to_json(&PresenceOut {
        version: Some(version),
        member: Some(member),
        ..PresenceOut::new(channel, "update")
    })
}

/// A presence `leave` diff: the member `key` (of `user`) left.
pub fn encode_presence_leave(channel: &str, version: u64, key: &str, user: &str) -> String {
    to_json(&PresenceOut {
        version: Some(version),
        key: Some(key),
        user: Some(user),
        ..PresenceOut::new(channel, "leave")
    })
}

/// A presence `stats` frame: the counts of a full set, instead of its diffs.
pub fn encode_presence_stats(channel: &str, members: usize, users: usize) -> String {
    #[derive(Serialize)]
    struct StatsOut<'a> {
        op: &'static str,
        channel: &'a str,
        action: &'static str,
        members: usize,
        users: usize,
    }
    to_json(&StatsOut {
        op: "presence",
        channel,
        action: "stats",
        members,
        users,
    })
}

/// A presence `closed` frame: the relay ended this connection's membership or watch of `channel`
/// (`code`: why; a refused `join` / `watch` also has its `error` frame).
pub fn encode_presence_closed(channel: &str, code: ErrorCode) -> String {
    #[derive(Serialize)]
    struct ClosedOut<'a> {
        op: &'static str,
        channel: &'a str,
        action: &'static str,
        code: &'static str,
    }
    to_json(&ClosedOut {
        op: "presence",
        channel,
        action: "closed",
        code: code.as_str(),
    })
}

#[cfg(test)]
mod presence_tests {
    use super::*;
    use crate::frame::ServerFrame;
    use serde_json::{json, Value};

    fn presence(text: &str) -> Result<PresenceRequest<'_>, FrameError> {
        match decode_client(text)? {
            ClientFrame::Presence(request) => Ok(request),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn a_join_is_read_with_its_fields() {
        let text = r#"{"op":"presence","id":7,"action":"join","channel":"resources/posts","key":"9f2c4e0a1b7d3c5e","data":{"id":3},"user":"u","info":{"name":"A"}}"#;
        let r = presence(text).expect("a join");
        assert_eq!(
            (r.id, r.verb, r.channel.as_ref()),
            (7, PresenceVerb::Join, "resources/posts")
        );
        assert_eq!(r.key.as_deref(), Some("9f2c4e0a1b7d3c5e"));
        assert_eq!(r.data, Some(json!({"id": 3})));
        assert_eq!(
            (r.user.as_deref(), r.info),
            (Some("u"), Some(json!({"name": "A"})))
        );
        let r = presence(r#"{"op":"presence","id":1,"action":"watch","channel":"c"}"#)
            .expect("a watch");
        assert_eq!((r.verb, r.key, r.data), (PresenceVerb::Watch, None, None));
        let r = presence(r#"{"op":"presence","id":1,"action":"leave","channel":"c","data":null}"#)
            .expect("a leave");
        assert_eq!(r.verb, PresenceVerb::Leave);
    }

    #[test]
    fn a_bad_presence_frame_names_its_field_and_keeps_its_id() {
        let key = "k".repeat(16);
        let cases = [
            (json!({"op":"presence","id":2,"channel":"c"}), "`action`"),
            (
                json!({"op":"presence","id":2,"action":"dance","channel":"c"}),
                "`action` `dance`",
            ),
            (json!({"op":"presence","id":2,"action":"join"}), "`channel`"),
            (
                json!({"op":"presence","id":2,"action":"join","channel":"c"}),
                "`key`",
            ),
            (
                json!({"op":"presence","id":2,"action":"join","channel":"c","key":"short"}),
                "`key` `short`",
            ),
            (
                json!({"op":"presence","id":2,"action":"join","channel":"c","key":"k".repeat(65)}),
                "`key`",
            ),
            (
                json!({"op":"presence","id":2,"action":"join","channel":"c","key":"ke y".repeat(4)}),
                "`key`",
            ),
            (
                json!({"op":"presence","id":2,"action":"join","channel":"c","key":key,"data":[1]}),
                "`data`",
            ),
            (
                json!({"op":"presence","id":2,"action":"join","channel":"c","key":key,"info":"x"}),
                "`info`",
            ),
            (
                json!({"op":"presence","id":2,"action":"update","channel":"c"}),
                "`data`",
            ),
            (
                json!({"op":"presence","id":2,"action":"update","channel":"c","data":5}),
                "`data`",
            ),
        ];
        for (frame, part) in cases {
            let text = frame.to_string();
            let e = decode_client(&text).expect_err(&text);
            assert_eq!((e.code, e.id), (ErrorCode::BadFrame, Some(2)), "{text}");
            assert!(e.message.contains(part), "{text}: {e}");
        }
        let e = decode_client(r#"{"op":"presence","action":"watch","channel":"c"}"#)
            .expect_err("no id");
        assert!(e.message.contains("`id`"), "{e}");
        let e = decode_client(r#"{"op":"presence","id":3,"action":"watch","user":5}"#)
            .expect_err("a number user");
        assert_eq!(e.id, Some(3), "{e}");
    }

    #[test]
    fn presence_keys_are_16_to_64_url_safe_characters() {
        assert!(is_presence_key("0123456789abcdef"));
        assert!(is_presence_key(&"A-_z".repeat(16)));
        for bad in [
            "",
            "0123456789abcde",
            "0123456789abcde+",
            "0123456789abcdé0",
        ] {
            assert!(!is_presence_key(bad), "{bad}");
        }
        assert!(!is_presence_key(&"a".repeat(65)));
    }

    #[test]
    fn server_presence_frames_are_laid_out_as_the_protocol_says() {
        let (info, data) = (json!({"name": "Alice"}), json!({"id": 3}));
        let m = PresenceMember {
            key: "9f2c4e0a1b7d3c5e",
            user: "42",
            info: &info,
            data: &data,
            since: 1_765_000_000_000,
        };
        let member = json!({"key":"9f2c4e0a1b7d3c5e","user":"42","info":{"name":"Alice"},"data":{"id":3},"since":1_765_000_000_000u64});
        let read = |t: String| serde_json::from_str::<Value>(&t).expect("JSON");
        assert_eq!(
            read(encode_presence_sync("c", 7, 41, &[m])),
            json!({"op":"presence","channel":"c","action":"sync","id":7,"version":41,"members":[member]})
        );
        assert_eq!(
            read(encode_presence_join("c", 42, &m)),
            json!({"op":"presence","channel":"c","action":"join","version":42,"member":member})
        );
        assert_eq!(
            read(encode_presence_update("c", 43, &m)),
            json!({"op":"presence","channel":"c","action":"update","version":43,"member":member})
        );
        assert_eq!(
            read(encode_presence_leave("c", 44, "k", "u")),
            json!({"op":"presence","channel":"c","action":"leave","version":44,"key":"k","user":"u"})
        );
        assert_eq!(
            read(encode_presence_stats("c", 100, 60)),
            json!({"op":"presence","channel":"c","action":"stats","members":100,"users":60})
        );
        assert_eq!(
            read(encode_presence_closed("c", ErrorCode::TooManyChannels)),
            json!({"op":"presence","channel":"c","action":"closed","code":"too_many_channels"})
        );
        assert_eq!(
            read(encode_hello_with("e", 1, &["presence"]))["features"],
            json!(["presence"])
        );
        let plain = encode_hello("e", 1);
        assert!(!plain.contains("features"), "{plain}");
        assert!(matches!(
            crate::frame::decode_server(&plain),
            Ok(ServerFrame::Hello { .. })
        ));
    }
}
