//! Reading an Igniter.js server's SSE stream (`flavor: "igniter"`), translated into protocol-v1
//! frames so that the session handles it like the relay's own stream.
//!
//! Igniter (see `../shared/reference/contracts.md` §3 and `tests/igniter/README.md`) has no sequence
//! numbers and no replay: each connection is its own epoch, every channel starts at 0, and every
//! channel that had a position before is answered `recovered: false` — after a reconnect its
//! subscriptions get one resync event and refetch. Revalidations become events on
//! [`REVALIDATE_CHANNEL`], their dotted keys (`posts.list`) also split (`["posts", "list"]`) so that
//! TanStack keys written either way match.
//!
//! A change of the channel set does not cost a resync: the new stream is opened before the old
//! one is closed ([`IgniterTranslator::reopen`]); what the old stream carries until the new
//! one is `connected` is held back, then handed over after it, and the new stream's `connected`
//! continues the same epoch (`recovered: true`). Igniter sends every event with one id to all its
//! connections, so events that arrive on both streams during the overlap are dropped by id.
//!
//! Igniter answers a stream that names a channel nobody registered with a plain HTTP 500, which an
//! `EventSource` only sees as a failure. The stream's URL is then probed with `fetch` and
//! [`judge`] tells an outage from refused channels, which the session drops
//! (`Session::refuse_channels`).
//!
//! | file | holds |
//! |---|---|
//! | this one | [`IgniterTranslator`] (one epoch's events into frames), the probes' [`judge`] |
//! | `igniter/translated.rs` | [`TranslatedFrame`]: the frames, owned and decoded, for `Session::handle_decoded` |
//! | `igniter/link.rs` | [`IgniterLink`]: the streams, sans-IO — which to open and close, the overlap's timer, the probes of a failed stream |

mod link;
mod translated;

use super::frame::{ChannelEntry, REVALIDATE_CHANNEL, REVALIDATE_TYPE};
use super::session::percent_encode_into;
use crate::engine::hash::{Map, Set};
use alloc::collections::VecDeque;
pub use link::{IgniterLink, LinkOutput};
use serde::Deserialize;
use serde_json::value::RawValue;
pub use translated::{TranslatedEvent, TranslatedFrame};

/// Igniter's name for the channel of revalidations.
const IGNITER_REVALIDATION_CHANNEL: &str = "revalidation";
/// Liveness is the `EventSource`'s business here: Igniter's keep-alives are comments, which never
/// reach the page, so the session's dead-link timer is set beyond reach.
const NO_PING_MS: u64 = 24 * 60 * 60 * 1000;
/// How many event ids are remembered to drop an event that arrives twice.
const RECENT_IDS: usize = 1024;
/// How many frames of the old stream are held back while the new one connects; past that the
/// overlap gives up and the new stream's channels are resynced.
const MAX_HELD: usize = 1024;
/// The largest reconnect delay with Igniter unless `backoffMaxMs` says otherwise, ms. Igniter keeps
/// no history, so waiting longer saves its server nothing and only delays the refetch: its own
/// client retries after 1, 2, 4, 8 and 16 s on top of `EventSource`'s own reconnect.
pub const BACKOFF_MAX_MS: u64 = 2_000;
/// How long the old stream stays open after the new one is `connected`, ms: an event published
/// just before Igniter registered the new stream travels on the old one only.
pub const OVERLAP_GRACE_MS: u64 = 500;

#[derive(Deserialize)]
struct IgniterMessage<'a> {
    #[serde(borrow, default)]
    channel: Option<alloc::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timestamp: Option<alloc::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Revalidation {
    #[serde(default, rename = "queryKeys")]
    query_keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct TypedData<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<alloc::borrow::Cow<'a, str>>,
}

/// Which of the shell's two streams an SSE event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The stream of the current channel set.
    Current,
    /// The stream being replaced, kept open until the current one is `connected` (and a grace).
    Previous,
}

/// The last [`RECENT_IDS`] event ids seen.
#[derive(Default)]
struct RecentIds {
    order: VecDeque<String>,
    set: Set<String>,
}

