//! The in-process broker: who is subscribed to what, each channel's sequence numbers and recent
//! events, the publish keys seen recently, and the fan-out of events to the subscribers' outbound
//! queues.
//!
//! One mutex guards the whole state. A publish numbers its event, keeps it in the channel's history
//! and pushes it to every subscriber's queue while holding it. A subscribe registers the
//! subscription and queues the `subscribed` answer followed by the replayed events while holding
//! it. So each connection receives a channel's events in `seq` order, with no gap and no duplicate
//! between a replay and the live events after it. Pushing never waits: a subscriber whose queue is
//! full is marked as a slow consumer and its connection closes itself.
//!
//! An event published with scopes is queued as its `event` frame for the subscribers holding one of
//! its scopes and as a `skip` frame for the others; the history keeps both frames and the scopes,
//! so a replay makes the same choice for the connection it is sent to.

use crate::config::Config;
use crate::publish::ValidEvent;
use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, Notify};
use wasm_live_provider::engine::frame::{encode_skip, encode_subscribed, ChannelEntry};
use wasm_live_provider::engine::history::{ChannelLog, HistoryLimits, Millis, Replay};

/// Identifies one connection for the broker.
pub type ConnId = u64;

/// The counts reported by `GET /healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Open connections (WebSocket and Server-Sent Events).
    pub connections: usize,
    /// Channels with at least one subscriber.
    pub channels: usize,
    /// (connection, channel) pairs.
    pub subscriptions: usize,
    /// Events kept for replay, over all channels.
    pub history_events: usize,
}

/// One channel of `GET /stats/channels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChannelStats {
    /// Connections subscribed to the channel.
    pub subscribers: usize,
    /// The seq of the channel's last event (0 when nothing was published on it).
    pub last_seq: u64,
}

/// The most publish keys remembered at once; beyond it the oldest are forgotten first.
pub const DEFAULT_MAX_PUBLISH_KEYS: usize = 100_000;

/// What the broker keeps, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Each channel's history.
    pub history: HistoryLimits,
    /// How long a publish key is remembered.
    pub publish_key_ttl_ms: Millis,
    /// The most publish keys remembered at once.
    pub max_publish_keys: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_config(&Config::default())
    }
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Settings {
            history: config.history_limits(),
            publish_key_ttl_ms: config.publish_key_ttl_ms,
            max_publish_keys: DEFAULT_MAX_PUBLISH_KEYS,
        }
    }
}

/// Raised once when a connection's queue overflows; the connection waits on it.
#[derive(Debug, Default)]
pub struct Kick {
    kicked: AtomicBool,
    notify: Notify,
}

impl Kick {
    /// Marks the connection as a slow consumer; wakes it the first time.
    fn kick(&self) {
        if !self.kicked.swap(true, Ordering::AcqRel) {
            self.notify.notify_one();
        }
    }

    pub fn is_kicked(&self) -> bool {
        self.kicked.load(Ordering::Acquire)
    }

    /// Resolves once the connection has been marked as a slow consumer.
    pub async fn wait(&self) {
        // `notify_one` keeps a permit when nobody waits yet, so a kick is never missed.
        self.notify.notified().await;
    }
}

/// A connection's scopes, sorted and without duplicates (see [`scopes`]).
pub type Scopes = Arc<[Box<str>]>;

/// A connection's scopes from a list as given.
pub fn scopes<S: AsRef<str>>(list: impl IntoIterator<Item = S>) -> Scopes {
    let mut list: Vec<Box<str>> = list.into_iter().map(|s| Box::from(s.as_ref())).collect();
    list.sort_unstable();
    list.dedup();
    list.into()
}

/// One frame of a connection's outbound queue.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The frame, serialized.
    pub text: Utf8Bytes,
    /// For an `event` or a `skip` frame: its channel and seq (where it moves the connection's
    /// position).
    pub position: Option<(Arc<str>, u64)>,
}

impl Outbound {
    /// A frame that moves no position (`subscribed`, ...).
    pub fn other(text: Utf8Bytes) -> Self {
        Outbound {
            text,
            position: None,
        }
    }
}

/// An event as a channel keeps it: its frame and, for a scoped event, its scopes and the `skip`
/// frame the other connections get.
#[derive(Debug)]
struct Logged {
    channel: Arc<str>,
    seq: u64,
    event: Utf8Bytes,
    scoped: Option<Box<Scoped>>,
}

#[derive(Debug)]
struct Scoped {
    /// Not empty.
    scopes: Box<[Box<str>]>,
    skip: Utf8Bytes,
}

