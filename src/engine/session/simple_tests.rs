//! The session over the seed's simple protocol (feature `simple`): a fake socket through the
//! [`SimpleTranslator`], as the browser shell drives it, and random schedules against a model.
//! Here, not in `simple.rs`: the translator knows nothing of the session above it.

use super::*;
use crate::engine::filter::TypeFilter;
use crate::engine::simple::{Protocol, SimpleTranslator};

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
        vec![r#"{"action":"publish","channel":"posts","type":"updated","payload":{"ids":[1]}}"#]
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
        sent[2], r#"{"action":"publish","channel":"users","type":"deleted","payload":{"ids":[4]}}"#,
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
                            .filter(|(_, c, f)| *c == channel && f.accepts(kind, ids.as_deref()))
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
