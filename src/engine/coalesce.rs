//! Coalescing of event bursts, sans-IO: at most one callback per window per subscription.
//!
//! A backend that updates one record 50 times in 160 ms would otherwise make every page subscribed
//! to it refetch 50 times. With a window of `w` ms, a subscription gets the first event of a burst
//! at once and opens a window; events that reach it while the window is open are merged into one
//! trailing event, delivered when the window ends (which opens the next window, so a steady stream
//! yields one callback per `w`). A window that ends with nothing merged closes: the next event is
//! delivered at once again.
//!
//! The trailing event is the last merged event, with what the app needs to act on all of them:
//! `payload.ids` is the union of the merged events' ids (so an id filter or an invalidation by id
//! still sees every record touched), `meta.coalesced` the number of events it stands for and
//! `meta.ids` the same union. When a merged event carried no ids (it may concern any record) the
//! union is unknown: `payload.ids` is removed and `meta.ids` left out. A burst of one event is
//! delivered unchanged.
//!
//! Resyncs are never delayed: a resync of a subscription ends its window and drops the events
//! waiting in it (the refetch the resync causes covers them).
//!
//! The session owns one [`Coalescer`]; its deadline joins the session's
//! [`poll_timeout`](super::Session::poll_timeout) and [`Coalescer::flush`] runs in
//! [`handle_timeout`](super::Session::handle_timeout).

use super::event::{Event, RecordId};
use super::json::{self, Kind, Reader};
use super::registry::SubId;
use super::time::{Millis, MAX_TIMER_MS};
use crate::prelude::*;

/// The events one subscription is holding back in its window.
#[derive(Debug, Clone, PartialEq)]
struct Burst {
    /// The last event merged.
    last: Event,
    /// How many events were merged (at least 1).
    count: u64,
    /// The union of their ids, in the order first seen: (normalised id, its JSON text as sent).
    /// `None` once a merged event carried no ids.
    ids: Option<Vec<(RecordId, String)>>,
}

impl Burst {
    fn new(event: &Event) -> Self {
        Burst {
            last: event.clone(),
            count: 1,
            ids: raw_ids(event),
        }
    }

    fn merge(&mut self, event: &Event) {
        self.count += 1;
        self.last = event.clone();
        match (&mut self.ids, raw_ids(event)) {
            (Some(union), Some(more)) => {
                for (id, raw) in more {
                    if !union.iter().any(|(known, _)| *known == id) {
                        union.push((id, raw));
                    }
                }
            }
            (union, _) => *union = None,
        }
    }

    /// The event that stands for the whole burst.
    fn into_event(self) -> Event {
        if self.count == 1 {
            return self.last;
        }
        let mut event = self.last;
        let union: Option<String> = self.ids.as_ref().map(|ids| {
            let mut text = String::from("[");
            for (i, (_, raw)) in ids.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(raw);
            }
            text.push(']');
            text
        });
        let count = crate::engine::text::decimal(self.count);
        // `payload.ids`: the union, or removed when unknown. A payload that is not an object has no
        // ids to adjust and stays as it was.
        if let Some(payload) = with_members(&event.payload, &[("ids", union.as_deref())]) {
            event.payload = payload;
        }
        let mut meta = vec![("coalesced", Some(count.as_str()))];
        if let Some(union) = union.as_deref() {
            meta.push(("ids", Some(union)));
        }
        let base = event.meta.as_deref().unwrap_or("{}");
        event.meta = with_members(base, &meta).or_else(|| with_members("{}", &meta));
        event.ids = self
            .ids
            .map(|ids| ids.into_iter().map(|(id, _)| id).collect());
        event
    }
}

/// One subscription's window.
#[derive(Debug, Clone, PartialEq)]
struct Window {
    /// When it ends.
    until: Millis,
    /// What arrived while it was open.
    burst: Option<Burst>,
}