impl Logged {
    /// What a connection holding `scopes` is sent for this event.
    fn frame_for(&self, scopes: &[Box<str>]) -> Outbound {
        let text = match &self.scoped {
            Some(scoped) if !intersect(&scoped.scopes, scopes) => scoped.skip.clone(),
            _ => self.event.clone(),
        };
        Outbound {
            text,
            position: Some((Arc::clone(&self.channel), self.seq)),
        }
    }
}

/// Whether an event's scopes and a connection's (sorted) scopes share one.
fn intersect(event: &[Box<str>], connection: &[Box<str>]) -> bool {
    !connection.is_empty()
        && event
            .iter()
            .any(|s| connection.binary_search_by(|c| (**c).cmp(&**s)).is_ok())
}

/// The sending side of a connection's outbound queue.
#[derive(Debug, Clone)]
struct Outbox {
    tx: mpsc::Sender<Outbound>,
    kick: Arc<Kick>,
    scopes: Scopes,
}

impl Outbox {
    /// How many frames can be queued right now. Only the broker pushes, under its lock, so the
    /// room can only grow (as the connection drains the queue) while the lock is held.
    fn room(&self) -> usize {
        self.tx.capacity()
    }

    /// Queues a frame; returns false when the queue is full and the connection was kicked.
    fn push(&self, frame: Outbound) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.kick.kick();
                false
            }
            // The connection is going away and will unregister itself.
            Err(TrySendError::Closed(_)) => true,
        }
    }
}

#[derive(Debug)]
struct Channel {
    name: Arc<str>,
    /// The channel's seq and its recent events.
    log: ChannelLog<Logged>,
    subscribers: HashMap<ConnId, Outbox>,
}

impl Channel {
    fn new(name: &str) -> Self {
        Channel {
            name: Arc::from(name),
            log: ChannelLog::new(),
            subscribers: HashMap::new(),
        }
    }
}

#[derive(Debug)]
struct Conn {
    outbox: Outbox,
    channels: HashSet<Box<str>>,
}

/// What a publish key was given.
#[derive(Debug)]
struct KeyedPublish {
    channel: Box<str>,
    seq: u64,
}

/// The publish keys seen recently, oldest first.
#[derive(Debug, Default)]
struct PublishKeys {
    seen: HashMap<Box<str>, KeyedPublish>,
    /// Every key of `seen` once, in the order it was first published.
    order: VecDeque<(Millis, Box<str>)>,
}

impl PublishKeys {
    /// Forgets the keys older than `ttl`.
    fn expire(&mut self, now: Millis, ttl: Millis) {
        while self
            .order
            .front()
            .is_some_and(|(at, _)| now.saturating_sub(*at) > ttl)
        {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((_, key)) = self.order.pop_front() {
            self.seen.remove(&key);
        }
    }

    /// Remembers a key not seen yet, forgetting the oldest keys beyond `max`.
    fn remember(&mut self, now: Millis, key: &str, published: KeyedPublish, max: usize) {
        if max == 0 {
            return;
        }
        while self.order.len() >= max {
            self.forget_oldest();
        }
        self.order.push_back((now, Box::from(key)));
        self.seen.insert(Box::from(key), published);
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Channels with subscribers or with events. A channel that had events is kept after its last
    /// subscriber leaves, so its seq keeps growing for the whole epoch.
    channels: HashMap<Box<str>, Channel>,
    conns: HashMap<ConnId, Conn>,
    active_channels: usize,
    subscriptions: usize,
    /// The sum of the channels' kept events.
    history_events: usize,
    keys: PublishKeys,
}

impl Inner {
    /// Removes one (connection, channel) pair; the caller has removed it from the connection.
    fn drop_subscription(&mut self, conn: ConnId, channel: &str) {
        let Some(ch) = self.channels.get_mut(channel) else {
            return;
        };
        if ch.subscribers.remove(&conn).is_none() {
            return;
        }
        self.subscriptions -= 1;
        if ch.subscribers.is_empty() {
            self.active_channels -= 1;
            if ch.log.last_seq() == 0 {
                self.channels.remove(channel);
            }
        }
    }

    /// Ends every subscription of a connection being closed as a slow consumer: it gets nothing
    /// more, and closes itself.
    fn cut_off(&mut self, conn: ConnId) {
        let channels = self
            .conns
            .get_mut(&conn)
            .map(|c| std::mem::take(&mut c.channels));
        for name in channels.into_iter().flatten() {
            self.drop_subscription(conn, &name);
        }
    }
}

/// A subscribe that would exceed the per-connection channel limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyChannels {
    pub subscribed: usize,
    pub adding: usize,
    pub max: usize,
}

impl std::fmt::Display for TooManyChannels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "subscribing to {} more channels would make {}, over the limit of {} channels per connection",
            self.adding,
            self.subscribed + self.adding,
            self.max
        )
    }
}

