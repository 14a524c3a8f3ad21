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
    use crate::engine::filter::{Filter, TypeFilter};
    use crate::engine::frame::{decode_server, ServerFrame};
    use crate::engine::session::{ConnectionState, Output, Session, SessionConfig};

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

    /// The shell of `src/browser/client.rs` in the simple protocol, on a fake socket: what the
    /// server got, and what the app got.
    struct Harness {
        session: Session,
        translator: Option<SimpleTranslator>,
        connections: u64,
        to_server: Vec<String>,
        connects: usize,
        delivered: Vec<(Vec<u32>, String, String)>,
        resyncs: Vec<(Vec<u32>, String)>,
        acked: Vec<(u64, u64)>,
        now: u64,
    }

    impl Harness {
        fn new() -> Self {
            Harness {
                session: Session::new(SessionConfig {
                    protocol: Protocol::Simple,
                    ..SessionConfig::default()
                }),
                translator: None,
                connections: 0,
                to_server: Vec::new(),
                connects: 0,
                delivered: Vec::new(),
                resyncs: Vec::new(),
                acked: Vec::new(),
                now: 0,
            }
        }

        fn pump(&mut self) {
            while let Some(output) = self.session.poll_output() {
                match output {
                    Output::Connect => {
                        self.connects += 1;
                        self.connections += 1;
                        self.translator = Some(SimpleTranslator::new(self.connections));
                    }
                    Output::Send(text) => {
                        let t = self.translator.as_mut().expect("a connection");
                        let out = t.outgoing(&text).expect("translatable");
                        self.to_server.extend(out.send);
                        for reply in out.replies {
                            self.session.handle_text(self.now, &reply);
                        }
                    }
                    Output::Disconnect => self.translator = None,
                    Output::Deliver { subs, event } => {
                        self.delivered.push((subs, event.kind, event.payload))
                    }
                    Output::Resync { subs, reason, .. } => self.resyncs.push((subs, reason)),
                    Output::PublishAcked { id, seq } => self.acked.push((id, seq)),
                    Output::Problem(p) => panic!("problem: {p}"),
                    _ => {}
                }
            }
        }

        fn open(&mut self) {
            self.now += 10;
            self.session.handle_open(self.now);
            let hello = self.translator.as_ref().expect("connecting").hello();
            self.session.handle_text(self.now, &hello);
            self.pump();
        }

        fn server_sends(&mut self, text: &str) {
            let frame = self
                .translator
                .as_mut()
                .expect("open")
                .incoming(text, 5.0)
                .expect("valid");
            if let Some(frame) = frame {
                self.session.handle_text(self.now, &frame);
            }
            self.pump();
        }

        fn drop_connection(&mut self) {
            self.translator = None;
            self.session
                .handle_close(self.now, "connection closed (code 1006)");
            self.pump();
            // The backoff's wait, then the next attempt.
            let at = self.session.poll_timeout().expect("a retry is due");
            self.now = at;
            self.session.handle_timeout(at);
            self.pump();
        }

        fn take_sent(&mut self) -> Vec<String> {
            core::mem::take(&mut self.to_server)
        }
    }

    fn filter(types: &[&str], ids: Option<&[&str]>) -> Filter {
        Filter::new(
            TypeFilter::from_types(types.iter().map(|s| s.to_string())),
            ids.map(|v| v.iter().map(|s| s.to_string()).collect()),
        )
    }

    #[test]
    fn the_session_over_the_simple_protocol() {
        let mut h = Harness::new();
        let list = h.session.subscribe(0, "posts", filter(&["*"], None));
        let one = h
            .session
            .subscribe(0, "posts", filter(&["*"], Some(&["2"])));
        let creates = h.session.subscribe(0, "users", filter(&["created"], None));
        h.pump();
        assert_eq!(h.connects, 1);
        h.open();
        assert_eq!(h.session.state(), &ConnectionState::Open);
        let mut sent = h.take_sent();
        sent.sort();
        assert_eq!(
            sent,
            vec![
                r#"{"action":"subscribe","channel":"posts"}"#,
                r#"{"action":"subscribe","channel":"users"}"#
            ],
            "one subscribe per channel, however many subscriptions"
        );
        assert!(
            h.resyncs.is_empty(),
            "nothing to resync on a first connection"
        );
        assert_eq!(
            h.session.subscription_status(one).map(|s| s.name()),
            Some("subscribed")
        );

        // Filtering: types, ids compared as strings (Refine's Ably rule: `created` passes ids).
        h.server_sends(r#"{"channel":"posts","type":"updated","payload":{"ids":[3]}}"#);
        h.server_sends(r#"{"channel":"posts","type":"updated","payload":{"ids":["2"]}}"#);
        h.server_sends(r#"{"channel":"posts","type":"created","payload":{"ids":[9]}}"#);
        h.server_sends(r#"{"channel":"users","type":"updated","payload":{}}"#);
        h.server_sends(r#"{"channel":"users","type":"created","payload":{"id":1}}"#);
        let got: Vec<(Vec<u32>, &str)> = h
            .delivered
            .iter()
            .map(|(s, k, _)| (s.clone(), k.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (vec![list], "updated"),
                (vec![list, one], "updated"),
                (vec![list, one], "created"),
                (vec![creates], "created"),
            ]
        );

        // A publish is acked (seq 0) once handed to the socket.
        let id = h
            .session
            .publish(h.now, "posts", "updated", r#"{"ids":[1]}"#, 1.0, None)
            .expect("valid");
        h.pump();
        assert_eq!(h.acked, vec![(id, 0)]);
        assert_eq!(
            h.take_sent(),
            vec![
                r#"{"action":"publish","channel":"posts","type":"updated","payload":{"ids":[1]}}"#
            ]
        );

        // The server drops the connection: reconnect, resubscribe, one resync per subscription.
        h.delivered.clear();
        h.drop_connection();
        assert_eq!(h.connects, 2);
        // A publish while disconnected waits for the connection.
        let queued = h
            .session
            .publish(h.now, "users", "deleted", r#"{"ids":[4]}"#, 1.0, None)
            .expect("valid");
        h.pump();
        assert!(h.acked.len() == 1 && h.take_sent().is_empty());
        h.open();
        let sent = h.take_sent();
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert!(sent.contains(&r#"{"action":"subscribe","channel":"posts"}"#.to_owned()));
        assert!(sent.contains(&r#"{"action":"subscribe","channel":"users"}"#.to_owned()));
        assert_eq!(
            sent[2],
            r#"{"action":"publish","channel":"users","type":"deleted","payload":{"ids":[4]}}"#,
            "the queued publish goes out after the subscribes"
        );
        assert_eq!(h.acked[1], (queued, 0));
        let mut resynced: Vec<u32> = h.resyncs.iter().flat_map(|(s, _)| s.clone()).collect();
        resynced.sort();
        assert_eq!(resynced, vec![list, one, creates]);
        assert!(
            h.resyncs[0].1.contains("simple protocol"),
            "{:?}",
            h.resyncs
        );
        assert_eq!(h.session.stats().resyncs, 2, "one per channel");

        // Events flow again, numbered afresh on the new connection.
        h.server_sends(r#"{"channel":"posts","type":"deleted","payload":{"ids":[2]}}"#);
        assert_eq!(h.delivered.len(), 1);
        assert_eq!(h.delivered[0].0, vec![list, one]);

        // The last subscription of a channel sends the unsubscribe; not before.
        h.session.unsubscribe(h.now, list);
        h.pump();
        assert!(h.take_sent().is_empty());
        h.session.unsubscribe(h.now, one);
        h.pump();
        assert_eq!(
            h.take_sent(),
            vec![r#"{"action":"unsubscribe","channel":"posts"}"#]
        );
        h.server_sends(r#"{"channel":"posts","type":"deleted","payload":{}}"#);
        assert_eq!(h.delivered.len(), 1, "nothing for an ended channel");

        // Idle close after the last subscription.
        h.session.unsubscribe(h.now, creates);
        h.pump();
        let deadline = h.session.poll_timeout().expect("idle close armed");
        h.session.handle_timeout(deadline);
        h.pump();
        assert_eq!(h.session.state(), &ConnectionState::Idle);
        assert!(h.translator.is_none(), "the socket was closed");
        assert_eq!(h.session.stats().problems, 0);
    }

    #[test]
    fn a_channel_subscribed_again_on_one_connection_starts_afresh() {
        let mut h = Harness::new();
        let a = h.session.subscribe(0, "posts", filter(&["*"], None));
        h.pump();
        h.open();
        h.server_sends(r#"{"channel":"posts","type":"updated","payload":{}}"#);
        h.session.unsubscribe(h.now, a);
        let b = h.session.subscribe(h.now, "posts", filter(&["*"], None));
        h.pump();
        assert_eq!(
            h.take_sent(),
            vec![
                r#"{"action":"subscribe","channel":"posts"}"#,
                r#"{"action":"unsubscribe","channel":"posts"}"#,
                r#"{"action":"subscribe","channel":"posts"}"#
            ]
        );
        h.server_sends(r#"{"channel":"posts","type":"updated","payload":{}}"#);
        assert_eq!(h.delivered.len(), 2);
        assert_eq!(h.delivered[1].0, vec![b]);
        assert!(h.resyncs.is_empty());
    }

    /// The seed's server side for one client, as `tests/simple/server.mjs` does it: which channels
    /// the current connection subscribed to. Panics on a frame the seed's client would not send.
    #[derive(Default)]
    struct SeedServer {
        subscribed: alloc::collections::BTreeSet<String>,
        published: usize,
    }

    impl SeedServer {
        fn receive(&mut self, frame: &str) {
            let v: serde_json::Value = serde_json::from_str(frame).expect("JSON");
            let channel = v["channel"].as_str().expect("a channel").to_owned();
            match v["action"].as_str() {
                Some("subscribe") => {
                    assert!(self.subscribed.insert(channel), "subscribed twice: {frame}")
                }
                Some("unsubscribe") => {
                    assert!(self.subscribed.remove(&channel), "not subscribed: {frame}")
                }
                Some("publish") => {
                    assert!(v["type"].is_string() && v["payload"].is_object(), "{frame}");
                    self.published += 1;
                }
                _ => panic!("not a seed client frame: {frame}"),
            }
        }
    }

    /// Random schedules of subscribes, unsubscribes, server events, publishes and dropped
    /// connections (with changes while disconnected), checked step by step against a plain model:
    /// the server's channel set is the client's; each event reaches exactly the subscriptions whose
    /// filter accepts it; after a reconnect exactly the subscriptions of channels that were
    /// subscribed before get one `$resync` each; every publish is acked with seq 0 and reaches the
    /// server once.
    #[test]
    fn random_schedules_against_a_model() {
        use crate::engine::backoff::XorShift;
        let channels = ["a", "b", "c"];
        let kinds = ["created", "updated", "deleted"];
        let type_filters: [&[&str]; 3] = [&["*"], &["created"], &["updated", "deleted"]];
        let id_filters: [Option<&[&str]>; 3] = [None, Some(&["1"]), Some(&["2", "3"])];
        let payloads = [r#"{"ids":[1]}"#, r#"{"ids":["2"]}"#, r#"{"x":true}"#];
        let (mut events, mut resyncs, mut drops, mut total_publishes) = (0, 0, 0, 0);
        for seed in 1..=300u64 {
            let mut rng = XorShift::new(seed);
            let mut pick = |n: usize| (rng.next_u64() % n as u64) as usize;
            let mut h = Harness::new();
            let mut server = SeedServer::default();
            // sub -> (channel, filter); channels confirmed on a connection (they have a position).
            let mut subs: Vec<(u32, &str, Filter)> = Vec::new();
            let mut confirmed: alloc::collections::BTreeSet<&str> = Default::default();
            let mut connected = false;
            let mut publishes = 0;
            for step in 0..120 {
                h.delivered.clear();
                h.resyncs.clear();
                let ctx = format!("seed {seed} step {step}");
                match pick(10) {
                    0..=2 => {
                        let channel = channels[pick(3)];
                        let filter = filter(type_filters[pick(3)], id_filters[pick(3)]);
                        let id = h.session.subscribe(h.now, channel, filter.clone());
                        h.pump();
                        subs.push((id, channel, filter));
                    }
                    3 | 4 if !subs.is_empty() => {
                        let (id, channel, _) = subs.remove(pick(subs.len()));
                        assert!(h.session.unsubscribe(h.now, id));
                        h.pump();
                        if !subs.iter().any(|(_, c, _)| *c == channel) {
                            confirmed.remove(channel);
                        }
                    }
                    5..=7 if connected => {
                        let channel = channels[pick(3)];
                        let (kind, payload) = (kinds[pick(3)], payloads[pick(3)]);
                        if server.subscribed.contains(channel) {
                            let text = format!(
                                r#"{{"channel":"{channel}","type":"{kind}","payload":{payload}}}"#
                            );
                            h.server_sends(&text);
                            let ids = crate::engine::payload_ids(payload).expect("ids");
                            let want: Vec<u32> = subs
                                .iter()
                                .filter(|(_, c, f)| {
                                    *c == channel && f.accepts(kind, ids.as_deref())
                                })
                                .map(|(id, _, _)| *id)
                                .collect();
                            let mut got: Vec<u32> =
                                h.delivered.iter().flat_map(|(s, _, _)| s.clone()).collect();
                            got.sort();
                            assert_eq!(got, want, "{ctx}: {text}");
                            events += 1;
                        }
                    }
                    8 => {
                        let payload = payloads[pick(3)];
                        let id = h
                            .session
                            .publish(h.now, channels[pick(3)], kinds[pick(3)], payload, 1.0, None)
                            .expect("valid");
                        h.pump();
                        publishes += 1;
                        if connected {
                            assert_eq!(h.acked.last(), Some(&(id, 0)), "{ctx}");
                        }
                    }
                    _ if connected => {
                        drops += 1;
                        h.translator = None;
                        h.session
                            .handle_close(h.now, "connection closed (code 1006)");
                        h.pump();
                        server = SeedServer {
                            published: server.published,
                            ..SeedServer::default()
                        };
                        connected = false;
                    }
                    _ => {
                        // Reconnect (when there is something to connect for).
                        if let Some(at) = h.session.poll_timeout() {
                            h.now = h.now.max(at);
                            h.session.handle_timeout(h.now);
                            h.pump();
                        }
                        if h.translator.is_some() {
                            h.open();
                            connected = true;
                            let mut got: Vec<u32> =
                                h.resyncs.iter().flat_map(|(s, _)| s.clone()).collect();
                            got.sort();
                            let want: Vec<u32> = subs
                                .iter()
                                .filter(|(_, c, _)| confirmed.contains(c))
                                .map(|(id, _, _)| *id)
                                .collect();
                            assert_eq!(got, want, "{ctx}: one $resync per subscription");
                            resyncs += got.len();
                        }
                    }
                }
                for frame in h.take_sent() {
                    server.receive(&frame);
                }
                if connected {
                    let client: alloc::collections::BTreeSet<String> =
                        h.session.registry().channels().map(str::to_owned).collect();
                    assert_eq!(server.subscribed, client, "{ctx}");
                    confirmed.extend(subs.iter().map(|(_, c, _)| *c));
                }
                assert_eq!(server.published, h.acked.len(), "{ctx}: acked = sent once");
                assert!(h.acked.iter().all(|(_, seq)| *seq == 0));
            }
            assert!(server.published <= publishes, "seed {seed}");
            total_publishes += server.published;
        }
        eprintln!("{events} events, {resyncs} resyncs, {drops} drops, {total_publishes} publishes");
        assert!(
            events > 3_000 && resyncs > 300 && drops > 300 && total_publishes > 1_000,
            "the schedules exercised little: {events} events, {resyncs} resyncs, {drops} drops, {total_publishes} publishes"
        );
    }
}