/// A small map by subscription: a `Vec` sorted by id (a page holds tens of subscriptions; this
/// costs far less wasm than another `BTreeMap` or `HashMap` instance).
#[derive(Debug)]
struct SubMap<V>(Vec<(SubId, V)>);

impl<V> Default for SubMap<V> {
    fn default() -> Self {
        SubMap(Vec::new())
    }
}

impl<V> SubMap<V> {
    fn find(&self, sub: SubId) -> Result<usize, usize> {
        self.0.binary_search_by_key(&sub, |(s, _)| *s)
    }

    fn get(&self, sub: SubId) -> Option<&V> {
        self.find(sub).ok().map(|i| &self.0[i].1)
    }

    fn get_mut(&mut self, sub: SubId) -> Option<&mut V> {
        self.find(sub).ok().map(|i| &mut self.0[i].1)
    }

    fn insert(&mut self, sub: SubId, value: V) {
        match self.find(sub) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (sub, value)),
        }
    }

    fn remove(&mut self, sub: SubId) -> Option<V> {
        self.find(sub).ok().map(|i| self.0.remove(i).1)
    }
}

/// Per-subscription coalescing windows. See the module documentation.
#[derive(Debug, Default)]
pub struct Coalescer {
    /// The window of subscriptions without one of their own; `0`: off.
    default_ms: Millis,
    /// Subscriptions with their own window (`0`: off for that one).
    custom: SubMap<Millis>,
    /// Open windows, by subscription (ordered, so that flushing is deterministic).
    windows: SubMap<Window>,
    /// Callbacks saved: events merged into a burst that already held one, and events dropped by a
    /// resync.
    merged_away: u64,
}

impl Coalescer {
    /// `default_ms`: every subscription's window unless it has its own; `0` turns coalescing off.
    pub fn new(default_ms: Millis) -> Self {
        Coalescer {
            default_ms: default_ms.min(MAX_TIMER_MS),
            ..Coalescer::default()
        }
    }

    /// Gives `sub` its own window (`0`: no coalescing for it, whatever the default).
    pub fn set_window(&mut self, sub: SubId, ms: Millis) {
        self.custom.insert(sub, ms.min(MAX_TIMER_MS));
        if ms == 0 {
            // Whatever it held back goes out with the next flush (now due).
            if let Some(w) = self.windows.get_mut(sub) {
                w.until = 0;
            }
        }
    }

    /// The window of `sub`, ms (`0`: off).
    pub fn window_of(&self, sub: SubId) -> Millis {
        self.custom.get(sub).copied().unwrap_or(self.default_ms)
    }

    /// Callbacks saved so far (`stats.coalesced`).
    pub fn merged_away(&self) -> u64 {
        self.merged_away
    }

    /// An event routed to `subs` (in order): returns those to call now, in the same order. The
    /// others are inside a window and merge the event into its trailing event. Calling a
    /// subscription now opens its window.
    pub fn route(&mut self, now: Millis, subs: Vec<SubId>, event: &Event) -> Vec<SubId> {
        self.route_with(now, subs, || event.clone())
    }

    /// [`route`](Self::route) with the event built by `make` only if a window holds it back: in
    /// the common case (no window open) the event is never copied.
    pub fn route_with(
        &mut self,
        now: Millis,
        subs: Vec<SubId>,
        make: impl FnOnce() -> Event,
    ) -> Vec<SubId> {
        if self.default_ms == 0 && self.custom.0.is_empty() {
            return subs; // off: no copy, no bookkeeping
        }
        let mut make = Some(make);
        let mut built: Option<Event> = None;
        let mut at_once = Vec::with_capacity(subs.len());
        for sub in subs {
            let ms = self.window_of(sub);
            match self.windows.get_mut(sub) {
                // Open, or ended with events that the timer (late) has not flushed yet: this one
                // joins them, and goes out with them.
                Some(w) if w.until > now || w.burst.is_some() => {
                    if built.is_none() {
                        built = make.take().map(|make| make());
                    }
                    // `built` is set from here on (`make` runs once, the first time it is needed).
                    let Some(event) = built.as_ref() else {
                        at_once.push(sub);
                        continue;
                    };
                    match &mut w.burst {
                        Some(burst) => {
                            burst.merge(event);
                            self.merged_away += 1;
                        }
                        None => w.burst = Some(Burst::new(event)),
                    }
                }
                _ if ms == 0 => at_once.push(sub),
                // No window, or one that ended empty: deliver now, and open the next window.
                _ => {
                    at_once.push(sub);
                    let until = now.saturating_add(ms);
                    self.windows.insert(sub, Window { until, burst: None });
                }
            }
        }
        at_once
    }

