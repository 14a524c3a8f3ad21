//! Randomized fault schedules: the sans-IO session against a simulated relay on a simulated
//! network with a fake clock. Each seed draws its own schedule of connection cuts (announced and
//! silent), latencies, duplicated frames and relay restarts with and without history, while a
//! publisher streams numbered events. Checked for every subscription:
//!
//! - every event is delivered at most once, in publication order;
//! - every event missed is covered by a resync event, and a subscription gets exactly one resync
//!   per unrecoverable resubscription of its channel (none at all when history covers every gap);
//! - after the faults stop, delivery catches up with the last event published;
//! - a publish from the client is acknowledged at most once and published at most once per relay
//!   epoch, however often it was resent.
//!
//! Every other seed runs with authentication: the session asks for a token before each connection
//! (a tenth of the requests fail while faults last), the relay wants `auth` first, gives short
//! tokens (4 s) and ends a connection whose token expires (error `unauthorized`, then the close);
//! the same guarantees must hold, and once the faults stop no token may expire (refreshes in-band).
//!
//! Half of the seeds give the session three relay URLs: the nodes of one cluster, sharing the
//! simulated relay's state (one epoch, one history, one set of publish keys). Nodes also go down
//! (refusing connections, the client's connection on it cut) and come back. The same guarantees
//! must hold, and every connection attempt must go to the node after the previous attempt's.
#![cfg(not(target_arch = "wasm32"))]

use live_relay::history::{ChannelLog, HistoryLimits, Replay};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use wasm_live_provider::engine::backoff::XorShift;
use wasm_live_provider::engine::frame::{
    decode_client, decode_server, encode_ack, encode_authed, encode_error, encode_event,
    encode_hello, encode_ping, encode_subscribed, ChannelEntry, ClientFrame, ErrorCode,
    ServerFrame,
};
use wasm_live_provider::engine::{Filter, Output, Session, SessionConfig, SubId, TypeFilter};

const SEEDS: u64 = 1000;
const CHANNELS: [&str; 3] = ["c0", "c1", "c2"];
const FAULTY_MS: u64 = 30_000;
const QUIET_MS: u64 = 60_000;
const PING_MS: u64 = 5_000;
/// Lifetime of the tokens of authenticated seeds.
const TOKEN_MS: u64 = 4_000;
/// Relay URLs of the cluster seeds.
const NODES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// History large enough for every gap; restarts keep it (as with a shared store).
    FullHistory,
    /// Five events per channel: long cuts lose events.
    ShortHistory,
    /// Restarts sometimes lose everything (new epoch).
    Restarts,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Happening {
    /// The client's socket opens on connection `conn`.
    Open(u64),
    ToClient(u64, String),
    ToRelay(u64, String),
    /// The client learns connection `conn` is closed.
    Closed(u64),
    Publish,
    ClientPublish,
    Fault,
    Ping,
    /// The answer to the session's token request: a token expiring at this time, or a failure.
    Token(u64, Option<u64>),
    /// The token of connection `conn` that expires at this time does so now (unless refreshed).
    Expiry(u64, u64),
}

/// What a subscription saw.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// (epoch number, seq)
    Event(u32, u64),
    Resync,
}

struct Relay {
    epoch_n: u32,
    limits: HistoryLimits,
    logs: HashMap<String, ChannelLog<String>>,
    /// Every event ever published, per channel, as (epoch number, seq), in order.
    published: HashMap<String, Vec<(u32, u64)>>,
    keys: HashMap<String, u64>,
    /// Times a publish key was published per epoch (must stay 1: a relay that lost its state in a
    /// restart cannot know what it published before).
    published_keys: HashMap<String, u32>,
    conn: Option<u64>,
    subscribed: HashSet<String>,
    up: bool,
    /// Authentication on: `auth` must come first; tokens expire.
    auth: bool,
    /// When the current connection's token expires (none: no token yet).
    token_exp: Option<u64>,
    /// Set by `receive` when the relay ends the connection (unauthorized).
    closing: bool,
}

impl Relay {
    fn epoch(&self) -> String {
        format!("epoch{}", self.epoch_n)
    }

