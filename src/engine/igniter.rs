//! Reading an Igniter.js server's SSE stream (`flavor: "igniter"`), translated into protocol-v1
//! frames so that the session handles it like the relay's own stream.
//!
//! Igniter (see `../shared/reference/contracts.md` §3 and `tests/igniter/README.md`) has no sequence
//! numbers and no replay: each connection is its own epoch, every channel starts at 0, and every
//! channel that had a position before is answered `recovered: false` — after any reconnect its
//! subscriptions get one resync event and refetch. Revalidations become events on
//! [`REVALIDATE_CHANNEL`].

use super::frame::{
    encode_event, encode_hello, encode_subscribed, ChannelEntry, REVALIDATE_CHANNEL,
    REVALIDATE_TYPE,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;

/// Igniter's name for the channel of revalidations.
const IGNITER_REVALIDATION_CHANNEL: &str = "revalidation";
/// Liveness is the `EventSource`'s business here: Igniter's keep-alives are comments, which never
/// reach the page, so the session's dead-link timer is set beyond reach.
const NO_PING_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Deserialize)]
struct IgniterMessage<'a> {
    #[serde(borrow, default)]
    channel: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timestamp: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Revalidation {
    #[serde(default, rename = "queryKeys")]
    query_keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct TypedData<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<std::borrow::Cow<'a, str>>,
}

/// Translates one Igniter SSE connection.
pub struct IgniterTranslator {
    epoch: String,
    channels: Vec<String>,
    seqs: HashMap<String, u64>,
}