impl RecentIds {
    /// `false` when `id` was seen already.
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() == RECENT_IDS {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.order.push_back(id.to_owned());
        self.set.insert(id.to_owned());
        true
    }
}

/// Translates the Igniter stream(s) of one connection epoch.
pub struct IgniterTranslator {
    epoch: String,
    /// The session's channel names of the current stream.
    channels: Vec<String>,
    /// The channels of the stream being replaced, while it is open.
    previous: Option<Vec<String>>,
    /// The current stream sent `connected`.
    connected: bool,
    seqs: Map<String, u64>,
    seen: RecentIds,
    /// Frames of the previous stream waiting for the current one's `connected`.
    held: Vec<TranslatedFrame>,
    /// Per channel, the seq of its first held frame.
    held_from: Map<String, u64>,
    /// More than [`MAX_HELD`] frames came while holding: the overlap cannot bridge the gap.
    overflowed: bool,
    duplicates: u64,
}

impl IgniterTranslator {
    /// The named SSE event types to listen to besides `message`.
    pub const EVENT_TYPES: &'static [&'static str] =
        &["connected", "revalidate", "created", "updated", "deleted"];

    /// A new epoch: `connection` numbers the connections; `channels` are the session's.
    pub fn new(connection: u64, channels: Vec<String>) -> Self {
        IgniterTranslator {
            epoch: format!("igniter-{connection}"),
            channels,
            previous: None,
            connected: false,
            seqs: Map::default(),
            seen: RecentIds::default(),
            held: Vec::new(),
            held_from: Map::default(),
            overflowed: false,
            duplicates: 0,
        }
    }

    /// A new epoch after this one (the duplicates count carries over, for the client's stats).
    pub fn next_epoch(&self, connection: u64, channels: Vec<String>) -> Self {
        IgniterTranslator {
            duplicates: self.duplicates,
            ..IgniterTranslator::new(connection, channels)
        }
    }

    /// Whether the current stream is `connected`: a new stream may then overlap it ([`Self::reopen`]).
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// Whether a previous stream is still being read.
    pub fn overlapping(&self) -> bool {
        self.previous.is_some()
    }

    /// Events dropped because their id had been seen already (on the other stream, or twice).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// A new stream for `channels` replaces the current one within this epoch. When the current one
    /// is `connected`, it becomes the previous stream and stays open until the new one is; a current
    /// stream that never connected is simply replaced (a previous one stays).
    pub fn reopen(&mut self, channels: Vec<String>) {
        if self.connected {
            self.previous = Some(core::mem::replace(&mut self.channels, channels));
            self.held.clear();
            self.held_from.clear();
            self.overflowed = false;
        } else {
            self.channels = channels;
        }
        self.connected = false;
    }

    /// The previous stream was closed.
    pub fn end_overlap(&mut self) {
        self.previous = None;
        self.held.clear();
        self.held_from.clear();
    }

    /// Igniter's query for the current stream: `channels=a,b` (comma-joined), with its
    /// revalidation channel for the session's [`REVALIDATE_CHANNEL`].
    pub fn query(&self) -> String {
        query_for(&self.channels)
    }

    /// The session's channel names of the current stream.
    pub fn channels(&self) -> &[String] {
        &self.channels
    }

    /// Turns one SSE event of `source` (`kind` = its event type, `id` = its `lastEventId`) into
    /// protocol-v1 frames. `parse_date` reads Igniter's ISO timestamps (ms since the epoch).
    pub fn translate(
        &mut self,
        source: Source,
        kind: &str,
        id: &str,
        data: &str,
        parse_date: impl Fn(&str) -> Option<f64>,
    ) -> Result<Vec<TranslatedFrame>, String> {
        if source == Source::Previous && self.previous.is_none() {
            return Ok(Vec::new()); // a stream already given up
        }
        if kind == "connected" {
            return Ok(match source {
                Source::Current if !self.connected => self.on_connected(),
                _ => Vec::new(),
            });
        }
        if !id.is_empty() && !self.seen.insert(id) {
            self.duplicates += 1;
            return Ok(Vec::new());
        }
        let frames = self.translate_event(kind, data, parse_date)?;
        if source == Source::Previous && !self.connected {
            // The session waits for the new stream's `connected`: hand these over after it.
            for f in &frames {
                if self.held.len() >= MAX_HELD {
                    self.overflowed = true;
                    break;
                }
                self.held.push(f.clone());
            }
            return Ok(Vec::new());
        }
        Ok(frames)
    }

    fn on_connected(&mut self) -> Vec<TranslatedFrame> {
        self.connected = true;
        let continuing = self.previous.as_ref().filter(|_| !self.overflowed);
        let entries: Vec<ChannelEntry<'static>> = self
            .channels
            .iter()
            .map(|c| {
                let carried = continuing.is_some_and(|p| p.contains(c));
                let seq = match self.held_from.get(c) {
                    Some(first) => first - 1,
                    None => self.seqs.get(c).copied().unwrap_or(0),
                };
                ChannelEntry {
                    seq: Some(if carried { seq } else { 0 }),
                    recovered: Some(carried),
                    ..ChannelEntry::named(c.clone())
                }
            })
            .collect();
        if !self.overflowed && self.previous.is_some() {
            // Channels new to this stream start from 0 (the session has no position for them).
            for c in &self.channels {
                if !self.previous.as_ref().is_some_and(|p| p.contains(c)) {
                    self.seqs.remove(c);
                }
            }
        } else {
            self.seqs.clear();
            self.held.clear();
        }
        let mut frames = vec![
            TranslatedFrame::Hello {
                epoch: self.epoch.clone(),
            },
            TranslatedFrame::Subscribed { channels: entries },
        ];
        frames.append(&mut self.held);
        self.held_from.clear();
        frames
    }

    fn translate_event(
        &mut self,
        kind: &str,
        data: &str,
        parse_date: impl Fn(&str) -> Option<f64>,
    ) -> Result<Vec<TranslatedFrame>, String> {
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
            let keys = revalidation_keys(r.query_keys);
            let payload = serde_json::json!({ "keys": keys }).to_string();
            let raw = RawValue::from_string(payload).map_err(|e| e.to_string())?;
            let seq = self.next_seq(REVALIDATE_CHANNEL);
            return Ok(vec![TranslatedFrame::Event(TranslatedEvent {
                channel: REVALIDATE_CHANNEL.to_owned(),
                seq,
                kind: REVALIDATE_TYPE.to_owned(),
                payload: raw,
                date,
            })]);
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
        Ok(vec![TranslatedFrame::Event(TranslatedEvent {
            channel: channel.to_owned(),
            seq,
            kind: event_type,
            payload: payload.to_owned(),
            date,
        })])
    }

    fn next_seq(&mut self, channel: &str) -> u64 {
        let seq = self.seqs.entry(channel.to_owned()).or_insert(0);
        *seq += 1;
        if !self.connected && self.previous.is_some() {
            self.held_from.entry(channel.to_owned()).or_insert(*seq);
        }
        *seq
    }
}