/// Where a subscribing connection wants a channel to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// No `since`: live events only, and no `recovered` in the answer.
    Now,
    /// A `since` in this relay's epoch: replay the events after this seq, if they are all kept.
    Seq(u64),
    /// A `since` in another epoch: nothing can be replayed.
    OtherEpoch,
}

/// One channel of a subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'c> {
    pub channel: &'c str,
    pub since: Since,
}

impl<'c> Request<'c> {
    /// A channel without `since`.
    pub fn live(channel: &'c str) -> Self {
        Request {
            channel,
            since: Since::Now,
        }
    }
}

/// One channel of the `subscribed` answer the broker queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribed<'c> {
    pub channel: &'c str,
    /// The channel's last seq when it was subscribed.
    pub seq: u64,
    /// For a request with `since`: whether the missed events were queued after the answer.
    pub recovered: Option<bool>,
    /// How many events were queued for replay.
    pub replayed: usize,
}

/// The outcome of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Published with this seq.
    New(u64),
    /// Its key was published already, on this channel with this seq: nothing was published.
    Repeat { channel: Box<str>, seq: u64 },
}

impl Published {
    pub fn seq(&self) -> u64 {
        match self {
            Published::New(seq) | Published::Repeat { seq, .. } => *seq,
        }
    }
}

#[derive(Debug)]
pub struct Broker {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    /// Notified when the last connection leaves.
    idle: Notify,
    settings: Settings,
    /// The origin of the broker's clock (milliseconds, monotonic).
    started: Instant,
    /// Added to the clock (tests move time forward with it).
    skew_ms: AtomicU64,
}

impl Default for Broker {
    fn default() -> Self {
        Broker::with_settings(Settings::default())
    }
}

impl Broker {
    /// A broker with the default settings.
    pub fn new() -> Arc<Self> {
        Arc::new(Broker::default())
    }