    fn publish(
        &mut self,
        now: u64,
        channel: &str,
        key: Option<&str>,
        out: &mut Vec<String>,
    ) -> u64 {
        if let Some(k) = key {
            if let Some(seq) = self.keys.get(k) {
                return *seq;
            }
            *self
                .published_keys
                .entry(format!("{k} in epoch {}", self.epoch_n))
                .or_default() += 1;
        }
        let log = self.logs.entry(channel.to_owned()).or_default();
        let seq = log.next_seq();
        let payload = serde_json::value::RawValue::from_string(format!(
            r#"{{"epoch":{},"seq":{seq}}}"#,
            self.epoch_n
        ))
        .expect("valid JSON");
        let frame = encode_event(channel, seq, "updated", &payload, now as f64, None);
        log.push(now, &self.limits, frame.clone());
        self.published
            .entry(channel.to_owned())
            .or_default()
            .push((self.epoch_n, seq));
        if let Some(k) = key {
            self.keys.insert(k.to_owned(), seq);
        }
        if self.conn.is_some() && self.subscribed.contains(channel) {
            out.push(frame);
        }
        seq
    }

    /// Handles one client frame; returns the frames to send back, in order.
    fn receive(&mut self, now: u64, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let frame = decode_client(text).expect("the session sends valid frames");
        if let ClientFrame::Auth { token } = &frame {
            assert!(self.auth, "an auth frame to a relay without authentication");
            let exp: u64 = token[1..].parse().expect("a token of the simulation");
            if exp > now {
                self.token_exp = Some(exp);
                out.push(encode_authed(Some("u"), Some(exp - now)));
            } else {
                out.push(encode_error(ErrorCode::Unauthorized, "expired", None));
                // A refused refresh keeps the old token; a refused first token ends the connection.
                self.closing = self.token_exp.is_none();
            }
            return out;
        }
        if self.auth && self.token_exp.is_none_or(|e| e <= now) {
            out.push(encode_error(ErrorCode::Unauthorized, "auth first", None));
            self.closing = true;
            return out;
        }
        match frame {
            ClientFrame::Subscribe { channels } => {
                let mut answers = Vec::new();
                let mut replay = Vec::new();
                for entry in &channels {
                    let log = self.logs.entry(entry.channel.to_string()).or_default();
                    let last = log.last_seq();
                    let recovered = entry.since.as_ref().map(|since| {
                        if since.epoch != format!("epoch{}", self.epoch_n) {
                            return false;
                        }
                        match log.since(now, &self.limits, since.seq) {
                            Replay::Events(events) => {
                                replay.extend(events.into_iter().cloned());
                                true
                            }
                            Replay::Gap => false,
                        }
                    });
                    self.subscribed.insert(entry.channel.to_string());
                    answers.push(ChannelEntry {
                        seq: Some(last),
                        recovered,
                        ..ChannelEntry::named(entry.channel.clone())
                    });
                }
                out.push(encode_subscribed(&answers));
                out.extend(replay);
            }
            ClientFrame::Unsubscribe { channels } => {
                for c in channels {
                    self.subscribed.remove(c.channel.as_ref());
                }
            }
            ClientFrame::Publish { id, event } => {
                let mut events = Vec::new();
                let seq = self.publish(now, &event.channel, event.key.as_deref(), &mut events);
                out.extend(events);
                out.push(encode_ack(id, seq));
            }
            ClientFrame::Ping | ClientFrame::Pong | ClientFrame::Presence(_) => {}
            ClientFrame::Auth { .. } => unreachable!("handled above"),
        }
        out
    }

    fn drop_conn(&mut self) {
        self.conn = None;
        self.subscribed.clear();
        self.token_exp = None;
    }
}

