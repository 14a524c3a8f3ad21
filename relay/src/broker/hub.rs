//! The hub: one relay node's connections, the channels they are subscribed to, each channel's
//! recent events, and the fan-out of events to the subscribers' outbound queues. Both brokers
//! own one; they differ only in who numbers the events (see [`super::memory`] and
//! [`super::redis`]).
//!
//! One mutex guards the whole state. Appending an event keeps it in the channel's history and
//! pushes it to every subscriber's queue while holding it. A subscribe registers the subscription
//! and queues the `subscribed` answer followed by the replayed events while holding it. So each
//! connection receives a channel's events in `seq` order, with no gap and no duplicate between a
//! replay and the live events after it. Pushing never waits: a subscriber whose queue is full is
//! kicked as a slow consumer and its connection closes itself.
//!
//! An event published with scopes is queued as its `event` frame for the subscribers holding one of
//! its scopes and as a `skip` frame for the others; the history keeps both frames and the scopes,
//! so a replay makes the same choice for the connection it is sent to.

use super::floors::Floors;
use super::kick::{Kick, KickReason};
use super::outbound::{Entry, Logged, Outbound, Scopes};
use super::queue::{queue, PushError, QueueRx, QueueTx};
use super::request::{Delivery, Refusal, Request, Since, Subscribed, TooManyChannels};
use super::stats::{ChannelStats, Stats};
use crate::config::Config;
use crate::history::{ChannelLog, HistoryLimits, Millis, Replay};
use axum::extract::ws::Utf8Bytes;
use live_protocol::frame::{encode_subscribed, ChannelEntry};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::sync::Notify;

/// Identifies one connection for the broker.
pub type ConnId = u64;

/// The most publish keys remembered at once; beyond it the oldest are forgotten first.
pub const DEFAULT_MAX_PUBLISH_KEYS: usize = 100_000;

/// What the broker keeps, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Each channel's history.
    pub history: HistoryLimits,
    /// How long a publish key is remembered.
    pub publish_key_ttl_ms: Millis,
    /// The most publish keys remembered at once (in-process broker only: Redis forgets by TTL).
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

/// The sending side of a connection's outbound queue, and its [`Kick`].
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: QueueTx,
    kicked: Arc<Kick>,
    scopes: Scopes,
}

impl Outbox {
    /// How many frames can be queued right now. Only the hub pushes, under its lock, so the
    /// room can only grow (as the connection drains the queue) while the lock is held.
    fn room(&self) -> usize {
        self.tx.room()
    }

    /// Ends the connection with `reason` (the first reason stays), waking its task.
    pub fn kick(&self, reason: KickReason) {
        if self.kicked.raise(reason) {
            self.tx.wake_receiver();
        }
    }

    fn is_kicked(&self) -> bool {
        self.kicked.is_kicked()
    }

    /// Queues a frame; returns false when the queue is full and the connection was kicked.
    pub fn push(&self, frame: Outbound) -> bool {
        match self.tx.push(frame) {
            Ok(()) => true,
            Err(PushError::Full) => {
                self.kick(KickReason::SlowConsumer);
                false
            }
            // The connection is going away and will unregister itself.
            Err(PushError::Closed) => true,
        }
    }
}

#[derive(Debug)]
struct Channel {
    name: Arc<str>,
    /// The channel's seq and its recent events.
    log: ChannelLog<Logged>,
    subscribers: HashMap<ConnId, Outbox>,
    /// When its last subscriber left (None while it has some).
    idle_since: Option<Millis>,
}

impl Channel {
    fn new(name: &str, log: ChannelLog<Logged>, now: Millis) -> Self {
        Channel {
            name: Arc::from(name),
            log,
            subscribers: HashMap::new(),
            idle_since: Some(now),
        }
    }
}

#[derive(Debug)]
struct Conn {
    outbox: Outbox,
    channels: HashSet<Box<str>>,
}