/// Igniter's `channels=a,b` query for the session's channel names (comma-joined, each
/// percent-encoded; [`REVALIDATE_CHANNEL`] is Igniter's `revalidation`).
pub fn query_for(channels: &[String]) -> String {
    let mut q = String::from("channels=");
    for (i, c) in channels.iter().enumerate() {
        if i > 0 {
            q.push(',');
        }
        let name = if c == REVALIDATE_CHANNEL {
            IGNITER_REVALIDATION_CHANNEL
        } else {
            c.as_str()
        };
        percent_encode_into(&mut q, name);
    }
    q
}

/// Igniter's revalidation keys as keys (arrays) for TanStack Query, which matches by array prefix
/// while Igniter's own client matches strings by prefix. A key that is already an array stays as
/// is; a string stays whole (`["posts.list"]`) and, when it is a dotted path (`posts.list`, no
/// `:` arguments, no empty segment), is also given split (`["posts", "list"]`), so that queries
/// keyed either way are revalidated.
pub fn revalidation_keys(keys: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    use serde_json::Value;
    let mut out: Vec<Value> = Vec::with_capacity(keys.len() * 2);
    let push = |key: Value, out: &mut Vec<Value>| {
        if !out.contains(&key) {
            out.push(key);
        }
    };
    for key in keys {
        match key {
            Value::Array(_) => push(key, &mut out),
            Value::String(s) => {
                let split: Option<Vec<Value>> = (s.contains('.') && !s.contains(':'))
                    .then(|| s.split('.').map(|p| Value::String(p.to_owned())).collect())
                    .filter(|parts: &Vec<Value>| parts.iter().all(|p| p != ""));
                push(Value::Array(vec![Value::String(s)]), &mut out);
                if let Some(parts) = split {
                    push(Value::Array(parts), &mut out);
                }
            }
            other => push(Value::Array(vec![other]), &mut out),
        }
    }
    out
}