struct Sim {
    now: u64,
    rng: XorShift,
    mode: Mode,
    queue: BinaryHeap<Reverse<(u64, u64, Happening)>>,
    order: u64,
    /// Per direction: the time the last frame of the current connection arrives (TCP keeps order).
    last_to_client: u64,
    last_to_relay: u64,
    next_conn: u64,
    /// The connection the client's transport is on, if any.
    client_conn: Option<u64>,
    relay: Relay,
    session: Session,
    subs: Vec<(SubId, &'static str, u64)>,
    seen: HashMap<SubId, Vec<Seen>>,
    publishes: BTreeMap<u64, u32>,
    acks: HashMap<u64, u32>,
    failed: HashSet<u64>,
    /// `recovered: false` answers that reached the client: (connection, channel).
    unrecovered_seen: HashSet<(u64, String)>,
    /// Token requests answered, failed on purpose, and expiries (relay closes) before and after the
    /// faults stopped.
    tokens: u64,
    token_failures: u64,
    expiries: (u64, u64),
    seed: u64,
    /// Per relay URL (one, or [`NODES`] for cluster seeds): whether the node accepts connections.
    nodes: Vec<bool>,
    /// The node of the last connection attempt, and of the client's current connection.
    last_node: Option<usize>,
    client_node: Option<usize>,
    /// Connection attempts per node, and node outages.
    node_connects: Vec<u64>,
    node_outages: u64,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mode = match seed % 3 {
            0 => Mode::FullHistory,
            1 => Mode::ShortHistory,
            _ => Mode::Restarts,
        };
        let limits = match mode {
            Mode::ShortHistory => HistoryLimits {
                max_events: 5,
                max_age_ms: 3_600_000,
            },
            _ => HistoryLimits {
                max_events: 1_000_000,
                max_age_ms: 3_600_000,
            },
        };
        let auth = seed % 2 == 1;
        let nodes = if seed % 4 >= 2 { NODES } else { 1 };
        let cfg = SessionConfig {
            seed,
            backoff_min_ms: 100,
            backoff_max_ms: 3_000,
            auth,
            relays: nodes,
            ..SessionConfig::default()
        };
        Sim {
            now: 0,
            rng: XorShift::new(seed),
            mode,
            queue: BinaryHeap::new(),
            order: 0,
            last_to_client: 0,
            last_to_relay: 0,
            next_conn: 0,
            client_conn: None,
            relay: Relay {
                epoch_n: 1,
                limits,
                logs: HashMap::new(),
                published: HashMap::new(),
                keys: HashMap::new(),
                published_keys: HashMap::new(),
                conn: None,
                subscribed: HashSet::new(),
                up: true,
                auth,
                token_exp: None,
                closing: false,
            },
            session: Session::new(cfg),
            subs: Vec::new(),
            seen: HashMap::new(),
            publishes: BTreeMap::new(),
            acks: HashMap::new(),
            failed: HashSet::new(),
            unrecovered_seen: HashSet::new(),
            tokens: 0,
            token_failures: 0,
            expiries: (0, 0),
            seed,
            nodes: vec![true; nodes],
            last_node: None,
            client_node: None,
            node_connects: vec![0; nodes],
            node_outages: 0,
        }
    }

    /// The relay ends the current connection: the client hears of it after the frames in flight.
    fn relay_closes(&mut self, conn: u64) {
        self.relay.drop_conn();
        let t = self.last_to_client.max(self.now) + 1;
        self.at(t, Happening::Closed(conn));
    }

    fn at(&mut self, time: u64, what: Happening) {
        self.order += 1;
        self.queue.push(Reverse((time, self.order, what)));
    }

    fn latency(&mut self) -> u64 {
        1 + self.rng.below(150)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.below(100) < percent
    }

    fn send_to_client(&mut self, conn: u64, text: String) {
        let t = (self.now + self.latency()).max(self.last_to_client);
        self.last_to_client = t;
        let dup = self.chance(3);
        self.at(t, Happening::ToClient(conn, text.clone()));
        if dup {
            self.at(t, Happening::ToClient(conn, text));
        }
    }

    fn subscribe(&mut self, channel: &'static str) {
        let id = self
            .session
            .subscribe(self.now, channel, Filter::new(TypeFilter::All, None));
        self.subs.push((id, channel, self.now));
        self.seen.insert(id, Vec::new());
    }