    pub fn with_settings(settings: Settings) -> Self {
        Broker {
            inner: Mutex::default(),
            next_id: AtomicU64::new(0),
            idle: Notify::new(),
            settings,
            started: Instant::now(),
            skew_ms: AtomicU64::new(0),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Milliseconds since the broker started.
    fn now(&self) -> Millis {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        elapsed.saturating_add(self.skew_ms.load(Ordering::Relaxed))
    }

    /// Moves the broker's clock forward.
    #[cfg(test)]
    fn advance(&self, ms: Millis) {
        self.skew_ms.fetch_add(ms, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent even if a holder panicked: every update is a few counter
        // and map operations that do not panic midway.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a connection without scopes with an outbound queue of `queue` frames. Dropping
    /// the returned [`Member`] unregisters it.
    pub fn connect(self: &Arc<Self>, queue: usize) -> Member {
        self.connect_scoped(queue, Scopes::from([]))
    }

    /// Registers a connection holding `scopes` with an outbound queue of `queue` frames.
    /// Dropping the returned [`Member`] unregisters it.
    pub fn connect_scoped(self: &Arc<Self>, queue: usize, scopes: Scopes) -> Member {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let kick = Arc::new(Kick::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let outbox = Outbox {
            tx,
            kick: Arc::clone(&kick),
            scopes,
        };
        self.lock().conns.insert(
            id,
            Conn {
                outbox,
                channels: HashSet::new(),
            },
        );
        Member {
            broker: Arc::clone(self),
            id,
            rx,
            kick,
        }
    }

    fn disconnect(&self, id: ConnId) {
        let mut inner = self.lock();
        if let Some(conn) = inner.conns.remove(&id) {
            for channel in conn.channels {
                inner.drop_subscription(id, &channel);
            }
        }
        let idle = inner.conns.is_empty();
        drop(inner);
        if idle {
            self.idle.notify_waiters();
        }
    }

    /// Subscribes a connection to channels (already validated) and queues, in one step, the
    /// `subscribed` answer and then, for each channel resumed with [`Since::Seq`] whose missed
    /// events are all kept, those events: any later event of these channels is queued after them.
    ///
    /// A channel requested twice counts once (its first `since` wins). Either all channels are
    /// subscribed or, over the limit, none. If the answer and the replay do not fit in the
    /// connection's queue, the connection is kicked as a slow consumer, subscribed to nothing,
    /// and the result is empty (as it is for a connection already kicked).
    pub fn subscribe<'c>(
        &self,
        id: ConnId,
        requests: &[Request<'c>],
        max_channels: usize,
    ) -> Result<Vec<Subscribed<'c>>, TooManyChannels> {
        let now = self.now();
        let limits = self.settings.history;
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(conn) = inner.conns.get_mut(&id) else {
            return Ok(Vec::new());
        };
        if conn.outbox.kick.is_kicked() {
            // Closing as a slow consumer: it subscribes to nothing any more.
            return Ok(Vec::new());
        }

        let mut requested: Vec<Request<'c>> = Vec::with_capacity(requests.len());
        for request in requests {
            if !requested.iter().any(|r| r.channel == request.channel) {
                requested.push(*request);
            }
        }
        let adding = requested
            .iter()
            .filter(|r| !conn.channels.contains(r.channel))
            .count();
        if conn.channels.len() + adding > max_channels {
            return Err(TooManyChannels {
                subscribed: conn.channels.len(),
                adding,
                max: max_channels,
            });
        }

        // The answer and the replay, read before anything changes.
        let never_published = ChannelLog::new();
        let mut answer = Vec::with_capacity(requested.len());
        let mut replay: Vec<Outbound> = Vec::new();
        for request in &requested {
            let log = inner
                .channels
                .get(request.channel)
                .map_or(&never_published, |ch| &ch.log);
            let before = replay.len();
            let recovered = match request.since {
                Since::Now => None,
                Since::OtherEpoch => Some(false),
                Since::Seq(seen) => Some(match log.since(now, &limits, seen) {
                    Replay::Events(events) => {
                        let scopes = &conn.outbox.scopes;
                        replay.extend(events.into_iter().map(|e| e.frame_for(scopes)));
                        true
                    }
                    Replay::Gap => false,
                }),
            };
            answer.push(Subscribed {
                channel: request.channel,
                seq: log.last_seq(),
                recovered,
                replayed: replay.len() - before,
            });
        }
        if conn.outbox.room() < 1 + replay.len() {
            conn.outbox.kick.kick();
            inner.cut_off(id);
            return Ok(Vec::new());
        }

        for request in &requested {
            let ch = inner
                .channels
                .entry(Box::from(request.channel))
                .or_insert_with(|| Channel::new(request.channel));
            if conn.channels.insert(Box::from(request.channel)) {
                ch.subscribers.insert(id, conn.outbox.clone());
                inner.subscriptions += 1;
                if ch.subscribers.len() == 1 {
                    inner.active_channels += 1;
                }
            }
        }
        let entries: Vec<ChannelEntry<'_>> = answer
            .iter()
            .map(|a| ChannelEntry {
                seq: Some(a.seq),
                recovered: a.recovered,
                ..ChannelEntry::named(a.channel)
            })
            .collect();
        // Both fit (checked above, and the room cannot shrink while the lock is held).
        conn.outbox
            .push(Outbound::other(Utf8Bytes::from(encode_subscribed(
                &entries,
            ))));
        for frame in replay {
            conn.outbox.push(frame);
        }
        Ok(answer)
    }

    /// Gives a connection new scopes (those of a refreshed token): events published from now on
    /// are filtered with them.
    pub fn set_scopes(&self, id: ConnId, scopes: Scopes) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(conn) = inner.conns.get_mut(&id) else {
            return;
        };
        conn.outbox.scopes = Scopes::clone(&scopes);
        for name in &conn.channels {
            if let Some(outbox) = inner
                .channels
                .get_mut(name)
                .and_then(|ch| ch.subscribers.get_mut(&id))
            {
                outbox.scopes = Scopes::clone(&scopes);
            }
        }
    }

    /// The channels a connection is subscribed to.
    pub fn channels_of(&self, id: ConnId) -> Vec<String> {
        self.lock()
            .conns
            .get(&id)
            .map(|conn| conn.channels.iter().map(|c| c.to_string()).collect())
            .unwrap_or_default()
    }

    /// Unsubscribes a connection from channels; channels it is not subscribed to are ignored.
    pub fn unsubscribe(&self, id: ConnId, channels: &[&str]) {
        let mut inner = self.lock();
        for &name in channels {
            let removed = inner
                .conns
                .get_mut(&id)
                .is_some_and(|conn| conn.channels.remove(name));
            if removed {
                inner.drop_subscription(id, name);
            }
        }
    }

    /// Gives the event the next seq of its channel, keeps it in the channel's history and queues
    /// it for every subscriber (a scoped event as a `skip` for the subscribers holding none of its
    /// scopes). An event whose key was published within the key TTL is not published again: the
    /// answer is the seq it was given then.
    pub fn publish(&self, event: &ValidEvent<'_>) -> Published {
        let now = self.now();
        let settings = self.settings;
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.keys.expire(now, settings.publish_key_ttl_ms);
        if let Some(seen) = event.key.as_deref().and_then(|k| inner.keys.seen.get(k)) {
            return Published::Repeat {
                channel: seen.channel.clone(),
                seq: seen.seq,
            };
        }

        let channel = match inner.channels.get_mut(event.channel.as_ref()) {
            Some(channel) => channel,
            None => inner
                .channels
                .entry(Box::from(event.channel.as_ref()))
                .or_insert_with(|| Channel::new(&event.channel)),
        };
        let seq = channel.log.next_seq();
        let logged = if settings.history.max_events > 0 || !channel.subscribers.is_empty() {
            Logged {
                channel: Arc::clone(&channel.name),
                seq,
                event: event.frame(seq),
                scoped: event.scopes.as_ref().map(|scopes| {
                    Box::new(Scoped {
                        scopes: scopes.iter().map(|s| Box::from(s.as_ref())).collect(),
                        skip: Utf8Bytes::from(encode_skip(&event.channel, seq)),
                    })
                }),
            }
        } else {
            // Neither kept nor sent: only the seq counts.
            Logged {
                channel: Arc::clone(&channel.name),
                seq,
                event: Utf8Bytes::from_static(""),
                scoped: None,
            }
        };
        let mut kicked = Vec::new();
        for (&id, outbox) in &channel.subscribers {
            if !outbox.push(logged.frame_for(&outbox.scopes)) {
                kicked.push(id);
            }
        }
        let kept_before = channel.log.len();
        channel.log.push(now, &settings.history, logged);
        inner.history_events = inner.history_events + channel.log.len() - kept_before;
        for id in kicked {
            inner.cut_off(id);
        }
        if let Some(key) = event.key.as_deref() {
            let published = KeyedPublish {
                channel: Box::from(event.channel.as_ref()),
                seq,
            };
            inner
                .keys
                .remember(now, key, published, settings.max_publish_keys);
        }
        Published::New(seq)
    }

    /// Forgets the events and publish keys that are too old. Publishing prunes its own channel;
    /// this catches up the channels nobody publishes on any more.
    pub fn sweep(&self) {
        let now = self.now();
        let settings = self.settings;
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut kept = 0;
        for channel in inner.channels.values_mut() {
            channel.log.prune(now, &settings.history);
            kept += channel.log.len();
        }
        inner.history_events = kept;
        inner.keys.expire(now, settings.publish_key_ttl_ms);
    }

    pub fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats {
            connections: inner.conns.len(),
            channels: inner.active_channels,
            subscriptions: inner.subscriptions,
            history_events: inner.history_events,
        }
    }

    /// The channels with at least one subscriber, by name.
    pub fn channel_stats(&self) -> BTreeMap<String, ChannelStats> {
        let inner = self.lock();
        inner
            .channels
            .iter()
            .filter(|(_, ch)| !ch.subscribers.is_empty())
            .map(|(name, ch)| {
                let stats = ChannelStats {
                    subscribers: ch.subscribers.len(),
                    last_seq: ch.log.last_seq(),
                };
                (name.to_string(), stats)
            })
            .collect()
    }

    /// Resolves when no connection is registered.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().conns.is_empty() {
                return;
            }
            notified.await;
        }
    }
}

