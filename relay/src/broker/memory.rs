//! The in-process broker (the default): the hub numbers each channel's events itself and the
//! publish keys live in this process. One relay process, no dependency.

use super::epoch::new_epoch;
use super::hub::{Hub, Member, Settings};
use super::keys::{KeyedPublish, PublishKeys};
use super::outbound::{scopes, Entry, Scopes};
use super::outcome::Published;
use super::request::{Refusal, Request, Subscribed, TooManyChannels};
use super::stats::{ChannelStats, Stats};
use super::tickets::Tickets;
use crate::publish::ValidEvent;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug)]
pub struct MemoryBroker {
    hub: Arc<Hub>,
    /// Held for the whole of a publish: it numbers events one at a time, and keeps the keys.
    publishing: Mutex<PublishKeys>,
    pub tickets: Tickets,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        MemoryBroker::with_settings(Settings::default())
    }
}

impl MemoryBroker {
    /// A broker with the default settings.
    pub fn new() -> Arc<Self> {
        Arc::new(MemoryBroker::default())
    }

    pub fn with_settings(settings: Settings) -> Self {
        MemoryBroker {
            hub: Arc::new(Hub::new(settings, &new_epoch(), true)),
            publishing: Mutex::default(),
            tickets: Tickets::default(),
        }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    fn keys(&self) -> MutexGuard<'_, PublishKeys> {
        self.publishing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a connection without scopes (see [`Hub::connect`]).
    pub fn connect(&self, queue: usize) -> Member {
        self.hub.connect(queue, Scopes::from([]))
    }

    /// See [`Hub::subscribe`]; every channel exists here.
    pub fn subscribe<'c>(
        &self,
        id: u64,
        requests: &[Request<'c>],
        max_channels: usize,
    ) -> Result<Vec<Subscribed<'c>>, TooManyChannels> {
        match self.hub.subscribe(id, requests, max_channels) {
            Ok(answer) => Ok(answer),
            Err(Refusal::TooManyChannels(e)) => Err(e),
            // The in-process hub creates the channels it does not know.
            Err(Refusal::Untracked(_)) => Ok(Vec::new()),
        }
    }

    /// Gives the event the next seq of its channel, keeps it in the channel's history and queues
    /// it for every subscriber (a scoped event as a `skip` for the subscribers holding none of its
    /// scopes). An event whose key was published within the key TTL is not published again: the
    /// answer is the seq it was given then.
    pub fn publish(&self, event: &ValidEvent<'_>) -> Published {
        let settings = *self.hub.settings();
        let now = self.hub.now();
        let mut keys = self.keys();
        keys.expire(now, settings.publish_key_ttl_ms);
        if let Some(seen) = event.key.as_deref().and_then(|k| keys.get(k)) {
            return Published::Repeat {
                channel: seen.channel.clone(),
                seq: seen.seq,
            };
        }
        let seq = self.hub.deliver_next(&event.channel, |seq| Entry {
            seq,
            frame: event.frame(seq),
            scopes: event
                .scopes
                .as_ref()
                .map(|list| list.iter().map(|s| Box::from(s.as_ref())).collect()),
        });
        if let Some(key) = event.key.as_deref() {
            let published = KeyedPublish {
                channel: Box::from(event.channel.as_ref()),
                seq,
            };
            keys.remember(now, key, published, settings.max_publish_keys);
        }
        Published::New(seq)
    }

    /// Forgets the events and publish keys that are too old.
    pub fn sweep(&self) {
        self.hub.sweep();
        let ttl = self.hub.settings().publish_key_ttl_ms;
        self.keys().expire(self.hub.now(), ttl);
    }

    pub fn stats(&self) -> Stats {
        self.hub.stats()
    }

    pub fn channel_stats(&self) -> BTreeMap<String, ChannelStats> {
        self.hub.channel_stats()
    }

    pub fn unsubscribe(&self, id: u64, channels: &[&str]) {
        self.hub.unsubscribe(id, channels)
    }