    /// These subscriptions get a resync: their windows end, and the events they held back are
    /// dropped (the refetch the resync causes covers them).
    pub fn resync(&mut self, subs: &[SubId]) {
        for sub in subs {
            if let Some(w) = self.windows.remove(*sub) {
                // Its merges were counted; the trailing callback is saved too.
                self.merged_away += u64::from(w.burst.is_some());
            }
        }
    }

    /// `sub` ended: whatever it held back is dropped.
    pub fn remove(&mut self, sub: SubId) {
        self.windows.remove(sub);
        self.custom.remove(sub);
    }

    /// Everything ended (the session closed).
    pub fn clear(&mut self) {
        self.windows.0.clear();
        self.custom.0.clear();
    }

    /// When the next window ends.
    pub fn deadline(&self) -> Option<Millis> {
        self.windows.0.iter().map(|(_, w)| w.until).min()
    }

    /// Ends the windows due at `now`: returns the trailing events to deliver, each with the
    /// subscriptions that get it (subscriptions that held back exactly the same events share one).
    /// A window that delivers opens the next one; an empty one closes.
    pub fn flush(&mut self, now: Millis) -> Vec<(Vec<SubId>, Event)> {
        let due: Vec<SubId> = (self.windows.0.iter())
            .filter(|(_, w)| w.until <= now)
            .map(|(sub, _)| *sub)
            .collect();
        let mut groups: Vec<(Vec<SubId>, Burst)> = Vec::new();
        for sub in due {
            let ms = self.window_of(sub);
            let Some(w) = self.windows.get_mut(sub) else {
                continue;
            };
            match w.burst.take() {
                Some(burst) => {
                    if ms == 0 {
                        self.windows.remove(sub);
                    } else {
                        w.until = now.saturating_add(ms);
                    }
                    match groups.iter_mut().find(|(_, b)| *b == burst) {
                        Some((subs, _)) => subs.push(sub),
                        None => groups.push((vec![sub], burst)),
                    }
                }
                None => {
                    self.windows.remove(sub);
                }
            }
        }
        groups
            .into_iter()
            .map(|(subs, burst)| (subs, burst.into_event()))
            .collect()
    }
}

/// `payload.ids` with each id's JSON text as sent (a number stays a number); `None` when the event
/// has no ids.
fn raw_ids(event: &Event) -> Option<Vec<(RecordId, String)>> {
    let ids = event.ids.as_ref()?;
    let raw: Option<Vec<&str>> = members(&event.payload)
        .and_then(|m| m.into_iter().rev().find(|(k, _)| k == "ids"))
        .and_then(|(_, v)| elements(v));
    Some(match raw {
        Some(raw) if raw.len() == ids.len() => (ids.iter().cloned())
            .zip(raw.iter().map(|r| (*r).to_owned()))
            .collect(),
        // Cannot happen for ids the session read from this payload; quoting the normalised form
        // keeps the union correct for a string comparison anyway.
        _ => ids
            .iter()
            .map(|id| {
                let mut quoted = String::new();
                json::push_str(&mut quoted, id);
                (id.clone(), quoted)
            })
            .collect(),
    })
}