/// What a probing `fetch` got: the HTTP status, or no answer at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Status(u16),
    Unreachable(String),
}

/// A channel Igniter refuses to stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The session's name of the channel.
    pub channel: String,
    pub status: u16,
    /// For the error hook: names the channel and the status.
    pub message: String,
}

/// What a stream that failed before `connected` was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The server is down, unreachable, or failing as a whole: retry with backoff.
    Outage(String),
    /// These channels are refused; the others work.
    Refused(Vec<Refusal>),
}

/// An answer that means "not this request" rather than "not now": 4xx (but a timeout or a rate
/// limit) and Igniter's 500 for an unregistered channel. 502-504 are a proxy's outage.
fn refusal_status(status: u16) -> bool {
    matches!(status, 400..=499 if status != 408 && status != 429) || status == 500
}

/// Whether the probe of the whole stream URL calls for probing each channel alone.
pub fn needs_channel_probes(whole: &Probe) -> bool {
    matches!(whole, Probe::Status(s) if refusal_status(*s))
}

/// The query of the control probe: Igniter's `revalidation` channel, which every Igniter server
/// registers. A server that refuses it too is failing as a whole, not refusing channels.
pub fn control_query() -> String {
    query_for(&[REVALIDATE_CHANNEL.to_owned()])
}