    fn drain(&mut self) {
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Connect => {
                    // Every attempt follows a failed attempt or a lost connection (no offline
                    // page, no idle time here): it goes to the next node.
                    let node = self.session.relay();
                    let expected = self.last_node.map_or(0, |n| (n + 1) % self.nodes.len());
                    assert_eq!(
                        node, expected,
                        "seed {}: the attempt after one on node {:?} went to node {node}",
                        self.seed, self.last_node
                    );
                    self.last_node = Some(node);
                    self.client_node = Some(node);
                    self.node_connects[node] += 1;
                    self.next_conn += 1;
                    let conn = self.next_conn;
                    self.client_conn = Some(conn);
                    let t = self.now + self.latency();
                    if self.relay.up && self.nodes[node] {
                        self.relay.drop_conn();
                        self.relay.conn = Some(conn);
                        self.last_to_client = t;
                        self.last_to_relay = t;
                        self.at(t, Happening::Open(conn));
                        let hello = encode_hello(&self.relay.epoch(), PING_MS);
                        self.send_to_client(conn, hello);
                    } else {
                        self.at(t, Happening::Closed(conn));
                    }
                }
                Output::Send(text) => {
                    if let Some(conn) = self.client_conn {
                        let t = (self.now + self.latency()).max(self.last_to_relay);
                        self.last_to_relay = t;
                        self.at(t, Happening::ToRelay(conn, text));
                    }
                }
                Output::Disconnect => {
                    if self.client_conn.take().is_some() {
                        self.relay.drop_conn();
                    }
                }
                Output::Deliver { subs, event } => {
                    let v: serde_json::Value =
                        serde_json::from_str(&event.payload).expect("payload");
                    let epoch = v["epoch"].as_u64().expect("epoch") as u32;
                    assert_eq!(v["seq"].as_u64(), Some(event.seq));
                    for s in subs {
                        self.seen
                            .get_mut(&s)
                            .expect("known sub")
                            .push(Seen::Event(epoch, event.seq));
                    }
                }
                Output::Resync { subs, .. } => {
                    for s in subs {
                        self.seen.get_mut(&s).expect("known sub").push(Seen::Resync);
                    }
                }
                Output::PublishAcked { id, .. } => *self.acks.entry(id).or_default() += 1,
                Output::PublishFailed { id, .. } => {
                    self.failed.insert(id);
                }
                Output::State(_) | Output::Problem(_) | Output::Error { .. } => {}
                Output::NeedToken { request } => {
                    let fail = self.now < FAULTY_MS && self.chance(10);
                    let exp = (!fail).then_some(self.now + TOKEN_MS);
                    let t = self.now + self.latency();
                    self.at(t, Happening::Token(request, exp));
                }
                // The SSE outputs exist when the client crate's `sse` feature is on (as under
                // `--all-features`); this simulation runs the WebSocket transport.
                #[allow(unreachable_patterns)]
                other => panic!("the simulation runs the WebSocket transport, got {other:?}"),
            }
        }
    }

    fn cut(&mut self, announced: bool) {
        if let Some(conn) = self.client_conn {
            self.relay.drop_conn();
            if announced {
                let t = self.now + self.latency();
                self.at(t, Happening::Closed(conn));
            }
        }
    }

    fn fault(&mut self) {
        match self.rng.below(100) {
            0..=49 => self.cut(true),
            50..=59 => self.cut(false), // silent: only the missing pings tell
            60..=79 => {
                // Restart: down for a while, then back (with or without history).
                self.cut(true);
                self.relay.up = false;
                let lose = self.mode == Mode::Restarts && self.chance(50);
                let down = 50 + self.rng.below(2_000);
                let back = self.now + down;
                self.at(back, Happening::Fault); // the next fault check also brings it back
                if lose {
                    self.relay.epoch_n += 1;
                    self.relay.logs.clear();
                    self.relay.keys.clear();
                }
            }
            80..=89 if self.nodes.len() > 1 => {
                // A node goes down: it refuses connections, and the client's connection on it is cut.
                let node = self.rng.below(self.nodes.len() as u64) as usize;
                if self.nodes[node] {
                    self.nodes[node] = false;
                    self.node_outages += 1;
                    if self.client_node == Some(node) {
                        self.cut(true);
                    }
                }
            }
            _ => {} // a calm moment
        }
        if !self.relay.up && self.chance(70) {
            self.relay.up = true;
        }
        if self.chance(40) {
            let node = self.rng.below(self.nodes.len() as u64) as usize;
            self.nodes[node] = true;
        }
    }

    fn run(mut self) -> Self {
        for c in CHANNELS {
            self.subscribe(c);
            self.subscribe(c);
        }
        self.drain();
        self.at(10, Happening::Publish);
        self.at(15, Happening::ClientPublish);
        self.at(200, Happening::Fault);
        self.at(PING_MS, Happening::Ping);
        let end = FAULTY_MS + QUIET_MS;
        let mut late_sub = false;
        loop {
            let next_event = self.queue.peek().map(|Reverse((t, _, _))| *t);
            let next_timer = self.session.poll_timeout();
            let t = match (next_event, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if t > end {
                break;
            }
            self.now = t;
            if !late_sub && self.now >= FAULTY_MS / 2 {
                late_sub = true;
                self.subscribe("c1"); // a subscription added mid-way starts from "now"
            }
            if next_timer == Some(t) && next_event != Some(t) {
                self.session.handle_timeout(t);
                self.drain();
                continue;
            }
            let Some(Reverse((_, _, what))) = self.queue.pop() else {
                break;
            };
            let faulty = self.now < FAULTY_MS;
            match what {
                Happening::Open(conn) if self.client_conn == Some(conn) => {
                    self.session.handle_open(t)
                }
                Happening::ToClient(conn, text) if self.client_conn == Some(conn) => {
                    if let Ok(ServerFrame::Subscribed { channels }) = decode_server(&text) {
                        for c in channels.iter().filter(|c| c.recovered == Some(false)) {
                            self.unrecovered_seen.insert((conn, c.channel.to_string()));
                        }
                    }
                    self.session.handle_text(t, &text)
                }
                Happening::ToRelay(conn, text) if self.relay.conn == Some(conn) => {
                    let before = self.relay.token_exp;
                    for reply in self.relay.receive(t, &text) {
                        self.send_to_client(conn, reply);
                    }
                    if let Some(exp) = self.relay.token_exp.filter(|e| Some(*e) != before) {
                        self.at(exp, Happening::Expiry(conn, exp));
                    }
                    if std::mem::take(&mut self.relay.closing) {
                        self.relay_closes(conn);
                    }
                }
                Happening::Token(request, exp) => {
                    let answer = match exp {
                        Some(exp) => {
                            self.tokens += 1;
                            Ok(format!("t{exp}"))
                        }
                        None => {
                            self.token_failures += 1;
                            Err("the token service is down".to_owned())
                        }
                    };
                    self.session.handle_token(t, request, answer);
                }
                Happening::Expiry(conn, exp) => {
                    if self.relay.conn == Some(conn) && self.relay.token_exp == Some(exp) {
                        if faulty {
                            self.expiries.0 += 1;
                        } else {
                            self.expiries.1 += 1;
                        }
                        let text = encode_error(ErrorCode::Unauthorized, "token expired", None);
                        self.send_to_client(conn, text);
                        self.relay_closes(conn);
                    }
                }
                Happening::Closed(conn) if self.client_conn == Some(conn) => {
                    self.client_conn = None;
                    self.session.handle_close(t, "cut");
                }
                Happening::Publish => {
                    let channel = CHANNELS[self.rng.below(3) as usize];
                    let mut frames = Vec::new();
                    self.relay.publish(t, channel, None, &mut frames);
                    if let Some(conn) = self.relay.conn {
                        for f in frames {
                            self.send_to_client(conn, f);
                        }
                    }
                    if faulty || self.now < FAULTY_MS + 5_000 {
                        let next = t + 5 + self.rng.below(60);
                        self.at(next, Happening::Publish);
                    }
                }
                Happening::ClientPublish => {
                    if let Ok(id) = self
                        .session
                        .publish(t, "c0", "updated", "{}", t as f64, None)
                    {
                        self.publishes.insert(id, 0);
                    }
                    if faulty {
                        let next = t + 100 + self.rng.below(700);
                        self.at(next, Happening::ClientPublish);
                    }
                }
                Happening::Fault => {
                    if faulty {
                        self.fault();
                        let next = t + 100 + self.rng.below(1_500);
                        self.at(next, Happening::Fault);
                    } else {
                        self.relay.up = true;
                        self.nodes.iter_mut().for_each(|up| *up = true);
                    }
                }
                Happening::Ping => {
                    if let Some(conn) = self.relay.conn {
                        self.send_to_client(conn, encode_ping());
                    }
                    self.at(t + PING_MS, Happening::Ping);
                }
                // Frames and events of a connection that is gone.
                Happening::Open(_)
                | Happening::ToClient(..)
                | Happening::ToRelay(..)
                | Happening::Closed(_) => {}
            }
            self.drain();
        }
        self
    }
}