impl IgniterTranslator {
    /// The named SSE event types to listen to besides `message`.
    pub const EVENT_TYPES: &'static [&'static str] =
        &["connected", "revalidate", "created", "updated", "deleted"];

    /// `connection` numbers the connections (each is its own epoch); `channels` are the session's.
    pub fn new(connection: u64, channels: Vec<String>) -> Self {
        IgniterTranslator {
            epoch: format!("igniter-{connection}"),
            channels,
            seqs: HashMap::new(),
        }
    }

    /// Igniter's query: `channels=a,b` (comma-joined), with its revalidation channel when the
    /// session listens for revalidations.
    pub fn query(&self) -> String {
        let names: Vec<&str> = self
            .channels
            .iter()
            .map(|c| {
                if c == REVALIDATE_CHANNEL {
                    IGNITER_REVALIDATION_CHANNEL
                } else {
                    c.as_str()
                }
            })
            .collect();
        let mut q = String::from("channels=");
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                q.push(',');
            }
            for b in name.bytes() {
                if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                    q.push(b as char);
                } else {
                    q.push_str(&format!("%{b:02X}"));
                }
            }
        }
        q
    }

    /// Turns one SSE event (`kind` = its event type) into protocol-v1 frames. `parse_date` reads
    /// Igniter's ISO timestamps (milliseconds since the epoch).
    pub fn translate(
        &mut self,
        kind: &str,
        data: &str,
        parse_date: impl Fn(&str) -> Option<f64>,
    ) -> Result<Vec<String>, String> {
        if kind == "connected" {
            let entries: Vec<ChannelEntry> = self
                .channels
                .iter()
                .map(|c| ChannelEntry {
                    seq: Some(0),
                    recovered: Some(false),
                    ..ChannelEntry::named(c.as_str())
                })
                .collect();
            return Ok(vec![
                encode_hello(&self.epoch, NO_PING_MS),
                encode_subscribed(&entries),
            ]);
        }
        let message: IgniterMessage = serde_json::from_str(data)
            .map_err(|e| format!("Igniter `{kind}` event that is not JSON: {e}"))?;
        let date = message
            .timestamp
            .as_deref()
            .and_then(&parse_date)
            .unwrap_or(0.0);
        let empty = RawValue::from_string("{}".to_owned()).map_err(|e| e.to_string())?;
        let payload = message.data.unwrap_or(&empty);
        let channel = message
            .channel
            .as_deref()
            .unwrap_or(IGNITER_REVALIDATION_CHANNEL);

        if kind == "revalidate" || channel == IGNITER_REVALIDATION_CHANNEL {
            let r: Revalidation = serde_json::from_str(payload.get())
                .map_err(|e| format!("Igniter revalidation without `queryKeys`: {e}"))?;
            let keys: Vec<serde_json::Value> = r
                .query_keys
                .into_iter()
                .map(|k| {
                    if k.is_array() {
                        k
                    } else {
                        serde_json::Value::Array(vec![k])
                    }
                })
                .collect();
            let payload = serde_json::json!({ "keys": keys }).to_string();
            let raw = RawValue::from_string(payload).map_err(|e| e.to_string())?;
            let seq = self.next_seq(REVALIDATE_CHANNEL);
            return Ok(vec![encode_event(
                REVALIDATE_CHANNEL,
                seq,
                REVALIDATE_TYPE,
                &raw,
                date,
                None,
            )]);
        }
        if !self.channels.iter().any(|c| c == channel) {
            return Ok(Vec::new());
        }
        let event_type = if kind != "message" {
            kind.to_owned()
        } else {
            serde_json::from_str::<TypedData>(payload.get())
                .ok()
                .and_then(|d| d.kind.map(|k| k.into_owned()))
                .unwrap_or_else(|| "message".to_owned())
        };
        let seq = self.next_seq(channel);
        Ok(vec![encode_event(
            channel,
            seq,
            &event_type,
            payload,
            date,
            None,
        )])
    }

    fn next_seq(&mut self, channel: &str) -> u64 {
        let seq = self.seqs.entry(channel.to_owned()).or_insert(0);
        *seq += 1;
        *seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::frame::{decode_server, ServerFrame};

    fn date(_: &str) -> Option<f64> {
        Some(42.0)
    }

    #[test]
    fn connected_opens_an_epoch_with_every_channel_unrecovered() {
        let mut t = IgniterTranslator::new(3, vec!["posts".into(), REVALIDATE_CHANNEL.into()]);
        assert_eq!(t.query(), "channels=posts,revalidation");
        let frames = t.translate("connected", "{}", date).expect("ok");
        assert!(
            matches!(decode_server(&frames[0]), Ok(ServerFrame::Hello { epoch, .. }) if epoch == "igniter-3")
        );
        let Ok(ServerFrame::Subscribed { channels }) = decode_server(&frames[1]) else {
            panic!("{frames:?}")
        };
        assert!(channels
            .iter()
            .all(|c| c.recovered == Some(false) && c.seq == Some(0)));
    }

    #[test]
    fn channel_events_get_sequence_numbers_and_types() {
        let mut t = IgniterTranslator::new(1, vec!["posts".into()]);
        let data = r#"{"channel":"posts","data":{"type":"updated","ids":[7]},"scopes":[],"timestamp":"2025-01-01T00:00:00Z"}"#;
        for (i, kind) in ["message", "message"].iter().enumerate() {
            let frames = t.translate(kind, data, date).expect("ok");
            let Ok(ServerFrame::Event(e)) = decode_server(&frames[0]) else {
                panic!("{frames:?}")
            };
            assert_eq!(
                (e.seq, e.kind.as_ref(), e.date),
                (i as u64 + 1, "updated", 42.0)
            );
            assert_eq!(e.payload.get(), r#"{"type":"updated","ids":[7]}"#);
        }
        assert!(t
            .translate("message", r#"{"channel":"other","data":{}}"#, date)
            .expect("ok")
            .is_empty());
        assert!(t.translate("message", "not json", date).is_err());
    }

    #[test]
    fn revalidations_become_events_on_the_revalidate_channel() {
        let mut t = IgniterTranslator::new(1, vec![REVALIDATE_CHANNEL.into()]);
        let data = r#"{"channel":"revalidation","data":{"queryKeys":["posts.list",["users",1]]},"timestamp":"x"}"#;
        let frames = t.translate("revalidate", data, date).expect("ok");
        let Ok(ServerFrame::Event(e)) = decode_server(&frames[0]) else {
            panic!("{frames:?}")
        };
        assert_eq!(e.channel, REVALIDATE_CHANNEL);
        assert_eq!(e.payload.get(), r#"{"keys":[["posts.list"],["users",1]]}"#);
    }
}