/// Judges a stream of `channels` that failed before `connected`, from the probe of its whole URL,
/// of each channel alone (in order; only when [`needs_channel_probes`]) and of the control.
pub fn judge(
    channels: &[String],
    whole: &Probe,
    each: &[Probe],
    control: Option<&Probe>,
) -> Verdict {
    let status = match whole {
        Probe::Unreachable(reason) => {
            return Verdict::Outage(format!("the Igniter server cannot be reached: {reason}"))
        }
        Probe::Status(s) if !refusal_status(*s) => {
            return Verdict::Outage(format!(
                "the event stream failed (the stream URL answers HTTP {s})"
            ))
        }
        Probe::Status(s) => *s,
    };
    match control {
        None | Some(Probe::Status(200..=299)) => {}
        Some(Probe::Status(s)) => {
            return Verdict::Outage(format!(
                "the Igniter server answers HTTP {status} to the stream and {s} even to its own `revalidation` channel"
            ))
        }
        Some(Probe::Unreachable(reason)) => {
            return Verdict::Outage(format!("the Igniter server cannot be reached: {reason}"))
        }
    }
    let refused: Vec<Refusal> = channels
        .iter()
        .zip(each)
        .filter_map(|(channel, probe)| match probe {
            Probe::Status(s) if refusal_status(*s) => Some(Refusal {
                channel: channel.clone(),
                status: *s,
                message: format!(
                    "the Igniter server refused channel `{channel}` (HTTP {s}; Igniter streams only channels its app registered); dropped it, the other channels go on"
                ),
            }),
            _ => None,
        })
        .collect();
    if refused.is_empty() {
        Verdict::Outage(format!(
            "the Igniter server answers HTTP {status} to the stream but to none of its channels alone"
        ))
    } else {
        Verdict::Refused(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::filter::{Filter, TypeFilter};
    use crate::engine::session::{Output, Session, SessionConfig, TransportKind};

    fn date(_: &str) -> Option<f64> {
        Some(42.0)
    }

    fn ch(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn message(channel: &str, body: &str) -> String {
        format!(r#"{{"channel":"{channel}","data":{body},"timestamp":"x"}}"#)
    }

    fn events(frames: &[TranslatedFrame]) -> Vec<(String, u64)> {
        frames
            .iter()
            .filter_map(|f| match f {
                TranslatedFrame::Event(e) => Some((e.channel.clone(), e.seq)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn connected_opens_an_epoch_with_every_channel_unrecovered() {
        let mut t = IgniterTranslator::new(3, ch(&["posts", REVALIDATE_CHANNEL]));
        assert_eq!(t.query(), "channels=posts,revalidation");
        let frames = t
            .translate(Source::Current, "connected", "", "{}", date)
            .expect("ok");
        assert!(matches!(&frames[0], TranslatedFrame::Hello { epoch } if epoch == "igniter-3"));
        let TranslatedFrame::Subscribed { channels } = &frames[1] else {
            panic!("{frames:?}")
        };
        assert!(channels
            .iter()
            .all(|c| c.recovered == Some(false) && c.seq == Some(0)));
    }

    #[test]
    fn channel_events_get_sequence_numbers_and_types() {
        let mut t = IgniterTranslator::new(1, ch(&["posts"]));
        let data = r#"{"channel":"posts","data":{"type":"updated","ids":[7]},"scopes":[],"timestamp":"2025-01-01T00:00:00Z"}"#;
        for (i, id) in ["a", "b"].iter().enumerate() {
            let frames = t
                .translate(Source::Current, "message", id, data, date)
                .expect("ok");
            let TranslatedFrame::Event(e) = &frames[0] else {
                panic!("{frames:?}")
            };
            assert_eq!(
                (e.seq, e.kind.as_str(), e.date),
                (i as u64 + 1, "updated", 42.0)
            );
            assert_eq!(e.payload.get(), r#"{"type":"updated","ids":[7]}"#);
        }
        let other = r#"{"channel":"other","data":{}}"#;
        assert!(t
            .translate(Source::Current, "message", "c", other, date)
            .expect("ok")
            .is_empty());
        assert!(t
            .translate(Source::Current, "message", "d", "not json", date)
            .is_err());
    }

    #[test]
    fn an_event_id_seen_before_is_dropped() {
        let mut t = IgniterTranslator::new(1, ch(&["posts"]));
        t.translate(Source::Current, "connected", "", "{}", date)
            .expect("ok");
        let data = message("posts", r#"{"type":"created"}"#);
        let first = t.translate(Source::Current, "message", "u-1", &data, date);
        let again = t.translate(Source::Current, "message", "u-1", &data, date);
        let other = t.translate(Source::Current, "message", "u-2", &data, date);
        assert_eq!(events(&first.expect("ok")), vec![("posts".into(), 1)]);
        assert!(again.expect("ok").is_empty(), "same id: dropped");
        assert_eq!(events(&other.expect("ok")), vec![("posts".into(), 2)]);
        assert_eq!(t.duplicates(), 1);
        assert_eq!(
            t.next_epoch(2, ch(&["posts"])).duplicates(),
            1,
            "carried over"
        );
        // Events without an id (none from Igniter) are never taken for duplicates.
        let a = t.translate(Source::Current, "message", "", &data, date);
        let b = t.translate(Source::Current, "message", "", &data, date);
        assert_eq!(a.expect("ok").len() + b.expect("ok").len(), 2);
    }

    #[test]
    fn revalidations_become_events_on_the_revalidate_channel() {
        let mut t = IgniterTranslator::new(1, ch(&[REVALIDATE_CHANNEL]));
        let data = r#"{"channel":"revalidation","data":{"queryKeys":["posts.list",["users",1]]},"timestamp":"x"}"#;
        let frames = t
            .translate(Source::Current, "revalidate", "r1", data, date)
            .expect("ok");
        let TranslatedFrame::Event(e) = &frames[0] else {
            panic!("{frames:?}")
        };
        assert_eq!(e.channel, REVALIDATE_CHANNEL);
        assert_eq!(
            e.payload.get(),
            r#"{"keys":[["posts.list"],["posts","list"],["users",1]]}"#
        );
    }

    #[test]
    fn dotted_keys_match_tanstack_keys_written_either_way() {
        let keys = |v: serde_json::Value| {
            let serde_json::Value::Array(v) = v else {
                panic!()
            };
            serde_json::Value::Array(revalidation_keys(v)).to_string()
        };
        // Whole and split, so that ["posts.list", …] and ["posts", "list", …] are both prefixed.
        assert_eq!(
            keys(serde_json::json!(["posts.list", "users", "a.b.c"])),
            r#"[["posts.list"],["posts","list"],["users"],["a.b.c"],["a","b","c"]]"#
        );
        // Keys with arguments, odd dots, arrays and repeats.
        assert_eq!(
            keys(serde_json::json!([
                r#"posts.show:{"params":{"id":1}}"#,
                "posts.",
                ".x",
                ["posts", "list"],
                "posts.list",
                7
            ])),
            r#"[["posts.show:{\"params\":{\"id\":1}}"],["posts."],[".x"],["posts","list"],["posts.list"],[7]]"#
        );
        // What TanStack Query would then invalidate (prefix, element by element).
        let matches = |key: &[&str], query: &[&str]| {
            revalidation_keys(vec![serde_json::json!(key.join("."))])
                .iter()
                .any(|k| {
                    let k = k.as_array().expect("keys are arrays");
                    k.len() <= query.len() && k.iter().zip(query).all(|(a, b)| a == b)
                })
        };
        assert!(matches(&["posts", "list"], &["posts", "list", "page-1"]));
        assert!(matches(&["posts", "list"], &["posts.list", "page-1"]));
        assert!(matches(&["posts"], &["posts", "show"]));
        assert!(!matches(&["posts", "list"], &["posts", "show"]));
        assert!(!matches(&["posts", "list"], &["posts"]));
    }

    /// The translator and a real session: a change of the channel set costs no resync and no
    /// event, and the overlap's duplicates are dropped.
    #[test]
    fn a_channel_change_overlaps_the_streams_without_a_resync() {
        let mut s = Session::new(SessionConfig {
            transport: TransportKind::Sse,
            ..SessionConfig::default()
        });
        let all = Filter::new(TypeFilter::All, None);
        let list = s.subscribe(0, "posts.list", all.clone());
        s.handle_timeout(100);
        let mut t = IgniterTranslator::new(1, s.registry().channels().map(str::to_owned).collect());
        let feed = |s: &mut Session, frames: Vec<TranslatedFrame>, now| {
            for f in frames {
                s.handle_decoded(now, Ok(f.frame()));
            }
        };
        let connected = t.translate(Source::Current, "connected", "", "{}", date);
        feed(&mut s, connected.expect("ok"), 110);
        let created = message("posts.list", r#"{"type":"created","ids":[1]}"#);
        let first = t.translate(Source::Current, "message", "e1", &created, date);
        feed(&mut s, first.expect("ok"), 120);
        let outputs: Vec<Output> = core::iter::from_fn(|| s.poll_output()).collect();
        assert!(outputs
            .iter()
            .any(|o| matches!(o, Output::Deliver { subs, .. } if subs == &vec![list])));

        // A second channel: the session reopens the stream; the old one stays while the new connects.
        let show = s.subscribe(200, "posts.show", all);
        s.handle_timeout(300);
        let outputs: Vec<Output> = core::iter::from_fn(|| s.poll_output()).collect();
        assert!(outputs
            .iter()
            .any(|o| matches!(o, Output::ConnectStream { .. })));
        assert!(t.connected());
        t.reopen(s.registry().channels().map(str::to_owned).collect());
        assert!(t.overlapping());
        assert_eq!(t.query(), "channels=posts.list,posts.show");
        // Published while the new stream connects: only on the old one, held back.
        let e2 = message("posts.list", r#"{"type":"updated","ids":[1]}"#);
        let held = t.translate(Source::Previous, "message", "e2", &e2, date);
        assert!(held.expect("ok").is_empty());
        let connected = t
            .translate(Source::Current, "connected", "", "{}", date)
            .expect("ok");
        assert_eq!(events(&connected), vec![("posts.list".into(), 2)]);
        feed(&mut s, connected, 310);
        // Published during the overlap: on both streams, delivered once.
        let e3 = message("posts.list", r#"{"type":"deleted","ids":[1]}"#);
        let new = t.translate(Source::Current, "message", "e3", &e3, date);
        let old = t.translate(Source::Previous, "message", "e3", &e3, date);
        assert!(old.expect("ok").is_empty(), "the duplicate is dropped");
        feed(&mut s, new.expect("ok"), 320);
        let e4 = message("posts.show", r#"{"type":"updated","ids":[1]}"#);
        let on_show = t.translate(Source::Current, "message", "e4", &e4, date);
        feed(&mut s, on_show.expect("ok"), 330);
        t.end_overlap();

        let outputs: Vec<Output> = core::iter::from_fn(|| s.poll_output()).collect();
        let delivered: Vec<(&str, u64, &Vec<_>)> = outputs
            .iter()
            .filter_map(|o| match o {
                Output::Deliver { subs, event } => Some((event.kind.as_str(), event.seq, subs)),
                _ => None,
            })
            .collect();
        assert_eq!(
            delivered,
            vec![
                ("updated", 2, &vec![list]),
                ("deleted", 3, &vec![list]),
                ("updated", 1, &vec![show])
            ]
        );
        assert!(
            !outputs.iter().any(|o| matches!(o, Output::Resync { .. })),
            "{outputs:?}"
        );
        assert_eq!(s.stats().resyncs, 0);
        assert_eq!(t.duplicates(), 1);
    }

    #[test]
    fn an_overflowing_overlap_resyncs_instead_of_losing_events() {
        let mut t = IgniterTranslator::new(1, ch(&["a"]));
        t.translate(Source::Current, "connected", "", "{}", date)
            .expect("ok");
        t.reopen(ch(&["a", "b"]));
        let data = message("a", "{}");
        for i in 0..=MAX_HELD {
            let id = format!("id-{i}");
            t.translate(Source::Previous, "message", &id, &data, date)
                .expect("ok");
        }
        let frames = t
            .translate(Source::Current, "connected", "", "{}", date)
            .expect("ok");
        assert_eq!(frames.len(), 2, "nothing handed over");
        let TranslatedFrame::Subscribed { channels } = &frames[1] else {
            panic!("{frames:?}")
        };
        assert!(channels.iter().all(|c| c.recovered == Some(false)));
    }

    #[test]
    fn a_failed_stream_is_judged_from_its_probes() {
        let chans = ch(&["posts.list", "resources/posts", REVALIDATE_CHANNEL]);
        let ok = Probe::Status(200);
        let refused = Probe::Status(500);
        assert_eq!(
            control_query(),
            "channels=revalidation",
            "Igniter registers `revalidation` itself"
        );
        // Down: no answer.
        let down = Probe::Unreachable("TypeError: Failed to fetch".into());
        assert!(!needs_channel_probes(&down));
        assert!(
            matches!(judge(&chans, &down, &[], None), Verdict::Outage(r) if r.contains("Failed to fetch"))
        );
        // The stream works now (a blip), or a proxy's 502: not a refusal.
        for s in [200, 502, 503, 429] {
            assert!(!needs_channel_probes(&Probe::Status(s)));
            assert!(matches!(
                judge(&chans, &Probe::Status(s), &[], None),
                Verdict::Outage(_)
            ));
        }
        // Igniter's 500 for one unregistered channel.
        assert!(needs_channel_probes(&refused));
        let each = [ok.clone(), refused.clone(), ok.clone()];
        let Verdict::Refused(r) = judge(&chans, &refused, &each, Some(&ok)) else {
            panic!()
        };
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].channel.as_str(), r[0].status),
            ("resources/posts", 500)
        );
        assert!(r[0].message.contains("`resources/posts`") && r[0].message.contains("HTTP 500"));
        // A server failing as a whole (even its own channel): an outage, nothing dropped.
        let all_refused = [refused.clone(), refused.clone(), refused.clone()];
        assert!(matches!(
            judge(&chans, &refused, &all_refused, Some(&refused)),
            Verdict::Outage(_)
        ));
        // 500 for the whole but every channel alone works: an outage (retry).
        assert!(matches!(
            judge(
                &chans,
                &refused,
                &[ok.clone(), ok.clone(), ok.clone()],
                Some(&ok)
            ),
            Verdict::Outage(_)
        ));
    }
}