/// Checks one subscription's deliveries against what was published on its channel.
fn check_subscription(
    seed: u64,
    mode: Mode,
    sim: &Sim,
    sub: SubId,
    channel: &str,
    since: u64,
) -> (usize, usize) {
    let seen = &sim.seen[&sub];
    let published = sim
        .relay
        .published
        .get(channel)
        .cloned()
        .unwrap_or_default();
    let ctx = || format!("seed {seed} ({mode:?}), subscription {sub} on {channel}");
    // Position of each published event in publication order.
    let index: HashMap<(u32, u64), usize> =
        published.iter().enumerate().map(|(i, e)| (*e, i)).collect();

    let mut last: Option<usize> = None;
    let mut resyncs_since_last = 0;
    let mut resyncs = 0;
    let mut events = 0;
    for item in seen {
        match item {
            Seen::Resync => {
                resyncs += 1;
                resyncs_since_last += 1;
            }
            Seen::Event(epoch, seq) => {
                events += 1;
                let i = *index
                    .get(&(*epoch, *seq))
                    .unwrap_or_else(|| panic!("{}: unknown event {epoch}/{seq}", ctx()));
                if let Some(l) = last {
                    assert!(
                        i > l,
                        "{}: event {epoch}/{seq} delivered twice or out of order",
                        ctx()
                    );
                    if i != l + 1 {
                        assert!(
                            resyncs_since_last > 0,
                            "{}: events {}..{} lost without a resync",
                            ctx(),
                            l + 1,
                            i
                        );
                    }
                }
                last = Some(i);
                resyncs_since_last = 0;
            }
        }
    }
    // Caught up: the last published event (after the subscription started) was delivered, or a
    // resync came after the last delivery.
    match (last, published.len().checked_sub(1)) {
        (Some(l), Some(newest)) => {
            assert!(
                l == newest || resyncs_since_last > 0,
                "{}: stopped at {l} of {newest} without a resync",
                ctx()
            )
        }
        (None, Some(_)) if since == 0 => {
            panic!("{}: nothing delivered of {} events", ctx(), published.len())
        }
        _ => {}
    }
    let unrecovered = sim
        .unrecovered_seen
        .iter()
        .filter(|(_, c)| c == channel)
        .count();
    if since == 0 {
        assert_eq!(
            resyncs,
            unrecovered,
            "{}: one resync per unrecoverable resubscription ({unrecovered}), got {resyncs}",
            ctx()
        );
    } else {
        assert!(
            resyncs <= unrecovered,
            "{}: {resyncs} resyncs for {unrecovered} unrecoverable answers",
            ctx()
        );
    }
    if mode == Mode::FullHistory {
        assert_eq!(
            resyncs,
            0,
            "{}: history covered every gap, yet a resync",
            ctx()
        );
    }
    (events, resyncs)
}

