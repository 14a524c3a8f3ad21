//! The seed's minimal WebSocket protocol (`protocol: "simple"`), translated to and from protocol
//! v1 so that the session drives it exactly like a connection to the relay.
//!
//! The seed document's "Custom WebSocket Provider" (see `../shared/reference/contracts.md` §4)
//! speaks, over a plain WebSocket (no subprotocol):
//! - client → server: `{"action":"subscribe","channel":C}`, `{"action":"unsubscribe","channel":C}`
//!   and `{"action":"publish","channel":C,"type":T,"payload":P}`;
//! - server → client: `{"channel":C,"type":T,"payload":P}` for every event of a subscribed channel.
//!
//! Nothing else: no `hello`, no answer to a subscribe, no ack, no sequence numbers, no history, no
//! pings, no tokens. The translator stands in for the relay's half of protocol v1 on each
//! connection:
//! - when the socket opens it makes up the `hello` (an epoch per connection, no ping interval:
//!   the browser's WebSocket reports a dead link);
//! - each `subscribe` the session sends goes out as one seed frame per channel and is answered at
//!   once with `subscribed` at `seq` 0 and `recovered: false`: a channel the session knew from an
//!   earlier connection is resynced (one `$resync` per subscription, so apps refetch what they may
//!   have missed), a new one simply starts;
//! - each `publish` goes out as the seed's frame (its `date` and `meta` have no place in it) and is
//!   acknowledged with `seq` 0 once the frame is handed to the socket;
//! - server events of subscribed channels are numbered 1, 2, … per channel and connection and dated
//!   on receipt, as the seed's client does (`date: new Date()`); events of other channels are
//!   dropped, as the seed's client drops them.

use super::frame::{
    encode_event, encode_hello, encode_subscribed, excerpt, ChannelEntry, REVALIDATE_CHANNEL,
};
use crate::engine::hash::Map;
use alloc::borrow::Cow;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Which protocol a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// The package's own protocol (`docs/PROTOCOL.md`), spoken by the relay.
    #[default]
    V1,
    /// The seed's minimal protocol: no `seq`, so no resume; every reconnect is a resync.
    Simple,
}

impl Protocol {
    /// The option's value: `"v1"` or `"simple"`.
    pub fn parse(name: &str) -> Option<Protocol> {
        match name {
            "v1" => Some(Protocol::V1),
            "simple" => Some(Protocol::Simple),
            _ => None,
        }
    }
}

/// The resync reason after a reconnect under the simple protocol.
pub fn no_replay_reason(channel: &str) -> String {
    format!(
        "reconnected with the simple protocol, which has no seq and cannot replay what `{channel}` missed: refetch"
    )
}

/// The simple protocol has no pings: the session's dead-link timer is set beyond reach and the
/// browser's WebSocket reports a lost connection.
const NO_PING_MS: u64 = 24 * 60 * 60 * 1000;

/// A JSON string: `text` quoted and escaped. The seed's client frames are written by hand around
/// it (with the payload's JSON text as is), which costs the wasm build less than a `Serialize` type.
fn quoted(text: &str) -> String {
    // Serializing a string cannot fail.
    serde_json::to_string(text).unwrap_or_default()
}

/// What the translation reads of a frame, either way: a protocol-v1 frame the session sends (`op`
/// and the rest; a publish's `key`, `date` and `meta` or a subscribe's `since` have no place in the
/// simple protocol), or the seed's server event (`channel`, `type`, `payload`; other fields are
/// ignored, as the seed's client ignores them). One type for both, and not `frame::decode_client`:
/// every deserializer costs the wasm build kilobytes.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow, default)]
    op: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<u64>,
    #[serde(borrow, default)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    channels: Vec<ChannelEntry<'a>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

/// What one frame of the session becomes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outgoing {
    /// Seed frames to hand to the socket, in order.
    pub send: Vec<String>,
    /// Protocol-v1 frames to feed back to the session (`subscribed`, `ack`) once `send` went out.
    pub replies: Vec<String>,
}

/// Translates one simple-protocol connection.
pub struct SimpleTranslator {
    epoch: String,
    /// The channels subscribed on this connection and the last `seq` given to their events.
    seqs: Map<String, u64>,
}

impl SimpleTranslator {
    /// `connection` numbers the connections: each is its own epoch.
    pub fn new(connection: u64) -> Self {
        SimpleTranslator {
            epoch: format!("simple-{connection}"),
            seqs: Map::default(),
        }
    }