/// The elements of a JSON array text (their text); `None` when it is not an array.
fn elements(text: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut r = Reader::new(text);
    r.array(|r| {
        out.push(r.raw()?);
        Ok::<_, json::Error>(())
    })
    .ok()?;
    r.end().ok()?;
    Some(out)
}

/// The members of a JSON object text (keys decoded, values as their text), in order; `None` when
/// it is not an object.
fn members(text: &str) -> Option<Vec<(String, &str)>> {
    let mut r = Reader::new(text);
    if r.kind() != Ok(Kind::Object) {
        return None;
    }
    let mut out = Vec::new();
    r.object(|r, key| {
        out.push((key.into_owned(), r.raw()?));
        Ok::<_, json::Error>(())
    })
    .ok()?;
    r.end().ok()?;
    Some(out)
}

/// The JSON object `text` with the members named in `set` replaced (their JSON text) or removed
/// (`None`); new ones go last. `None` when `text` is not an object.
fn with_members(text: &str, set: &[(&str, Option<&str>)]) -> Option<String> {
    let kept = members(text)?;
    let mut out = String::from("{");
    let push = |out: &mut String, key: &str, value: &str| {
        if out.len() > 1 {
            out.push(',');
        }
        json::push_str(out, key);
        out.push(':');
        out.push_str(value);
    };
    for (key, value) in &kept {
        if !set.iter().any(|(k, _)| k == key) {
            push(&mut out, key, value);
        }
    }
    for (key, value) in set {
        if let Some(value) = value {
            push(&mut out, key, value);
        }
    }
    out.push('}');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::payload_ids;

    fn ev(seq: u64, payload: &str, meta: Option<&str>) -> Event {
        Event {
            channel: "resources/posts".into(),
            kind: "updated".into(),
            seq,
            payload: payload.into(),
            date: 1_700_000_000_000.0 + seq as f64,
            meta: meta.map(str::to_owned),
            ids: payload_ids(payload).expect("test ids"),
        }
    }

    fn json(text: &str) -> serde_json::Value {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn off_by_default_passes_everything_through() {
        let mut c = Coalescer::new(0);
        for seq in 1..=50 {
            assert_eq!(
                c.route(seq, vec![1, 2], &ev(seq, r#"{"ids":[2]}"#, None)),
                vec![1, 2]
            );
        }
        assert_eq!(c.deadline(), None);
        assert!(c.flush(1_000).is_empty());
        assert_eq!(c.merged_away(), 0);
    }

    #[test]
    fn a_burst_is_the_first_event_at_once_then_one_trailing_event() {
        let mut c = Coalescer::new(250);
        // 50 updates of post 2 over 150 ms.
        let mut at_once = 0;
        for i in 0..50u64 {
            let now = 1_000 + i * 3;
            at_once += c
                .route(now, vec![7], &ev(i + 1, r#"{"ids":[2]}"#, None))
                .len();
        }
        assert_eq!(at_once, 1);
        assert_eq!(c.deadline(), Some(1_250));
        assert!(c.flush(1_249).is_empty(), "nothing before the window ends");
        let out = c.flush(1_250);
        assert_eq!(out.len(), 1);
        let (subs, event) = &out[0];
        assert_eq!(subs, &vec![7]);
        assert_eq!(event.seq, 50, "the last event stands for the burst");
        assert_eq!(json(&event.payload), json(r#"{"ids":[2]}"#));
        assert_eq!(
            json(event.meta.as_deref().expect("meta")),
            json(r#"{"coalesced":49,"ids":[2]}"#)
        );
        assert_eq!(event.ids, Some(vec!["2".to_owned()]));
        assert_eq!(c.merged_away(), 48, "49 events in one callback save 48");
        // The trailing event opened the next window; it ends empty and closes.
        assert_eq!(c.deadline(), Some(1_500));
        assert!(c.flush(1_500).is_empty());
        assert_eq!(c.deadline(), None);
        // The next event is delivered at once again.
        assert_eq!(c.route(2_000, vec![7], &ev(51, "{}", None)), vec![7]);
    }

    #[test]
    fn the_trailing_event_carries_the_union_of_ids_and_keeps_other_fields() {
        let mut c = Coalescer::new(100);
        c.route(0, vec![1], &ev(1, r#"{"ids":[1]}"#, None));
        c.route(10, vec![1], &ev(2, r#"{"ids":[2,"x"],"title":"a"}"#, None));
        c.route(
            20,
            vec![1],
            &ev(3, r#"{"title":"b","ids":[3,2]}"#, Some(r#"{"user":"u"}"#)),
        );
        let out = c.flush(100);
        let event = &out[0].1;
        assert_eq!(
            json(&event.payload),
            json(r#"{"title":"b","ids":[2,"x",3]}"#),
            "ids of the merged events (not of the one delivered at once), numbers kept as numbers"
        );
        assert_eq!(
            json(event.meta.as_deref().expect("meta")),
            json(r#"{"user":"u","coalesced":2,"ids":[2,"x",3]}"#)
        );
        assert_eq!(
            event.ids,
            Some(vec!["2".to_owned(), "x".to_owned(), "3".to_owned()])
        );
    }

    #[test]
    fn an_event_without_ids_makes_the_union_unknown() {
        let mut c = Coalescer::new(100);
        c.route(0, vec![1], &ev(1, "{}", None));
        c.route(10, vec![1], &ev(2, r#"{"ids":[1]}"#, None));
        c.route(20, vec![1], &ev(3, r#"{"note":true}"#, None));
        c.route(30, vec![1], &ev(4, r#"{"ids":[4]}"#, None));
        let event = c.flush(100).remove(0).1;
        assert_eq!(json(&event.payload), json("{}"), "ids removed: any record");
        assert_eq!(
            json(event.meta.as_deref().expect("meta")),
            json(r#"{"coalesced":3}"#)
        );
        assert_eq!(event.ids, None);
    }

    #[test]
    fn a_burst_of_one_is_delivered_unchanged() {
        let mut c = Coalescer::new(100);
        c.route(0, vec![1], &ev(1, r#"{"ids":[1]}"#, None));
        let second = ev(2, r#"{"ids":[2]}"#, Some(r#"{"a":1}"#));
        assert!(c.route(50, vec![1], &second).is_empty());
        assert_eq!(c.flush(100), vec![(vec![1], second)]);
        assert_eq!(c.merged_away(), 0);
    }

    #[test]
    fn subscriptions_keep_their_own_windows() {
        let mut c = Coalescer::new(100);
        c.set_window(2, 0); // off for this one
        c.set_window(3, 1_000);
        assert_eq!(c.route(0, vec![1, 2, 3], &ev(1, "{}", None)), vec![1, 2, 3]);
        assert_eq!(c.route(10, vec![1, 2, 3], &ev(2, "{}", None)), vec![2]);
        assert_eq!(c.route(20, vec![1, 2, 3], &ev(3, "{}", None)), vec![2]);
        let out = c.flush(100);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, vec![1]);
        assert_eq!(c.deadline(), Some(200));
        assert!(c.flush(999).iter().all(|(subs, _)| !subs.contains(&3)));
        let out = c.flush(1_000);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, vec![3]);
        assert_eq!(out[0].1.seq, 3);
    }

    #[test]
    fn subscriptions_holding_the_same_events_share_one_trailing_event() {
        let mut c = Coalescer::new(100);
        c.route(0, vec![1, 2], &ev(1, r#"{"ids":[1]}"#, None));
        c.route(10, vec![1, 2], &ev(2, r#"{"ids":[1]}"#, None));
        c.route(20, vec![1, 2], &ev(3, r#"{"ids":[1]}"#, None));
        let out = c.flush(100);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, vec![1, 2]);
        assert_eq!(c.merged_away(), 2, "one saved callback per subscription");
    }

    #[test]
    fn a_late_timer_does_not_reorder_or_lose_events() {
        let mut c = Coalescer::new(100);
        c.route(0, vec![1], &ev(1, "{}", None));
        c.route(50, vec![1], &ev(2, "{}", None));
        // The window ended at 100 but the timer has not fired: the event joins the waiting ones.
        assert!(c.route(130, vec![1], &ev(3, "{}", None)).is_empty());
        let out = c.flush(131);
        assert_eq!(out[0].1.seq, 3);
        assert_eq!(
            json(out[0].1.meta.as_deref().expect("meta")),
            json(r#"{"coalesced":2}"#)
        );
        // A window that ended empty, not flushed yet: the next event goes out at once.
        assert_eq!(c.route(400, vec![1], &ev(4, "{}", None)), vec![1]);
        assert_eq!(c.deadline(), Some(500));
    }

    #[test]
    fn a_resync_ends_the_window_and_drops_what_it_held() {
        let mut c = Coalescer::new(100);
        c.route(0, vec![1, 2], &ev(1, "{}", None));
        c.route(10, vec![1, 2], &ev(2, "{}", None));
        c.route(20, vec![1, 2], &ev(3, "{}", None));
        c.resync(&[1]);
        // One merge in each burst, and subscription 1's trailing callback.
        assert_eq!(c.merged_away(), 1 + 1 + 1);
        let out = c.flush(100);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, vec![2]);
        // After the resync, subscription 1 is called at once again.
        assert_eq!(c.route(30, vec![1, 2], &ev(4, "{}", None)), vec![1]);
    }

    #[test]
    fn ended_subscriptions_and_turned_off_windows() {
        let mut c = Coalescer::new(100);
        c.route(0, vec![1, 2], &ev(1, "{}", None));
        c.route(10, vec![1, 2], &ev(2, "{}", None));
        c.remove(1);
        c.set_window(2, 0);
        // Turning a window off sends what it held at the next flush, at once.
        assert_eq!(c.deadline(), Some(0));
        let out = c.flush(10);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, vec![2]);
        assert_eq!(c.deadline(), None);
        c.clear();
        assert_eq!(c.route(20, vec![1], &ev(3, "{}", None)), vec![1]);
    }

    #[test]
    fn object_members_are_replaced_and_escaped() {
        assert_eq!(
            with_members(
                r#"{"a\"b":1,"ids":[1],"c":{"ids":2}}"#,
                &[("ids", Some("[3]"))]
            ),
            Some(r#"{"a\"b":1,"c":{"ids":2},"ids":[3]}"#.to_owned())
        );
        assert_eq!(with_members("{}", &[("ids", None)]), Some("{}".to_owned()));
        assert_eq!(with_members("[1]", &[("ids", None)]), None);
        assert_eq!(with_members("\"text\"", &[]), None);
    }

    #[test]
    fn a_payload_that_is_not_an_object_stays_as_it_was() {
        let mut c = Coalescer::new(100);
        c.route(0, vec![1], &ev(1, "[1,2]", None));
        c.route(10, vec![1], &ev(2, "[1,2]", None));
        c.route(20, vec![1], &ev(3, r#""x""#, Some("{}")));
        let event = c.flush(100).remove(0).1;
        assert_eq!(event.payload, r#""x""#);
        assert_eq!(
            json(event.meta.as_deref().expect("meta")),
            json(r#"{"coalesced":2}"#)
        );
    }

    /// Random schedules (fixed seeds) of events, late timers, resyncs and ended subscriptions,
    /// checked against what coalescing promises, subscription by subscription:
    /// - deliveries come in `seq` order, and a trailing event standing for `k` events is exactly
    ///   the `k` events held back since the previous delivery, with the union of their ids (none
    ///   when one of them had none);
    /// - nothing is lost: every event is delivered, merged into a later delivery, or dropped by a
    ///   resync or the end of its subscription, and a merged one goes out within the window plus
    ///   the timer's lateness;
    /// - at most one callback per window: two deliveries with no resync between are a window apart;
    /// - an event that finds no window open and nothing held back is delivered at once.
    #[test]
    fn random_schedules_keep_every_promise() {
        use crate::engine::backoff::XorShift;

        const IDS: [&str; 4] = ["1", "2", "\"x\"", "3"];
        #[derive(Default)]
        struct Model {
            window: Millis,
            /// Routed and not delivered yet: (seq, normalised ids or None, when).
            held: Vec<(u64, Option<Vec<String>>, Millis)>,
            last_delivery: Option<Millis>,
            resynced_since: bool,
            delivered: u64,
            dropped: u64,
        }
        fn union(held: &[(u64, Option<Vec<String>>, Millis)]) -> Option<Vec<String>> {
            let mut out: Vec<String> = Vec::new();
            for (_, ids, _) in held {
                for id in ids.as_ref()? {
                    if !out.contains(id) {
                        out.push(id.clone());
                    }
                }
            }
            Some(out)
        }
        fn check(
            case: u64,
            m: &mut Model,
            sub: SubId,
            now: Millis,
            max_late: Millis,
            event: &Event,
        ) {
            let k = match event.meta.as_deref().map(json) {
                Some(meta) if meta.get("coalesced").is_some() => {
                    meta["coalesced"].as_u64().expect("a count")
                }
                _ => 1,
            } as usize;
            let n = m
                .held
                .iter()
                .take_while(|(seq, ..)| *seq <= event.seq)
                .count();
            assert_eq!(
                n, k,
                "case {case}, sub {sub}: {k} merged, {n} held up to {}",
                event.seq
            );
            assert_eq!(
                m.held[k - 1].0,
                event.seq,
                "case {case}: the last one held stands for them"
            );
            let merged: Vec<_> = m.held.drain(..k).collect();
            assert_eq!(event.ids, union(&merged), "case {case}, sub {sub}: ids");
            if k > 1 {
                let payload = json(&event.payload);
                match &event.ids {
                    Some(ids) => {
                        assert_eq!(payload["ids"].as_array().map(Vec::len), Some(ids.len()))
                    }
                    None => assert!(payload.get("ids").is_none(), "case {case}: {payload}"),
                }
            }
            for (_, _, at) in &merged {
                assert!(
                    now <= at + m.window + max_late,
                    "case {case}, sub {sub}: an event of {at} delivered at {now}"
                );
            }
            if let (Some(prev), false) = (m.last_delivery, m.resynced_since) {
                assert!(
                    now >= prev + m.window,
                    "case {case}, sub {sub}: deliveries at {prev} and {now}, window {}",
                    m.window
                );
            }
            m.last_delivery = Some(now);
            m.resynced_since = false;
            m.delivered += k as u64;
        }

        for case in 0..300u64 {
            let mut rng = XorShift::new(case.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut roll = |n: u64| rng.next_u64() % n;
            let default_ms = [0, 40, 100][roll(3) as usize];
            let max_late = roll(30);
            let mut c = Coalescer::new(default_ms);
            let mut models: alloc::collections::BTreeMap<SubId, Model> = Default::default();
            let mut next_sub: SubId = 1;
            let mut seq = 0;
            let mut now: Millis = 0;
            let mut routed = 0u64;
            let mut removed = 0u64;
            let mut timer: Option<Millis> = None;
            let mut armed_for: Option<Millis> = None;
            for _ in 0..3 {
                let window = match roll(3) {
                    0 => default_ms,
                    _ => {
                        let w = [0, 30, 120][roll(3) as usize];
                        c.set_window(next_sub, w);
                        w
                    }
                };
                models.insert(
                    next_sub,
                    Model {
                        window,
                        ..Model::default()
                    },
                );
                next_sub += 1;
            }
            for _step in 0..200 {
                now += roll(25);
                // The shell arms its timer for the deadline after every input; it fires then, or
                // late (a busy page), before this input.
                loop {
                    let deadline = c.deadline();
                    if deadline != armed_for {
                        armed_for = deadline;
                        timer = deadline.map(|d| d + roll(max_late + 1));
                    }
                    let Some(at) = timer.filter(|at| *at <= now) else {
                        break;
                    };
                    (timer, armed_for) = (None, None);
                    for (subs, event) in c.flush(at) {
                        for sub in subs {
                            let m = models.get_mut(&sub).expect("a live subscription");
                            check(case, m, sub, at, max_late, &event);
                        }
                    }
                }
                match roll(20) {
                    0 => {
                        let subs: Vec<SubId> =
                            models.keys().copied().filter(|_| roll(2) == 0).collect();
                        c.resync(&subs);
                        for sub in subs {
                            let m = models.get_mut(&sub).expect("live");
                            m.dropped += m.held.len() as u64;
                            m.held.clear();
                            m.resynced_since = true;
                        }
                    }
                    1 => {
                        let sub = *models
                            .keys()
                            .nth(roll(models.len() as u64) as usize)
                            .expect("one");
                        c.remove(sub);
                        removed += models
                            .remove(&sub)
                            .map_or(0, |m| m.held.len() as u64 + m.delivered + m.dropped);
                        let window = [default_ms, 0, 60][roll(3) as usize];
                        if window != default_ms {
                            c.set_window(next_sub, window);
                        }
                        models.insert(
                            next_sub,
                            Model {
                                window,
                                ..Model::default()
                            },
                        );
                        next_sub += 1;
                    }
                    _ => {
                        seq += 1;
                        let ids: Vec<&str> = IDS.iter().copied().filter(|_| roll(3) == 0).collect();
                        let payload = match roll(4) {
                            0 => r#"{"title":"no ids"}"#.to_owned(),
                            _ => format!(r#"{{"ids":[{}],"n":{seq}}}"#, ids.join(",")),
                        };
                        let event = ev(seq, &payload, None);
                        let subs: Vec<SubId> =
                            models.keys().copied().filter(|_| roll(4) != 0).collect();
                        routed += subs.len() as u64;
                        let at_once = c.route(now, subs.clone(), &event);
                        assert!(at_once.iter().all(|s| subs.contains(s)), "case {case}");
                        for sub in subs {
                            let m = models.get_mut(&sub).expect("live");
                            // At once exactly when nothing is held back and no window is
                            // open (none yet, it ended, or a resync closed it).
                            let at_once_due = m.window == 0
                                || (m.held.is_empty()
                                    && (m.resynced_since
                                        || m.last_delivery.is_none_or(|t| t + m.window <= now)));
                            m.held.push((seq, event.ids.clone(), now));
                            assert_eq!(
                                at_once.contains(&sub),
                                at_once_due,
                                "case {case}, sub {sub}: event {seq} at {now}"
                            );
                            if at_once_due {
                                check(case, m, sub, now, max_late, &event);
                            }
                        }
                    }
                }
            }
            // The rest goes out when the last windows end.
            while let Some(d) = c.deadline() {
                for (subs, event) in c.flush(d) {
                    for sub in subs {
                        let m = models.get_mut(&sub).expect("live");
                        check(case, m, sub, d, max_late, &event);
                    }
                }
            }
            let mut accounted = removed;
            for (sub, m) in &models {
                assert!(
                    m.held.is_empty(),
                    "case {case}, sub {sub}: {:?} never delivered",
                    m.held
                );
                accounted += m.delivered + m.dropped;
            }
            assert_eq!(accounted, routed, "case {case}: every event accounted for");
        }
    }
}