#[test]
fn exactly_once_in_order_or_one_resync_under_random_faults() {
    let mut totals = (0usize, 0usize, 0u64, 0u64);
    let mut published = 0usize;
    let (mut tokens, mut token_failures, mut expiries) = (0u64, 0u64, 0u64);
    let (mut node_connects, mut node_outages) = ([0u64; NODES], 0u64);
    for seed in 0..SEEDS {
        let sim = Sim::new(seed).run();
        let mode = sim.mode;
        published += sim.relay.published.values().map(Vec::len).sum::<usize>();
        for (sub, channel, since) in sim.subs.clone() {
            let (events, resyncs) = check_subscription(seed, mode, &sim, sub, channel, since);
            totals.0 += events;
            totals.1 += resyncs;
        }
        for (key, times) in &sim.relay.published_keys {
            assert_eq!(
                *times, 1,
                "seed {seed}: publish key {key} published {times} times"
            );
        }
        for id in sim.publishes.keys() {
            let acks = sim.acks.get(id).copied().unwrap_or(0);
            let failed = sim.failed.contains(id);
            assert!(acks <= 1, "seed {seed}: publish {id} acked {acks} times");
            assert!(
                acks == 1 || failed,
                "seed {seed}: publish {id} never settled"
            );
            assert!(
                !(acks == 1 && failed),
                "seed {seed}: publish {id} both acked and failed"
            );
        }
        totals.2 += sim.session.stats().duplicates;
        totals.3 += sim.session.stats().connections;
        if seed % 2 == 1 {
            assert!(
                sim.tokens >= QUIET_MS / TOKEN_MS,
                "seed {seed}: only {} tokens over {} s of 4 s tokens",
                sim.tokens,
                (FAULTY_MS + QUIET_MS) / 1000
            );
            assert_eq!(
                sim.expiries.1, 0,
                "seed {seed}: a token expired after the faults stopped: the refresh failed"
            );
        }
        tokens += sim.tokens;
        token_failures += sim.token_failures;
        expiries += sim.expiries.0;
        if sim.nodes.len() == NODES {
            for (total, n) in node_connects.iter_mut().zip(&sim.node_connects) {
                *total += n;
            }
            node_outages += sim.node_outages;
        }
    }
    assert!(
        node_connects.iter().all(|n| *n > 0) && node_outages > 0,
        "the cluster seeds used every node ({node_connects:?}) and took nodes down ({node_outages})"
    );
    println!(
        "fault schedules: {SEEDS} seeds, {published} events published, {} deliveries checked, {} resyncs, \
         {} replayed duplicates dropped, {} connections; authenticated seeds: {tokens} tokens, \
         {token_failures} token failures, {expiries} expiries while faults lasted, none after; \
         cluster seeds: attempts per node {node_connects:?}, {node_outages} node outages",
        totals.0, totals.1, totals.2, totals.3
    );
}