    /// The `hello` the server never sends, for the session once the socket is open.
    pub fn hello(&self) -> String {
        encode_hello(&self.epoch, NO_PING_MS)
    }

    /// A protocol-v1 frame the session wants to send, in the seed's protocol.
    pub fn outgoing(&mut self, text: &str) -> Result<Outgoing, String> {
        let frame: Frame = serde_json::from_str(text)
            .map_err(|e| format!("cannot send in the simple protocol: {e}"))?;
        let mut out = Outgoing::default();
        match frame.op.as_deref().unwrap_or_default() {
            "subscribe" => {
                let mut answered = Vec::with_capacity(frame.channels.len());
                for entry in frame.channels {
                    let channel = entry.channel;
                    // Revalidations are the relay's (and Igniter's); a seed server has none.
                    if channel != REVALIDATE_CHANNEL {
                        out.send.push(action("subscribe", &channel));
                    }
                    self.seqs.insert(channel.to_string(), 0);
                    answered.push(ChannelEntry {
                        seq: Some(0),
                        recovered: Some(false),
                        ..ChannelEntry::named(channel)
                    });
                }
                out.replies.push(encode_subscribed(&answered));
            }
            "unsubscribe" => {
                for entry in frame.channels {
                    if self.seqs.remove(entry.channel.as_ref()).is_some()
                        && entry.channel != REVALIDATE_CHANNEL
                    {
                        out.send.push(action("unsubscribe", &entry.channel));
                    }
                }
            }
            "publish" => {
                let (Some(id), Some(channel), Some(kind)) = (frame.id, frame.channel, frame.kind)
                else {
                    return Err("cannot send in the simple protocol: a publish without `id`, `channel` or `type`".into());
                };
                out.send.push(format!(
                    r#"{{"action":"publish","channel":{},"type":{},"payload":{}}}"#,
                    quoted(&channel),
                    quoted(&kind),
                    frame.payload.map_or("{}", RawValue::get),
                ));
                out.replies
                    .push(format!(r#"{{"op":"ack","id":{id},"seq":0}}"#));
            }
            "ping" | "pong" => {}
            "auth" => {
                return Err("the simple protocol has no tokens: the token was not sent".into())
            }
            other => {
                return Err(format!(
                    "cannot send in the simple protocol: a `{other}` frame"
                ))
            }
        }
        Ok(out)
    }

    /// A frame from the server, as the protocol-v1 `event` for the session; `None` when it is for a
    /// channel not subscribed on this connection. `date` is the receipt time (milliseconds since
    /// the epoch).
    pub fn incoming(&mut self, text: &str, date: f64) -> Result<Option<String>, String> {
        let bad = |why: String| {
            format!(
                "not a simple-protocol event ({why}), expected {{\"channel\",\"type\",\"payload\"}}: {}",
                excerpt(text)
            )
        };
        let frame: Frame = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let channel = frame.channel.ok_or_else(|| bad("no `channel`".into()))?;
        let kind = frame.kind.ok_or_else(|| bad("no `type`".into()))?;
        let Some(seq) = self.seqs.get_mut(channel.as_ref()) else {
            return Ok(None);
        };
        *seq += 1;
        let empty: &RawValue = serde_json::from_str("{}").map_err(|e| e.to_string())?;
        let payload = frame.payload.unwrap_or(empty);
        Ok(Some(encode_event(
            &channel, *seq, &kind, payload, date, None,
        )))
    }
}

/// `{"action":…,"channel":…}`.
fn action(action: &str, channel: &str) -> String {
    format!(r#"{{"action":"{action}","channel":{}}}"#, quoted(channel))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::frame::{decode_server, ServerFrame};

    fn v1_subscribe(channels: &[&str]) -> String {
        let entries: Vec<ChannelEntry> = channels.iter().map(|c| ChannelEntry::named(*c)).collect();
        crate::engine::frame::encode_subscribe(&entries)
    }

    #[test]
    fn protocol_names() {
        assert_eq!(Protocol::parse("v1"), Some(Protocol::V1));
        assert_eq!(Protocol::parse("simple"), Some(Protocol::Simple));
        assert_eq!(Protocol::parse("Simple"), None);
        assert_eq!(Protocol::default(), Protocol::V1);
    }

    #[test]
    fn subscribe_goes_out_one_seed_frame_per_channel_and_is_answered_unrecovered() {
        let mut t = SimpleTranslator::new(2);
        assert!(matches!(
            decode_server(&t.hello()),
            Ok(ServerFrame::Hello { epoch, ping_ms, .. }) if epoch == "simple-2" && ping_ms == NO_PING_MS
        ));
        let out = t
            .outgoing(&v1_subscribe(&["posts", "$revalidate", "a\"b"]))
            .expect("ok");
        assert_eq!(
            out.send,
            vec![
                r#"{"action":"subscribe","channel":"posts"}"#,
                r#"{"action":"subscribe","channel":"a\"b"}"#
            ],
            "the seed's frames, JSON-escaped; none for revalidations"
        );
        let Ok(ServerFrame::Subscribed { channels }) = decode_server(&out.replies[0]) else {
            panic!("{out:?}")
        };
        assert_eq!(channels.len(), 3);
        assert!(channels
            .iter()
            .all(|c| c.seq == Some(0) && c.recovered == Some(false)));
    }

    #[test]
    fn unsubscribe_and_publish_become_the_seed_frames() {
        let mut t = SimpleTranslator::new(1);
        t.outgoing(&v1_subscribe(&["posts"])).expect("ok");
        let unsub = crate::engine::frame::encode_unsubscribe(&[ChannelEntry::named("posts")]);
        let out = t.outgoing(&unsub).expect("ok");
        assert_eq!(
            out,
            Outgoing {
                send: vec![r#"{"action":"unsubscribe","channel":"posts"}"#.into()],
                replies: vec![]
            }
        );
        // Not subscribed (any more) on this connection: nothing to say.
        assert_eq!(t.outgoing(&unsub).expect("ok"), Outgoing::default());

        let payload = r#"{"ids":[1]}"#;
        let meta = r#"{"x":1}"#;
        let publish = crate::engine::frame::PublishOut {
            op: "publish",
            id: 7,
            key: Some("k:7"),
            channel: "posts",
            kind: "created",
            payload,
            date: 1.0,
            meta: Some(meta),
            scopes: None,
        }
        .encode();
        let out = t.outgoing(&publish).expect("ok");
        assert_eq!(
            out.send,
            vec![
                r#"{"action":"publish","channel":"posts","type":"created","payload":{"ids":[1]}}"#
            ]
        );
        assert!(matches!(
            decode_server(&out.replies[0]),
            Ok(ServerFrame::Ack { id: 7, seq: 0 })
        ));
        assert_eq!(
            t.outgoing(&crate::engine::frame::encode_pong())
                .expect("ok"),
            Outgoing::default()
        );
        assert!(t
            .outgoing(&crate::engine::frame::encode_auth("tok"))
            .is_err());
        assert!(t.outgoing("not json").is_err());
    }

    #[test]
    fn server_events_are_numbered_per_channel_and_dated_on_receipt() {
        let mut t = SimpleTranslator::new(1);
        t.outgoing(&v1_subscribe(&["posts", "users"])).expect("ok");
        for (i, (channel, expect)) in [("posts", 1), ("posts", 2), ("users", 1)]
            .iter()
            .enumerate()
        {
            let text = format!(
                r#"{{"channel":"{channel}","type":"updated","payload":{{"ids":[{i}]}},"extra":true}}"#
            );
            let frame = t.incoming(&text, 99.0).expect("ok").expect("subscribed");
            let Ok(ServerFrame::Event(e)) = decode_server(&frame) else {
                panic!("{frame}")
            };
            assert_eq!(
                (e.channel.as_ref(), e.seq, e.kind.as_ref(), e.date),
                (*channel, *expect, "updated", 99.0)
            );
            assert_eq!(e.payload, format!(r#"{{"ids":[{i}]}}"#));
            assert!(e.meta.is_none());
        }
        let no_payload = t
            .incoming(r#"{"channel":"posts","type":"deleted"}"#, 1.0)
            .expect("ok")
            .expect("subscribed");
        assert!(no_payload.contains(r#""payload":{}"#), "{no_payload}");
        assert_eq!(
            t.incoming(r#"{"channel":"other","type":"x","payload":{}}"#, 1.0),
            Ok(None),
            "a channel not subscribed here is dropped"
        );
        for bad in [
            "[1]",
            "nope",
            r#"{"type":"x","payload":{}}"#,
            r#"{"channel":"posts","payload":{}}"#,
        ] {
            let err = t.incoming(bad, 1.0).expect_err(bad);
            assert!(err.contains("not a simple-protocol event"), "{err}");
        }
    }
}