#[derive(Debug)]
struct Inner {
    /// The epoch the channels' seqs belong to (announced in `hello`).
    epoch: Arc<str>,
    /// Channels with subscribers or with events (in-process), or followed by this node (Redis).
    channels: HashMap<Box<str>, Channel>,
    conns: HashMap<ConnId, Conn>,
    active_channels: usize,
    subscriptions: usize,
    /// The sum of the channels' kept events.
    history_events: usize,
    /// Where the numbering of forgotten channels resumes (in-process hub).
    floors: Floors,
}

impl Inner {
    /// A new log for `channel`: numbered after the floor of its forgotten past.
    fn fresh_log(&self, channel: &str) -> ChannelLog<Logged> {
        ChannelLog::starting_after(self.floors.start_of(channel))
    }

    /// Forgets `channel` if nothing is left of it (no subscriber, no kept event), raising its
    /// floor; the in-process hub only (`forgets`).
    fn forget_if_empty(&mut self, channel: &str, forgets: bool) {
        let empty = self
            .channels
            .get(channel)
            .is_some_and(|ch| ch.subscribers.is_empty() && ch.log.is_empty());
        if forgets && empty {
            if let Some(ch) = self.channels.remove(channel) {
                self.floors.forget(channel, ch.log.last_seq());
            }
        }
    }

    /// Removes one (connection, channel) pair; the caller has removed it from the connection.
    fn drop_subscription(&mut self, conn: ConnId, channel: &str, now: Millis, keep_empty: bool) {
        let Some(ch) = self.channels.get_mut(channel) else {
            return;
        };
        if ch.subscribers.remove(&conn).is_none() {
            return;
        }
        self.subscriptions -= 1;
        if ch.subscribers.is_empty() {
            self.active_channels -= 1;
            ch.idle_since = Some(now);
            self.forget_if_empty(channel, !keep_empty);
        }
    }

    /// Ends every subscription of a connection being closed by the broker: it gets nothing
    /// more, and closes itself.
    fn cut_off(&mut self, conn: ConnId, now: Millis, keep_empty: bool) {
        let channels = self
            .conns
            .get_mut(&conn)
            .map(|c| std::mem::take(&mut c.channels));
        for name in channels.into_iter().flatten() {
            self.drop_subscription(conn, &name, now, keep_empty);
        }
    }
}

/// One node's connections, channels and fan-out (see the module doc).
#[derive(Debug)]
pub struct Hub {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    /// Notified when the last connection leaves.
    idle: Notify,
    /// Notified whenever events are appended (see [`Hub::wait_for`]).
    appended: Notify,
    settings: Settings,
    /// Whether subscribing creates a channel it does not know (in-process) or is refused
    /// (Redis: the channel must be followed first, from its real seq).
    creates_channels: bool,
    /// The origin of the hub's clock (milliseconds, monotonic).
    started: Instant,
    /// Added to the clock (tests move time forward with it).
    skew_ms: AtomicU64,
}

