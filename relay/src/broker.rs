//! The in-process broker: who is subscribed to what, each channel's sequence numbers, and the
//! fan-out of events to the subscribers' outbound queues.
//!
//! One mutex guards the whole state. A publish numbers its event and pushes it to every
//! subscriber's queue while holding it, so each connection receives a channel's events in `seq`
//! order. Pushing never waits: a subscriber whose queue is full is marked as a slow consumer and
//! its connection closes itself.

use crate::publish::ValidEvent;
use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, Notify};

/// Identifies one connection for the broker.
pub type ConnId = u64;

/// The counts reported by `GET /healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Open WebSocket connections.
    pub connections: usize,
    /// Channels with at least one subscriber.
    pub channels: usize,
    /// (connection, channel) pairs.
    pub subscriptions: usize,
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

/// The sending side of a connection's outbound queue.
#[derive(Debug, Clone)]
struct Outbox {
    tx: mpsc::Sender<Utf8Bytes>,
    kick: Arc<Kick>,
}

impl Outbox {
    /// Queues a frame; returns false when the queue is full and the connection was kicked.
    fn push(&self, frame: &Utf8Bytes) -> bool {
        match self.tx.try_send(frame.clone()) {
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

#[derive(Debug, Default)]
struct Channel {
    /// The seq of the channel's last event (0: none yet).
    seq: u64,
    subscribers: HashMap<ConnId, Outbox>,
}

#[derive(Debug)]
struct Conn {
    outbox: Outbox,
    channels: HashSet<Box<str>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Channels with subscribers or with events. A channel that had events is kept after its last
    /// subscriber leaves, so its seq keeps growing for the whole epoch.
    channels: HashMap<Box<str>, Channel>,
    conns: HashMap<ConnId, Conn>,
    active_channels: usize,
    subscriptions: usize,
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
            if ch.seq == 0 {
                self.channels.remove(channel);
            }
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

#[derive(Debug, Default)]
pub struct Broker {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    /// Notified when the last connection leaves.
    idle: Notify,
}

impl Broker {
    pub fn new() -> Arc<Self> {
        Arc::new(Broker::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent even if a holder panicked: every update is a few counter
        // and map operations that do not panic midway.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a connection with an outbound queue of `queue` frames. Dropping the returned
    /// [`Member`] unregisters it.
    pub fn connect(self: &Arc<Self>, queue: usize) -> Member {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let kick = Arc::new(Kick::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let outbox = Outbox {
            tx,
            kick: Arc::clone(&kick),
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

    /// Subscribes a connection to channels (already validated). Returns each requested channel,
    /// once, with its last seq. Either all channels are subscribed or, over the limit, none.
    pub fn subscribe<'c>(
        &self,
        id: ConnId,
        channels: &[&'c str],
        max_channels: usize,
    ) -> Result<Vec<(&'c str, u64)>, TooManyChannels> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(conn) = inner.conns.get_mut(&id) else {
            return Ok(Vec::new());
        };
        if conn.outbox.kick.is_kicked() {
            // Closing as a slow consumer: it subscribes to nothing any more.
            return Ok(Vec::new());
        }

        let mut requested: Vec<&'c str> = Vec::with_capacity(channels.len());
        for &name in channels {
            if !requested.contains(&name) {
                requested.push(name);
            }
        }
        let adding = requested
            .iter()
            .filter(|name| !conn.channels.contains(**name))
            .count();
        if conn.channels.len() + adding > max_channels {
            return Err(TooManyChannels {
                subscribed: conn.channels.len(),
                adding,
                max: max_channels,
            });
        }

        let mut answer = Vec::with_capacity(requested.len());
        for name in requested {
            let ch = inner.channels.entry(Box::from(name)).or_default();
            if conn.channels.insert(Box::from(name)) {
                ch.subscribers.insert(id, conn.outbox.clone());
                inner.subscriptions += 1;
                if ch.subscribers.len() == 1 {
                    inner.active_channels += 1;
                }
            }
            answer.push((name, ch.seq));
        }
        Ok(answer)
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

    /// Gives the event the next seq of its channel and queues it for every subscriber. Returns
    /// the seq.
    pub fn publish(&self, event: &ValidEvent<'_>) -> u64 {
        let mut inner = self.lock();
        let channel = inner
            .channels
            .entry(Box::from(event.channel.as_ref()))
            .or_default();
        channel.seq += 1;
        let seq = channel.seq;
        if channel.subscribers.is_empty() {
            return seq;
        }
        let frame = event.frame(seq);
        let mut kicked = Vec::new();
        for (&id, outbox) in &channel.subscribers {
            if !outbox.push(&frame) {
                kicked.push(id);
            }
        }
        // A slow consumer gets nothing more: its subscriptions end now, its connection closes
        // itself.
        for id in kicked {
            let channels = inner
                .conns
                .get_mut(&id)
                .map(|conn| std::mem::take(&mut conn.channels));
            for name in channels.into_iter().flatten() {
                inner.drop_subscription(id, &name);
            }
        }
        seq
    }

    pub fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats {
            connections: inner.conns.len(),
            channels: inner.active_channels,
            subscriptions: inner.subscriptions,
        }
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
    pub rx: mpsc::Receiver<Utf8Bytes>,
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

    fn event(channel: &str) -> ValidEvent<'_> {
        ValidEvent {
            channel: channel.into(),
            kind: "updated".into(),
            payload: RawValue::NULL,
            date: 1.0,
            meta: None,
        }
    }

    #[test]
    fn seq_grows_per_channel_and_survives_unsubscribe() {
        let broker = Broker::new();
        let mut a = broker.connect(8);
        assert_eq!(
            broker.subscribe(a.id, &["x", "y", "x"], 10),
            Ok(vec![("x", 0), ("y", 0)])
        );
        assert_eq!(broker.publish(&event("x")), 1);
        assert_eq!(broker.publish(&event("x")), 2);
        assert_eq!(broker.publish(&event("z")), 1);
        assert_eq!(
            broker.stats(),
            Stats {
                connections: 1,
                channels: 2,
                subscriptions: 2
            }
        );
        broker.unsubscribe(a.id, &["x", "unknown"]);
        assert_eq!(
            broker.stats(),
            Stats {
                connections: 1,
                channels: 1,
                subscriptions: 1
            }
        );
        assert_eq!(broker.subscribe(a.id, &["x"], 10), Ok(vec![("x", 2)]));
        let seqs: Vec<String> = std::iter::from_fn(|| a.rx.try_recv().ok())
            .map(|f| f.as_str().to_owned())
            .collect();
        assert_eq!(seqs.len(), 2);
        assert!(
            seqs[0].contains(r#""seq":1"#) && seqs[1].contains(r#""seq":2"#),
            "{seqs:?}"
        );
        drop(a);
        assert_eq!(
            broker.stats(),
            Stats {
                connections: 0,
                channels: 0,
                subscriptions: 0
            }
        );
    }

    #[test]
    fn channel_limit_is_all_or_nothing() {
        let broker = Broker::new();
        let a = broker.connect(8);
        assert!(broker.subscribe(a.id, &["a", "b"], 2).is_ok());
        assert!(
            broker.subscribe(a.id, &["a", "b"], 2).is_ok(),
            "re-subscribing adds nothing"
        );
        let err = broker.subscribe(a.id, &["a", "c"], 2).unwrap_err();
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
        let slow = broker.connect(2);
        let fast = broker.connect(8);
        for m in [&slow, &fast] {
            broker.subscribe(m.id, &["c"], 10).expect("subscribed");
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
                subscriptions: 1
            },
            "the slow one left"
        );
        assert_eq!(broker.subscribe(slow.id, &["c"], 10), Ok(vec![]));
    }
}