/// A registered connection: its id, the receiving side of its outbound queue, and its
/// slow-consumer signal. Unregisters the connection when dropped.
#[derive(Debug)]
pub struct Member {
    broker: Arc<Broker>,
    pub id: ConnId,
    pub rx: mpsc::Receiver<Outbound>,
    pub kick: Arc<Kick>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.broker.disconnect(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;
    use serde_json::Value;

    fn event(channel: &str) -> ValidEvent<'_> {
        ValidEvent {
            key: None,
            channel: channel.into(),
            kind: "updated".into(),
            payload: RawValue::NULL,
            date: 1.0,
            meta: None,
            scopes: None,
        }
    }

    fn keyed<'a>(channel: &'a str, key: &'a str) -> ValidEvent<'a> {
        ValidEvent {
            key: Some(key.into()),
            ..event(channel)
        }
    }

    fn live<'c>(channels: &[&'c str]) -> Vec<Request<'c>> {
        channels.iter().map(|c| Request::live(c)).collect()
    }

    fn since(channel: &str, seq: u64) -> Request<'_> {
        Request {
            channel,
            since: Since::Seq(seq),
        }
    }

    fn broker(history: usize, ttl: Millis) -> Arc<Broker> {
        Arc::new(Broker::with_settings(Settings {
            history: HistoryLimits {
                max_events: history,
                max_age_ms: ttl,
            },
            publish_key_ttl_ms: 1000,
            max_publish_keys: 3,
        }))
    }

    /// Everything queued for a member, as JSON.
    fn drain(member: &mut Member) -> Vec<Value> {
        std::iter::from_fn(|| member.rx.try_recv().ok())
            .map(|f| serde_json::from_str(f.text.as_str()).expect("frames are JSON"))
            .collect()
    }

    fn seqs(frames: &[Value]) -> Vec<u64> {
        frames
            .iter()
            .filter(|f| f["op"] == "event")
            .map(|f| f["seq"].as_u64().expect("seq"))
            .collect()
    }

    fn answer(channel: &str, seq: u64, recovered: Option<bool>, replayed: usize) -> Subscribed<'_> {
        Subscribed {
            channel,
            seq,
            recovered,
            replayed,
        }
    }

    #[test]
    fn seq_grows_per_channel_and_survives_unsubscribe() {
        let broker = Broker::new();
        let mut a = broker.connect(8);
        assert_eq!(
            broker.subscribe(a.id, &live(&["x", "y", "x"]), 10),
            Ok(vec![answer("x", 0, None, 0), answer("y", 0, None, 0)])
        );
        assert_eq!(broker.publish(&event("x")), Published::New(1));
        assert_eq!(broker.publish(&event("x")), Published::New(2));
        assert_eq!(broker.publish(&event("z")), Published::New(1));
        assert_eq!(
            broker.stats(),
            Stats {
                connections: 1,
                channels: 2,
                subscriptions: 2,
                history_events: 3,
            }
        );
        broker.unsubscribe(a.id, &["x", "unknown"]);
        assert_eq!(
            broker.stats(),
            Stats {
                connections: 1,
                channels: 1,
                subscriptions: 1,
                history_events: 3,
            }
        );
        assert_eq!(
            broker.subscribe(a.id, &live(&["x"]), 10),
            Ok(vec![answer("x", 2, None, 0)])
        );
        let frames = drain(&mut a);
        let ops: Vec<&str> = frames
            .iter()
            .map(|f| f["op"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            ops,
            ["subscribed", "event", "event", "subscribed"],
            "{frames:?}"
        );
        assert_eq!(seqs(&frames), [1, 2]);
        assert_eq!(
            frames[3]["channels"],
            serde_json::json!([{ "channel": "x", "seq": 2 }]),
            "no `recovered` without `since`"
        );
        drop(a);
        assert_eq!(
            broker.stats(),
            Stats {
                connections: 0,
                channels: 0,
                subscriptions: 0,
                history_events: 3,
            }
        );
    }

    #[test]
    fn channel_stats_list_the_subscribed_channels() {
        let broker = Broker::new();
        let a = broker.connect(8);
        let b = broker.connect(8);
        broker.subscribe(a.id, &live(&["x", "y"]), 10).expect("ok");
        broker.subscribe(b.id, &live(&["x"]), 10).expect("ok");
        broker.publish(&event("x"));
        broker.publish(&event("nobody"));
        let stats = |subscribers, last_seq| ChannelStats {
            subscribers,
            last_seq,
        };
        assert_eq!(
            broker.channel_stats().into_iter().collect::<Vec<_>>(),
            [("x".to_owned(), stats(2, 1)), ("y".to_owned(), stats(1, 0))]
        );
        broker.unsubscribe(a.id, &["x", "y"]);
        assert_eq!(
            broker.channel_stats().into_iter().collect::<Vec<_>>(),
            [("x".to_owned(), stats(1, 1))]
        );
        drop(b);
        assert!(broker.channel_stats().is_empty());
    }

    #[test]
    fn channel_limit_is_all_or_nothing() {
        let broker = Broker::new();
        let a = broker.connect(8);
        assert!(broker.subscribe(a.id, &live(&["a", "b"]), 2).is_ok());
        assert!(
            broker.subscribe(a.id, &live(&["a", "b"]), 2).is_ok(),
            "re-subscribing adds nothing"
        );
        let err = broker.subscribe(a.id, &live(&["a", "c"]), 2).unwrap_err();
        assert_eq!(
            err,
            TooManyChannels {
                subscribed: 2,
                adding: 1,
                max: 2
            }
        );
        assert_eq!(broker.stats().subscriptions, 2);
    }

    #[test]
    fn a_full_queue_kicks_the_subscriber_without_blocking() {
        let broker = Broker::new();
        let slow = broker.connect(3);
        let fast = broker.connect(8);
        for m in [&slow, &fast] {
            broker
                .subscribe(m.id, &live(&["c"]), 10)
                .expect("subscribed");
        }
        for _ in 0..3 {
            broker.publish(&event("c"));
        }
        assert!(slow.kick.is_kicked());
        assert!(!fast.kick.is_kicked());
        assert_eq!(
            broker.stats(),
            Stats {
                connections: 2,
                channels: 1,
                subscriptions: 1,
                history_events: 3,
            },
            "the slow one left"
        );
        assert_eq!(broker.subscribe(slow.id, &live(&["c"]), 10), Ok(vec![]));
    }

    #[test]
    fn a_resumed_subscription_gets_the_answer_then_the_missed_events_then_live_ones() {
        let broker = broker(3, 1000);
        let mut a = broker.connect(16);
        for _ in 0..5 {
            broker.publish(&event("c"));
        }
        broker.publish(&event("d"));
        let requests = [
            since("c", 2),
            since("d", 1),
            since("new", 0),
            Request::live("c"),
        ];
        assert_eq!(
            broker.subscribe(a.id, &requests, 10),
            Ok(vec![
                answer("c", 5, Some(true), 3),
                answer("d", 1, Some(true), 0),
                answer("new", 0, Some(true), 0),
            ]),
            "the first entry of a channel wins"
        );
        broker.publish(&event("c"));
        let frames = drain(&mut a);
        assert_eq!(frames[0]["op"], "subscribed");
        assert_eq!(
            frames[0]["channels"],
            serde_json::json!([
                { "channel": "c", "seq": 5, "recovered": true },
                { "channel": "d", "seq": 1, "recovered": true },
                { "channel": "new", "seq": 0, "recovered": true },
            ])
        );
        assert_eq!(seqs(&frames), [3, 4, 5, 6]);
        assert!(frames[1..].iter().all(|f| f["channel"] == "c"));
    }

    #[test]
    fn what_cannot_be_replayed_is_not_recovered() {
        let broker = broker(3, 1000);
        let mut a = broker.connect(16);
        for _ in 0..5 {
            broker.publish(&event("c"));
        }
        let requests = [
            since("c", 1), // event 2 was dropped (size)
            since("future", 1),
            Request {
                channel: "other-epoch",
                since: Since::OtherEpoch,
            },
        ];
        assert_eq!(
            broker.subscribe(a.id, &requests, 10),
            Ok(vec![
                answer("c", 5, Some(false), 0),
                answer("future", 0, Some(false), 0),
                answer("other-epoch", 0, Some(false), 0),
            ])
        );
        assert_eq!(drain(&mut a).len(), 1, "only the answer");

        // Too old.
        broker.advance(1001);
        let b = broker.connect(16);
        assert_eq!(
            broker.subscribe(b.id, &[since("c", 3), since("x", 0)], 10),
            Ok(vec![
                answer("c", 5, Some(false), 0),
                answer("x", 0, Some(true), 0)
            ])
        );
        assert_eq!(
            broker.subscribe(b.id, &[since("c", 5)], 10),
            Ok(vec![answer("c", 5, Some(true), 0)]),
            "up to date: nothing is missing"
        );
    }

    #[test]
    fn a_replay_that_does_not_fit_the_queue_closes_the_connection() {
        let broker = broker(10, 1000);
        for _ in 0..5 {
            broker.publish(&event("c"));
        }
        let small = broker.connect(5);
        broker
            .subscribe(small.id, &live(&["other"]), 10)
            .expect("ok");
        assert_eq!(broker.subscribe(small.id, &[since("c", 0)], 10), Ok(vec![]));
        assert!(small.kick.is_kicked());
        assert_eq!(broker.stats().subscriptions, 0, "subscribed to nothing");

        let fits = broker.connect(6);
        assert_eq!(
            broker.subscribe(fits.id, &[since("c", 0)], 10),
            Ok(vec![answer("c", 5, Some(true), 5)])
        );
        assert!(!fits.kick.is_kicked());
    }

    #[test]
    fn history_is_pruned_by_size_on_publish_and_by_age_on_sweep() {
        let broker = broker(2, 1000);
        for _ in 0..5 {
            broker.publish(&event("a"));
        }
        broker.publish(&event("b"));
        assert_eq!(broker.stats().history_events, 3);
        broker.advance(600);
        broker.publish(&event("b"));
        broker.advance(600);
        broker.sweep();
        assert_eq!(broker.stats().history_events, 1, "only b's second event");
        broker.advance(1000);
        broker.publish(&event("a"));
        assert_eq!(broker.stats().history_events, 2);
        broker.sweep();
        assert_eq!(broker.stats().history_events, 1);

        let none = broker_without_history();
        none.publish(&event("a"));
        assert_eq!(none.publish(&event("a")), Published::New(2));
        assert_eq!(none.stats().history_events, 0);
    }

    fn broker_without_history() -> Arc<Broker> {
        broker(0, 1000)
    }

    #[test]
    fn a_key_is_published_once_within_its_ttl() {
        let broker = broker(10, 1000);
        let mut a = broker.connect(16);
        broker.subscribe(a.id, &live(&["c"]), 10).expect("ok");
        assert_eq!(broker.publish(&keyed("c", "k1")), Published::New(1));
        assert_eq!(
            broker.publish(&keyed("c", "k1")),
            Published::Repeat {
                channel: "c".into(),
                seq: 1
            }
        );
        assert_eq!(
            broker.publish(&keyed("d", "k1")),
            Published::Repeat {
                channel: "c".into(),
                seq: 1
            },
            "keys are per relay, not per channel"
        );
        assert_eq!(broker.publish(&keyed("c", "k2")), Published::New(2));
        assert_eq!(seqs(&drain(&mut a)), [1, 2]);

        broker.advance(1001);
        assert_eq!(
            broker.publish(&keyed("c", "k1")),
            Published::New(3),
            "forgotten"
        );
    }

    #[test]
    fn the_oldest_keys_are_forgotten_beyond_the_cap() {
        let broker = broker(10, 1000);
        for key in ["a", "b", "c", "d"] {
            broker.publish(&keyed("ch", key));
        }
        assert_eq!(broker.publish(&keyed("ch", "a")), Published::New(5));
        assert_eq!(broker.publish(&keyed("ch", "d")).seq(), 4);
        assert_eq!(broker.lock().keys.seen.len(), 3);
        assert_eq!(broker.lock().keys.order.len(), 3);
        broker.advance(2000);
        broker.sweep();
        assert!(broker.lock().keys.seen.is_empty());
    }

    fn scoped<'a>(channel: &'a str, scopes: &[&'a str]) -> ValidEvent<'a> {
        ValidEvent {
            scopes: Some(scopes.iter().map(|s| (*s).into()).collect()),
            ..event(channel)
        }
    }

    fn ops_and_seqs(frames: &[Value]) -> Vec<(String, u64)> {
        frames
            .iter()
            .map(|f| {
                (
                    f["op"].as_str().unwrap_or("").to_owned(),
                    f["seq"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }

    fn pairs(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter()
            .map(|(op, seq)| ((*op).to_owned(), *seq))
            .collect()
    }

    #[test]
    fn a_scoped_event_is_a_skip_for_the_connections_without_its_scopes() {
        let broker = broker(10, 1000);
        let mut user1 = broker.connect_scoped(8, scopes(["user:1", "team:7"]));
        let mut user2 = broker.connect_scoped(8, scopes(["user:2"]));
        let mut nobody = broker.connect(8);
        for m in [&user1, &user2, &nobody] {
            broker.subscribe(m.id, &live(&["c"]), 10).expect("ok");
        }
        broker.publish(&scoped("c", &["user:1"]));
        broker.publish(&event("c"));
        broker.publish(&scoped("c", &["user:2", "team:7"]));
        let expect = |member: &mut Member, list: &[(&str, u64)]| {
            let frames = drain(member);
            assert_eq!(ops_and_seqs(&frames[1..]), pairs(list), "{frames:?}");
            for f in &frames[1..] {
                assert_eq!(f["channel"], "c");
            }
        };
        expect(&mut user1, &[("event", 1), ("event", 2), ("event", 3)]);
        expect(&mut user2, &[("skip", 1), ("event", 2), ("event", 3)]);
        expect(&mut nobody, &[("skip", 1), ("event", 2), ("skip", 3)]);

        // The replay makes the same choice, per connection.
        for (member, list) in [
            (&mut user1, [("event", 1), ("event", 2), ("event", 3)]),
            (&mut nobody, [("skip", 1), ("event", 2), ("skip", 3)]),
        ] {
            broker.unsubscribe(member.id, &["c"]);
            broker
                .subscribe(member.id, &[since("c", 0)], 10)
                .expect("ok");
            let frames = drain(member);
            assert_eq!(frames[0]["channels"][0]["recovered"], true);
            assert_eq!(ops_and_seqs(&frames[1..]), pairs(&list), "{frames:?}");
        }
    }

    #[test]
    fn queued_events_carry_their_position() {
        let broker = broker(10, 1000);
        let mut a = broker.connect(8);
        broker.publish(&event("c"));
        broker.subscribe(a.id, &[since("c", 0)], 10).expect("ok");
        broker.publish(&scoped("c", &["x"]));
        let positions: Vec<Option<(String, u64)>> = std::iter::from_fn(|| a.rx.try_recv().ok())
            .map(|f| f.position.map(|(c, seq)| (c.to_string(), seq)))
            .collect();
        assert_eq!(
            positions,
            [None, Some(("c".to_owned(), 1)), Some(("c".to_owned(), 2))]
        );
    }

    #[test]
    fn connection_scopes_are_sorted_and_deduplicated() {
        assert_eq!(&*scopes(["b", "a", "b"]), [Box::from("a"), Box::from("b")]);
        assert!(intersect(&[Box::from("b")], &scopes(["a", "b"])));
        assert!(!intersect(&[Box::from("c")], &scopes(["a", "b"])));
        assert!(!intersect(&[Box::from("c")], &scopes::<&str>([])));
    }
}