impl Hub {
    pub fn new(settings: Settings, epoch: &str, creates_channels: bool) -> Self {
        Hub {
            inner: Mutex::new(Inner {
                epoch: Arc::from(epoch),
                channels: HashMap::new(),
                conns: HashMap::new(),
                active_channels: 0,
                subscriptions: 0,
                history_events: 0,
                floors: Floors::default(),
            }),
            next_id: AtomicU64::new(0),
            idle: Notify::new(),
            appended: Notify::new(),
            settings,
            creates_channels,
            started: Instant::now(),
            skew_ms: AtomicU64::new(0),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Milliseconds since the hub started.
    pub fn now(&self) -> Millis {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        elapsed.saturating_add(self.skew_ms.load(Ordering::Relaxed))
    }

    /// Moves the hub's clock forward.
    #[cfg(test)]
    pub fn advance(&self, ms: Millis) {
        self.skew_ms.fetch_add(ms, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent even if a holder panicked: every update is a few counter
        // and map operations that do not panic midway.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current epoch.
    pub fn epoch(&self) -> Arc<str> {
        Arc::clone(&self.lock().epoch)
    }

    /// Registers a connection holding `scopes` with an outbound queue of `capacity` frames.
    /// Dropping the returned [`Member`] unregisters it.
    pub fn connect(self: &Arc<Self>, capacity: usize, scopes: Scopes) -> Member {
        let (tx, rx) = queue(capacity);
        let kick = Arc::new(Kick::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let outbox = Outbox {
            tx,
            kicked: Arc::clone(&kick),
            scopes,
        };
        let mut inner = self.lock();
        inner.conns.insert(
            id,
            Conn {
                outbox,
                channels: HashSet::new(),
            },
        );
        let epoch = Arc::clone(&inner.epoch);
        drop(inner);
        Member {
            hub: Arc::clone(self),
            id,
            rx,
            kick,
            epoch,
        }
    }

    /// The sending side of connection `id`'s outbound queue (presence queues its frames there,
    /// so that they keep their order with everything else the connection is sent).
    pub fn outbox(&self, id: ConnId) -> Option<Outbox> {
        self.lock().conns.get(&id).map(|c| c.outbox.clone())
    }

    fn disconnect(&self, id: ConnId) {
        let now = self.now();
        let keep_empty = !self.creates_channels;
        let mut inner = self.lock();
        if let Some(conn) = inner.conns.remove(&id) {
            for channel in conn.channels {
                inner.drop_subscription(id, &channel, now, keep_empty);
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
    ) -> Result<Vec<Subscribed<'c>>, Refusal> {
        let now = self.now();
        let limits = self.settings.history;
        let keep_empty = !self.creates_channels;
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(conn) = inner.conns.get_mut(&id) else {
            return Ok(Vec::new());
        };
        if conn.outbox.is_kicked() {
            // Being closed: it subscribes to nothing any more.
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
            return Err(Refusal::TooManyChannels(TooManyChannels {
                subscribed: conn.channels.len(),
                adding,
                max: max_channels,
            }));
        }
        if !self.creates_channels {
            if let Some(r) = requested
                .iter()
                .find(|r| !inner.channels.contains_key(r.channel))
            {
                return Err(Refusal::Untracked(r.channel.to_owned()));
            }
        }

        // The answer and the replay, read before anything changes.
        let never_published: Vec<ChannelLog<Logged>> = requested
            .iter()
            .map(|r| ChannelLog::starting_after(inner.floors.start_of(r.channel)))
            .collect();
        let mut answer = Vec::with_capacity(requested.len());
        let mut replay: Vec<Outbound> = Vec::new();
        for (request, never_published) in requested.iter().zip(&never_published) {
            let log = inner
                .channels
                .get(request.channel)
                .map_or(never_published, |ch| &ch.log);
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
            conn.outbox.kick(KickReason::SlowConsumer);
            inner.cut_off(id, now, keep_empty);
            return Ok(Vec::new());
        }

        for (request, log) in requested.iter().zip(never_published) {
            let ch = inner
                .channels
                .entry(Box::from(request.channel))
                .or_insert_with(|| Channel::new(request.channel, log, now));
            if conn.channels.insert(Box::from(request.channel)) {
                ch.subscribers.insert(id, conn.outbox.clone());
                ch.idle_since = None;
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

    /// Whether a connection is subscribed to `channel`.
    pub fn is_subscribed(&self, id: ConnId, channel: &str) -> bool {
        self.lock()
            .conns
            .get(&id)
            .is_some_and(|conn| conn.channels.contains(channel))
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
        let now = self.now();
        let keep_empty = !self.creates_channels;
        let mut inner = self.lock();
        for &name in channels {
            let removed = inner
                .conns
                .get_mut(&id)
                .is_some_and(|conn| conn.channels.remove(name));
            if removed {
                inner.drop_subscription(id, name, now, keep_empty);
            }
        }
    }

    /// Numbers the next event of `channel` and appends it, built by `make` from its seq, in one
    /// step (the in-process broker: the hub numbers the events). `make` is not called when the
    /// event is neither kept nor sent. Returns the seq.
    pub fn deliver_next(&self, channel: &str, make: impl FnOnce(u64) -> Entry) -> u64 {
        self.append(channel, None, make).1
    }

    /// Appends an event numbered elsewhere (the Redis broker) and queues it for every subscriber
    /// (a scoped event as a `skip` for the subscribers holding none of its scopes); see
    /// [`Delivery`].
    pub fn deliver(&self, channel: &str, entry: Entry) -> Delivery {
        self.append(channel, Some(entry.seq), |_| entry).0
    }

    /// Appends the event numbered `seq` (`None`: the next one) to a channel, created when the hub
    /// creates channels, and queues it for the subscribers.
    fn append(
        &self,
        channel: &str,
        seq: Option<u64>,
        make: impl FnOnce(u64) -> Entry,
    ) -> (Delivery, u64) {
        let now = self.now();
        let settings = self.settings;
        let keep_empty = !self.creates_channels;
        let mut guard = self.lock();
        let inner = &mut *guard;
        if !inner.channels.contains_key(channel) {
            if !self.creates_channels {
                return (Delivery::Untracked, 0);
            }
            let log = inner.fresh_log(channel);
            inner
                .channels
                .insert(Box::from(channel), Channel::new(channel, log, now));
        }
        let Some(ch) = inner.channels.get_mut(channel) else {
            return (Delivery::Untracked, 0);
        };
        let last_seq = ch.log.last_seq();
        let seq = seq.unwrap_or(last_seq + 1);
        if seq <= last_seq {
            return (Delivery::Stale, seq);
        }
        if seq != last_seq + 1 {
            return (Delivery::Gap { last_seq }, seq);
        }
        let entry = if settings.history.max_events > 0 || !ch.subscribers.is_empty() {
            make(seq)
        } else {
            // Neither kept nor sent: only the seq counts.
            Entry {
                seq,
                frame: Utf8Bytes::from_static(""),
                scopes: None,
            }
        };
        let logged = Logged::new(&ch.name, entry);
        let mut kicked = Vec::new();
        for (&id, outbox) in &ch.subscribers {
            if !outbox.push(logged.frame_for(&outbox.scopes)) {
                kicked.push(id);
            }
        }
        let kept_before = ch.log.len();
        ch.log.push(now, &settings.history, logged);
        inner.history_events = inner.history_events + ch.log.len() - kept_before;
        for id in kicked {
            inner.cut_off(id, now, keep_empty);
        }
        drop(guard);
        self.appended.notify_waiters();
        (Delivery::Delivered, seq)
    }

    /// Whether this node follows `channel` (always true once the in-process broker saw it).
    pub fn is_tracked(&self, channel: &str) -> bool {
        self.lock().channels.contains_key(channel)
    }

    /// The last seq of a followed channel.
    pub fn last_seq(&self, channel: &str) -> Option<u64> {
        self.lock()
            .channels
            .get(channel)
            .map(|ch| ch.log.last_seq())
    }

    /// Starts following a channel whose last seq is `last_seq`, with its kept events (oldest
    /// first, contiguous, the last one numbered `last_seq`), each with its age in milliseconds.
    /// A channel followed already is left as it is.
    pub fn track(&self, channel: &str, last_seq: u64, kept: Vec<(Entry, Millis)>) {
        let now = self.now();
        let settings = self.settings;
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.channels.contains_key(channel) {
            return;
        }
        let first = kept.first().map_or(last_seq + 1, |(e, _)| e.seq);
        let mut log = ChannelLog::starting_after(first.saturating_sub(1));
        let mut ch = Channel::new(channel, ChannelLog::new(), now);
        for (entry, age) in kept {
            if entry.seq != log.next_seq() {
                break;
            }
            let logged = Logged::new(&ch.name, entry);
            log.push(now.saturating_sub(age), &settings.history, logged);
        }
        log.prune(now, &settings.history);
        if log.last_seq() != last_seq {
            // Not contiguous up to the end: keep the seq, replay nothing.
            log = ChannelLog::starting_after(last_seq);
        }
        inner.history_events += log.len();
        ch.log = log;
        inner.channels.insert(Box::from(channel), ch);
    }

    /// Stops following the channels without subscribers for at least `idle_ms`; returns them.
    pub fn untrack_idle(&self, idle_ms: Millis) -> Vec<String> {
        let now = self.now();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let gone: Vec<String> = inner
            .channels
            .iter()
            .filter(|(_, ch)| {
                ch.subscribers.is_empty()
                    && ch
                        .idle_since
                        .is_some_and(|at| now.saturating_sub(at) >= idle_ms)
            })
            .map(|(name, _)| name.to_string())
            .collect();
        for name in &gone {
            if let Some(ch) = inner.channels.remove(name.as_str()) {
                inner.history_events -= ch.log.len();
            }
        }
        gone
    }

    /// Stops following one channel: its subscribers are kicked with `reason` (they reconnect
    /// and resume from the shared history).
    pub fn untrack(&self, channel: &str, reason: KickReason) {
        let now = self.now();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(ch) = inner.channels.remove(channel) else {
            return;
        };
        inner.history_events -= ch.log.len();
        if !ch.subscribers.is_empty() {
            inner.active_channels -= 1;
        }
        for (id, outbox) in ch.subscribers {
            outbox.kick(reason);
            inner.subscriptions -= 1;
            if let Some(conn) = inner.conns.get_mut(&id) {
                conn.channels.remove(channel);
            }
            inner.cut_off(id, now, true);
        }
    }

    /// Kicks every connection with `reason` and ends its subscriptions (it gets nothing more and
    /// closes itself); the channels keep their seqs and history, so the clients resume where
    /// they were. Returns how many connections there were.
    pub fn kick_all(&self, reason: KickReason) -> usize {
        let now = self.now();
        let keep_empty = !self.creates_channels;
        let mut guard = self.lock();
        let inner = &mut *guard;
        let ids: Vec<ConnId> = inner.conns.keys().copied().collect();
        for &id in &ids {
            if let Some(conn) = inner.conns.get(&id) {
                conn.outbox.kick(reason);
            }
            inner.cut_off(id, now, keep_empty);
        }
        ids.len()
    }

    /// Kicks every connection with `reason`, forgets every channel, and takes `epoch`: a
    /// connection registered from now on announces it.
    pub fn reset(&self, epoch: &str, reason: KickReason) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.epoch = Arc::from(epoch);
        for conn in inner.conns.values_mut() {
            conn.outbox.kick(reason);
            conn.channels.clear();
        }
        inner.channels.clear();
        inner.active_channels = 0;
        inner.subscriptions = 0;
        inner.history_events = 0;
    }

    /// Resolves when `channel` has appended `seq` (or at once when it is not followed), or after
    /// `patience`; returns whether it got there.
    pub async fn wait_for(&self, channel: &str, seq: u64, patience: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let notified = self.appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.last_seq(channel) {
                Some(last) if last < seq => {}
                _ => return true,
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Forgets the events that are too old. Appending prunes its own channel; this catches up
    /// the channels nobody publishes on any more.
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
        if self.creates_channels {
            let Inner {
                channels, floors, ..
            } = inner;
            channels.retain(|name, ch| {
                let keep = !ch.subscribers.is_empty() || !ch.log.is_empty();
                if !keep {
                    floors.forget(name, ch.log.last_seq());
                }
                keep
            });
            // A map that held many more channels than it does now gives its memory back.
            if channels.capacity() > 64 && channels.len() < channels.capacity() / 4 {
                channels.shrink_to_fit();
            }
        }
    }

    pub fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats {
            connections: inner.conns.len(),
            channels: inner.active_channels,
            subscriptions: inner.subscriptions,
            history_events: inner.history_events,
            known_channels: inner.channels.len(),
            redis_outages: 0,
            redis_push_overflows: 0,
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

/// A registered connection: its id, the receiving side of its outbound queue, its kick signal,
/// and the epoch it was registered in (the one to announce in `hello`). Unregisters the
/// connection when dropped.
#[derive(Debug)]
pub struct Member {
    hub: Arc<Hub>,
    pub id: ConnId,
    pub rx: QueueRx,
    pub kick: Arc<Kick>,
    pub epoch: Arc<str>,
}

/// What a connection's task gets next from the broker ([`Member::next`]).
#[derive(Debug)]
pub enum Next {
    /// The broker ended the connection ([`Member::kick`] says why).
    Kicked,
    /// A frame to send.
    Frame(Outbound),
    /// The queue has no sender left: the connection is no longer registered.
    Ended,
}

impl Member {
    /// Waits for the next frame, or for the broker to end the connection (which comes first,
    /// even with frames queued).
    pub async fn next(&mut self) -> Next {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        if self.kick.is_kicked() {
            return Poll::Ready(Next::Kicked);
        }
        let polled = self.rx.poll_recv(cx);
        // A kick raised after the look above and before `poll_recv` stored the waker found no
        // waker to wake (`Outbox::kick` raises the flag, then takes the waker under the queue's
        // lock): look again now that the waker is stored. Raised later, it finds the waker.
        if polled.is_pending() && self.kick.is_kicked() {
            return Poll::Ready(Next::Kicked);
        }
        polled.map(|frame| frame.map_or(Next::Ended, Next::Frame))
    }

    /// Where a `since` position of the client resumes in this connection's epoch.
    pub fn since(&self, epoch: &str, seq: u64) -> Since {
        if epoch == &*self.epoch {
            Since::Seq(seq)
        } else {
            Since::OtherEpoch
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.hub.disconnect(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            frame: Utf8Bytes::from(format!(r#"{{"op":"event","channel":"c","seq":{seq}}}"#)),
            scopes: None,
        }
    }

    /// A hub that follows channels numbered elsewhere (the Redis broker's).
    fn follower() -> Arc<Hub> {
        Arc::new(Hub::new(Settings::default(), "e1", false))
    }

    fn drain(member: &mut Member) -> Vec<Value> {
        std::iter::from_fn(|| member.rx.try_recv())
            .map(|f| serde_json::from_str(f.text.as_str()).expect("JSON"))
            .collect()
    }

    fn since(channel: &str, seq: u64) -> Request<'_> {
        Request {
            channel,
            since: Since::Seq(seq),
        }
    }

    /// A waker that raises `kick` (the flag only, as `Outbox::kick` does before it looks for a
    /// waker) when the queue stores it: the kick lands between `poll_next`'s first look at the
    /// flag and the waker's registration, the window in which a kick finds no waker to wake.
    fn waker_raising(kick: Arc<Kick>) -> std::task::Waker {
        use std::task::{RawWaker, RawWakerVTable, Waker};
        unsafe fn clone(data: *const ()) -> RawWaker {
            // SAFETY: `data` is an `Arc<Kick>` made by `into_raw` below, still owned by a waker.
            let kick = unsafe { Arc::from_raw(data.cast::<Kick>()) };
            kick.raise(KickReason::Unavailable);
            let copy = Arc::into_raw(Arc::clone(&kick));
            std::mem::forget(kick);
            RawWaker::new(copy.cast(), &VTABLE)
        }
        unsafe fn drop(data: *const ()) {
            // SAFETY: as in `clone`; this waker's reference is given back once.
            unsafe { Arc::decrement_strong_count(data.cast::<Kick>()) }
        }
        unsafe fn wake(data: *const ()) {
            // SAFETY: as in `drop`.
            unsafe { drop(data) }
        }
        unsafe fn wake_by_ref(_: *const ()) {}
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop);
        let data = Arc::into_raw(kick).cast::<()>();
        // SAFETY: the vtable's functions keep the `Arc`'s count as `RawWaker` requires.
        unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
    }

    #[test]
    fn a_kick_raised_while_the_waker_is_being_stored_ends_the_wait() {
        let hub = follower();
        let mut a = hub.connect(16, Scopes::from([]));
        let waker = waker_raising(Arc::clone(&a.kick));
        let mut cx = Context::from_waker(&waker);
        assert!(!a.kick.is_kicked());
        assert!(matches!(a.poll_next(&mut cx), Poll::Ready(Next::Kicked)));
        assert_eq!(a.kick.reason(), Some(KickReason::Unavailable));
    }

    #[test]
    fn a_kick_wakes_a_waiting_connection_and_comes_before_its_queued_frames() {
        let hub = follower();
        let mut a = hub.connect(16, Scopes::from([]));
        let (flag, waker) = crate::broker::queue::test_waker::Flag::waker();
        let woken = &flag.0;
        let mut cx = Context::from_waker(&waker);
        let outbox = hub.outbox(a.id).expect("registered");
        let frame = || Outbound::other(Utf8Bytes::from_static("{}"));
        assert!(a.poll_next(&mut cx).is_pending());
        outbox.push(frame());
        assert!(woken.swap(false, Ordering::SeqCst), "woken by the frame");
        assert!(matches!(a.poll_next(&mut cx), Poll::Ready(Next::Frame(_))));
        assert!(a.poll_next(&mut cx).is_pending());
        outbox.kick(KickReason::Cut);
        assert!(woken.swap(false, Ordering::SeqCst), "woken by the kick");
        outbox.push(frame());
        assert!(matches!(a.poll_next(&mut cx), Poll::Ready(Next::Kicked)));
        assert_eq!(a.kick.reason(), Some(KickReason::Cut));
    }

    #[test]
    fn a_followed_channel_starts_at_its_loaded_seq_and_replays_what_was_loaded() {
        let hub = follower();
        let mut a = hub.connect(16, Scopes::from([]));
        assert_eq!(
            hub.subscribe(a.id, &[since("c", 3)], 10),
            Err(Refusal::Untracked("c".to_owned())),
            "not followed yet"
        );
        assert_eq!(hub.deliver("c", entry(1)), Delivery::Untracked);
        // Loaded: seq 7, events 5..=7 kept (ages in ms).
        hub.track("c", 7, vec![(entry(5), 30), (entry(6), 20), (entry(7), 10)]);
        assert_eq!(hub.last_seq("c"), Some(7));
        let answer = hub
            .subscribe(a.id, &[since("c", 4)], 10)
            .expect("subscribed");
        assert_eq!(
            (answer[0].seq, answer[0].recovered, answer[0].replayed),
            (7, Some(true), 3)
        );
        let seqs: Vec<u64> = drain(&mut a)
            .iter()
            .filter_map(|f| f["seq"].as_u64())
            .collect();
        assert_eq!(seqs, [5, 6, 7]);
        let mut b = hub.connect(16, Scopes::from([]));
        let answer = hub
            .subscribe(b.id, &[since("c", 3)], 10)
            .expect("subscribed");
        assert_eq!(answer[0].recovered, Some(false), "event 4 was not loaded");
        drain(&mut b);

        assert_eq!(hub.deliver("c", entry(7)), Delivery::Stale);
        assert_eq!(hub.deliver("c", entry(9)), Delivery::Gap { last_seq: 7 });
        assert_eq!(hub.deliver("c", entry(8)), Delivery::Delivered);
        assert_eq!(drain(&mut a).len(), 1);
        assert_eq!(hub.stats().history_events, 4);
    }

    #[test]
    fn a_load_that_does_not_reach_the_last_seq_replays_nothing() {
        let hub = follower();
        hub.track("c", 9, vec![(entry(5), 0), (entry(6), 0)]);
        let mut a = hub.connect(16, Scopes::from([]));
        let answer = hub
            .subscribe(a.id, &[since("c", 5)], 10)
            .expect("subscribed");
        assert_eq!((answer[0].seq, answer[0].recovered), (9, Some(false)));
        assert_eq!(drain(&mut a).len(), 1, "the answer only");
    }

    #[test]
    fn untracking_and_resetting_kick_with_their_reason() {
        let hub = follower();
        hub.track("c", 0, vec![]);
        hub.track("d", 0, vec![]);
        let a = hub.connect(16, Scopes::from([]));
        let b = hub.connect(16, Scopes::from([]));
        hub.subscribe(a.id, &[Request::live("c")], 10).expect("a");
        hub.subscribe(b.id, &[Request::live("d")], 10).expect("b");
        hub.untrack("c", KickReason::Unavailable);
        assert_eq!(a.kick.reason(), Some(KickReason::Unavailable));
        assert_eq!(b.kick.reason(), None);
        assert_eq!(hub.stats().subscriptions, 1);
        hub.reset("e2", KickReason::EpochChanged);
        assert_eq!(
            a.kick.reason(),
            Some(KickReason::Unavailable),
            "the first reason stays"
        );
        assert_eq!(b.kick.reason(), Some(KickReason::EpochChanged));
        assert!(!hub.is_tracked("d"));
        assert_eq!(hub.connect(1, Scopes::from([])).epoch.as_ref(), "e2");
        assert_eq!(&*a.epoch, "e1");
    }

    #[test]
    fn kicking_all_ends_every_subscription_and_keeps_the_history() {
        let hub = follower();
        hub.track("c", 0, vec![]);
        assert_eq!(hub.deliver("c", entry(1)), Delivery::Delivered);
        let mut a = hub.connect(16, Scopes::from([]));
        let b = hub.connect(16, Scopes::from([]));
        hub.subscribe(a.id, &[since("c", 1)], 10).expect("a");
        drain(&mut a);
        assert_eq!(hub.kick_all(KickReason::Cut), 2);
        assert_eq!(a.kick.reason(), Some(KickReason::Cut));
        assert_eq!(b.kick.reason(), Some(KickReason::Cut));
        assert_eq!(hub.stats().subscriptions, 0);
        assert_eq!(hub.deliver("c", entry(2)), Delivery::Delivered);
        assert!(
            drain(&mut a).is_empty(),
            "a kicked connection gets nothing more"
        );
        drop((a, b));
        let mut c = hub.connect(16, Scopes::from([]));
        let answer = hub.subscribe(c.id, &[since("c", 1)], 10).expect("c");
        assert_eq!((answer[0].seq, answer[0].recovered), (2, Some(true)));
        let seqs: Vec<u64> = drain(&mut c)
            .iter()
            .filter_map(|f| f["seq"].as_u64())
            .collect();
        assert_eq!(seqs, [2], "what the cut connection missed is replayed");
    }

    #[test]
    fn idle_channels_are_untracked_after_their_idle_time() {
        let hub = follower();
        hub.track("c", 0, vec![]);
        let a = hub.connect(16, Scopes::from([]));
        hub.subscribe(a.id, &[Request::live("c")], 10).expect("a");
        hub.advance(60_000);
        assert!(hub.untrack_idle(1000).is_empty(), "it has a subscriber");
        drop(a);
        assert!(hub.is_tracked("c"), "kept while idle");
        hub.advance(999);
        assert!(hub.untrack_idle(1000).is_empty());
        hub.advance(1);
        assert_eq!(hub.untrack_idle(1000), ["c"]);
        assert!(!hub.is_tracked("c"));
    }

    #[tokio::test]
    async fn wait_for_resolves_when_the_seq_arrives() {
        let hub = follower();
        hub.track("c", 1, vec![]);
        let waiter = {
            let hub = Arc::clone(&hub);
            tokio::spawn(async move {
                hub.wait_for("c", 3, std::time::Duration::from_secs(5))
                    .await
            })
        };
        tokio::task::yield_now().await;
        hub.deliver("c", entry(2));
        hub.deliver("c", entry(3));
        assert!(waiter.await.expect("task"));
        let late = hub
            .wait_for("c", 9, std::time::Duration::from_millis(20))
            .await;
        assert!(!late, "gives up after its patience");
        assert!(
            hub.wait_for("x", 9, std::time::Duration::ZERO).await,
            "not followed"
        );
    }
}