    /// Connects with the given scopes.
    pub fn connect_scoped<S: AsRef<str>>(
        &self,
        queue: usize,
        list: impl IntoIterator<Item = S>,
    ) -> Member {
        self.hub.connect(queue, scopes(list))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::request::Since;
    use crate::history::{HistoryLimits, Millis};
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

    fn broker(history: usize, ttl: Millis) -> Arc<MemoryBroker> {
        Arc::new(MemoryBroker::with_settings(Settings {
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
        std::iter::from_fn(|| member.rx.try_recv())
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
        let broker = MemoryBroker::new();
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
                known_channels: 3,
                redis_outages: 0,
                redis_push_overflows: 0,
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
                known_channels: 3,
                redis_outages: 0,
                redis_push_overflows: 0,
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
                known_channels: 2,
                redis_outages: 0,
                redis_push_overflows: 0,
            }
        );
    }

    #[test]
    fn channel_stats_list_the_subscribed_channels() {
        let broker = MemoryBroker::new();
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
        let broker = MemoryBroker::new();
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
        let broker = MemoryBroker::new();
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
                known_channels: 1,
                redis_outages: 0,
                redis_push_overflows: 0,
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
        broker.hub().advance(1001);
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
        broker.hub().advance(600);
        broker.publish(&event("b"));
        broker.hub().advance(600);
        broker.sweep();
        assert_eq!(broker.stats().history_events, 1, "only b's second event");
        broker.hub().advance(1000);
        broker.publish(&event("a"));
        assert_eq!(broker.stats().history_events, 2);
        broker.sweep();
        assert_eq!(broker.stats().history_events, 1);

        let none = broker_without_history();
        none.publish(&event("a"));
        assert_eq!(none.publish(&event("a")), Published::New(2));
        assert_eq!(none.stats().history_events, 0);
    }

    fn broker_without_history() -> Arc<MemoryBroker> {
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

        broker.hub().advance(1001);
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
        assert_eq!(broker.keys().len(), 3);
        assert_eq!(broker.keys().len(), 3);
        broker.hub().advance(2000);
        broker.sweep();
        assert!(broker.keys().is_empty());
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
        let mut user1 = broker.connect_scoped(8, ["user:1", "team:7"]);
        let mut user2 = broker.connect_scoped(8, ["user:2"]);
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
        let positions: Vec<Option<(String, u64)>> = std::iter::from_fn(|| a.rx.try_recv())
            .map(|f| f.position.map(|p| (p.channel.to_string(), p.seq)))
            .collect();
        assert_eq!(
            positions,
            [None, Some(("c".to_owned(), 1)), Some(("c".to_owned(), 2))]
        );
    }

    #[test]
    fn channels_with_nothing_left_are_forgotten() {
        let broker = broker(10, 60_000);
        for i in 0..100_000 {
            broker.publish(&event(&format!("resources/posts/{i}")));
        }
        assert_eq!(broker.stats().known_channels, 100_000);
        broker.sweep();
        assert_eq!(
            broker.stats().known_channels,
            100_000,
            "their events are kept"
        );
        broker.hub().advance(60_001);
        broker.sweep();
        assert_eq!(broker.stats().known_channels, 0);
        assert_eq!(broker.stats().history_events, 0);
        // A subscribed channel is kept, with or without events.
        let a = broker.connect(8);
        broker.subscribe(a.id, &live(&["kept"]), 10).expect("ok");
        broker.hub().advance(120_000);
        broker.sweep();
        assert_eq!(broker.stats().known_channels, 1);
        drop(a);
        assert_eq!(
            broker.stats().known_channels,
            0,
            "forgotten as its last subscriber leaves"
        );
    }

    #[test]
    fn a_resume_across_the_forgetting_is_numbered_on_or_resynced() {
        let broker = broker(10, 1000);
        let mut up_to_date = broker.connect(16);
        let mut behind = broker.connect(16);
        broker
            .subscribe(up_to_date.id, &live(&["c"]), 10)
            .expect("ok");
        for _ in 0..3 {
            broker.publish(&event("c"));
        }
        drain(&mut up_to_date);
        // Both leave (up_to_date saw 1..3, behind only 1); the events expire and "c" is forgotten.
        broker.unsubscribe(up_to_date.id, &["c"]);
        broker.hub().advance(1001);
        broker.sweep();
        assert_eq!(broker.stats().known_channels, 0);
        // New events on "c": numbered after what was forgotten, never from 1 again.
        let next = broker.publish(&event("c")).seq();
        assert!(next > 3, "numbered on: {next}");
        broker.publish(&event("c"));
        // Up to date when it was forgotten: its position is still one the channel had. Either the
        // missed events follow (recovered), or it resyncs; never events under seqs it holds.
        let answer = broker
            .subscribe(up_to_date.id, &[since("c", 3)], 10)
            .expect("ok");
        let frames = drain(&mut up_to_date);
        let replayed = seqs(&frames);
        assert!(replayed.iter().all(|&seq| seq > 3), "{frames:?}");
        if answer[0].recovered == Some(true) {
            assert_eq!(replayed, [next, next + 1], "{frames:?}");
        }
        // Behind (it saw 1 only): the gap cannot be filled: exactly one resync, then live events.
        let answer = broker
            .subscribe(behind.id, &[since("c", 1)], 10)
            .expect("ok");
        assert_eq!(answer, vec![self::answer("c", next + 1, Some(false), 0)]);
        broker.publish(&event("c"));
        let frames = drain(&mut behind);
        assert_eq!(seqs(&frames), [next + 2], "{frames:?}");
    }
}
