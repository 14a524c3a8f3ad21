//! Property tests: the filter and the registry against a plain reference model of Refine's Ably
//! rule (docs: /work/shared/reference/contracts.md, section 1, "The filtering rule of Refine's own
//! Ably provider").
//!
//! No property-testing crate: a splitmix64 generator with fixed seeds, so every run checks the
//! same cases and a failure names the seed and case that reproduce it.
//!
//! Alphabets are small (two channels, a handful of types and ids) so that matches are frequent,
//! and they hold the rule's edge cases: `"*"` among the types, an empty type list, `"created"`,
//! the reserved `$resync`; ids as JSON numbers and as strings (`1`, `"1"`, `1.0`, `1e0` are one id
//! for JavaScript's `String`), an empty id list, absent `ids`, `ids: null`, payloads that are not
//! objects.

use crate::engine::event::{payload_ids, RecordId};
use crate::engine::filter::{Filter, TypeFilter};
use crate::engine::json;
use crate::engine::registry::{ChannelChange, Registry, SubId};

// ---------------------------------------------------------------------------------------------
// The reference model: a direct transcription of contracts.md, as plain as possible.
// ---------------------------------------------------------------------------------------------

/// One subscription, as Refine hands it to the provider.
#[derive(Debug, Clone)]
struct ModelSub {
    channel: &'static str,
    types: Vec<&'static str>,
    /// `params.ids`, each already as JavaScript's `String(id)` (the second column of [`IDS`]).
    ids: Option<Vec<&'static str>>,
}

/// One event, as published.
#[derive(Debug, Clone)]
struct ModelEvent {
    channel: &'static str,
    kind: &'static str,
    /// `payload.ids`, each already as JavaScript's `String(id)`; `None` when the payload has no
    /// `ids` (absent, `null`, or a payload that is not an object). `null` counts as absent: the
    /// contract says "present", and `ids: null` carries no id to compare.
    ids: Option<Vec<&'static str>>,
}

/// "An event passes when `types` includes `"*"` or the event's type; then, if the event type is
/// not `"created"` and both the subscription's `params.ids` and the event's `payload.ids` are
/// present, it passes only when they share at least one id, compared as strings. Otherwise it
/// passes." And an event only ever reaches the subscriptions of its own channel.
fn model_reaches(sub: &ModelSub, ev: &ModelEvent) -> bool {
    if sub.channel != ev.channel {
        return false;
    }
    if !(sub.types.contains(&"*") || sub.types.contains(&ev.kind)) {
        return false;
    }
    if ev.kind != "created" {
        if let (Some(sub_ids), Some(ev_ids)) = (&sub.ids, &ev.ids) {
            let shared = sub_ids.iter().any(|a| ev_ids.iter().any(|b| a == b));
            return shared;
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Alphabets.
// ---------------------------------------------------------------------------------------------

const CHANNELS: &[&str] = &["resources/posts", "resources/users"];

const TYPES: &[&str] = &["*", "created", "updated", "deleted", "$resync", "custom"];

/// Ids as they appear in JSON, with what JavaScript's `String(id)` makes of them (written out by
/// hand: that column is the model, not a call into the engine).
const IDS: &[(&str, &str)] = &[
    ("1", "1"),
    ("\"1\"", "1"),
    ("1.0", "1"),
    ("1e0", "1"),
    ("2", "2"),
    ("\"2\"", "2"),
    ("-0", "0"),
    ("\"0\"", "0"),
    ("2.5", "2.5"),
    ("\"2.5\"", "2.5"),
    ("\"01\"", "01"),
    ("\"a\"", "a"),
    ("\"\"", ""),
];

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }
}

/// A random subscription: the model's view, and the filter the engine gets (the JS glue has
/// already turned ids into strings with `String(id)`, and `"*"` among types into `All`).
fn gen_sub(rng: &mut Rng) -> ModelSub {
    let channel = rng.pick(CHANNELS);
    let types = (0..rng.below(4)).map(|_| rng.pick(TYPES)).collect();
    let ids = match rng.below(4) {
        0 => None,
        1 => Some(Vec::new()),
        _ => Some((0..1 + rng.below(3)).map(|_| rng.pick(IDS).1).collect()),
    };
    ModelSub {
        channel,
        types,
        ids,
    }
}

fn engine_filter(sub: &ModelSub) -> Filter {
    Filter::new(
        TypeFilter::from_types(sub.types.iter().copied()),
        sub.ids
            .as_ref()
            .map(|v| v.iter().map(|s| s.to_string()).collect()),
    )
}

/// A random event: the model's view, and the raw JSON payload text the engine reads ids from.
fn gen_event(rng: &mut Rng) -> (ModelEvent, String) {
    let channel = rng.pick(CHANNELS);
    let kind = rng.pick(&TYPES[1..]); // "*" is a subscription's wildcard; events have real types
    let kind = if rng.below(20) == 0 { "*" } else { kind }; // …but nothing stops one being published
    let (ids, payload) = match rng.below(8) {
        0 => (None, r#"{"title":"x"}"#.to_owned()),
        1 => (None, r#"{"ids":null,"title":"x"}"#.to_owned()),
        2 => (None, r#"{"nested":{"ids":[1]}}"#.to_owned()),
        3 => (
            None,
            if rng.below(2) == 0 { "[1]" } else { "\"1\"" }.to_owned(),
        ),
        4 => (Some(Vec::new()), r#"{"ids":[]}"#.to_owned()),
        _ => {
            let picked: Vec<(&str, &str)> = (0..1 + rng.below(3)).map(|_| rng.pick(IDS)).collect();
            let json: Vec<&str> = picked.iter().map(|p| p.0).collect();
            let payload = format!(r#"{{"title":"x","ids":[{}]}}"#, json.join(","));
            (Some(picked.iter().map(|p| p.1).collect()), payload)
        }
    };
    (ModelEvent { channel, kind, ids }, payload)
}

/// The ids the engine reads from a payload (the path a relay frame takes).
fn engine_ids(payload: &str) -> Option<Vec<RecordId>> {
    let payload = json::validate(payload).expect("generated payload is JSON");
    payload_ids(payload).expect("generated ids are strings and numbers")
}

// ---------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------

const FILTER_SEEDS: u64 = 20;
const FILTER_CASES_PER_SEED: usize = 5_000;

/// For one subscription and one event, `Filter::accepts` (plus the channel equality the registry
/// applies) answers exactly like the model.
#[test]
fn filter_agrees_with_the_ably_model() {
    let mut matched = 0usize;
    for seed in 0..FILTER_SEEDS {
        let mut rng = Rng(seed);
        for case in 0..FILTER_CASES_PER_SEED {
            let sub = gen_sub(&mut rng);
            let (ev, payload) = gen_event(&mut rng);
            let expected = model_reaches(&sub, &ev);
            let ids = engine_ids(&payload);
            let got =
                sub.channel == ev.channel && engine_filter(&sub).accepts(ev.kind, ids.as_deref());
            assert_eq!(
                got, expected,
                "seed {seed} case {case}: sub {sub:?} event {ev:?} payload {payload}"
            );
            matched += usize::from(expected);
        }
    }
    let total = FILTER_SEEDS as usize * FILTER_CASES_PER_SEED;
    // The alphabets are there to make both answers common; a generator that drifted to all-yes or
    // all-no would make this test vacuous.
    assert!(
        matched > total / 10 && matched < total * 9 / 10,
        "{matched} of {total}"
    );
}

const REGISTRY_SEEDS: u64 = 1_000;
const REGISTRY_OPS: usize = 120;

/// Random interleavings of subscribe, unsubscribe (of live, already removed and never issued
/// handles) and events: the registry routes each event to exactly the live subscriptions the
/// model says it reaches, in subscription order; it reports a channel's first subscription and
/// last unsubscription; `members` (what a `$resync` goes to) is every live subscription of the
/// channel, whatever its types and ids.
#[test]
fn registry_routes_like_the_ably_model_through_subscribe_and_unsubscribe() {
    let mut routed = 0usize;
    let mut reached = 0usize;
    for seed in 0..REGISTRY_SEEDS {
        let mut rng = Rng(0x5eed_0000 + seed);
        let mut reg = Registry::new();
        // The model's state: live subscriptions in subscription order, and every handle issued.
        let mut live: Vec<(SubId, ModelSub)> = Vec::new();
        let mut issued: Vec<SubId> = Vec::new();
        for op in 0..REGISTRY_OPS {
            let ctx = || format!("seed {seed} op {op}");
            match rng.below(10) {
                0..=3 => {
                    let sub = gen_sub(&mut rng);
                    let was_used = live.iter().any(|(_, s)| s.channel == sub.channel);
                    let (id, change) = reg.insert(sub.channel, engine_filter(&sub));
                    let want = if was_used {
                        ChannelChange::Shared
                    } else {
                        ChannelChange::Added
                    };
                    assert_eq!(change, want, "{}: subscribe {sub:?}", ctx());
                    assert!(!issued.contains(&id), "{}: handle {id} reused", ctx());
                    issued.push(id);
                    live.push((id, sub));
                }
                4..=5 => {
                    // Mostly a live handle; sometimes one already removed, or one never issued.
                    let id = match rng.below(4) {
                        0 if !issued.is_empty() => rng.pick(&issued),
                        1 => 1_000_000 + rng.below(10) as SubId,
                        _ if !live.is_empty() => live[rng.below(live.len())].0,
                        _ => 2_000_000,
                    };
                    let got = reg.remove(id);
                    let want = match live.iter().position(|(h, _)| *h == id) {
                        None => None,
                        Some(i) => {
                            let (_, sub) = live.remove(i);
                            let still = live.iter().any(|(_, s)| s.channel == sub.channel);
                            let change = if still {
                                ChannelChange::Shared
                            } else {
                                ChannelChange::Removed
                            };
                            Some((sub.channel.into(), change))
                        }
                    };
                    assert_eq!(got, want, "{}: unsubscribe {id}", ctx());
                }
                _ => {
                    let (ev, payload) = gen_event(&mut rng);
                    let want: Vec<SubId> = live
                        .iter()
                        .filter(|(_, s)| model_reaches(s, &ev))
                        .map(|(h, _)| *h)
                        .collect();
                    let ids = engine_ids(&payload);
                    let got = reg.route(ev.channel, ev.kind, ids.as_deref());
                    assert_eq!(
                        got,
                        want,
                        "{}: event {ev:?} payload {payload}; live {live:?}",
                        ctx()
                    );
                    routed += 1;
                    reached += usize::from(!want.is_empty());
                }
            }
            for channel in CHANNELS {
                let want: Vec<SubId> = live
                    .iter()
                    .filter(|(_, s)| s.channel == *channel)
                    .map(|(h, _)| *h)
                    .collect();
                assert_eq!(reg.members(channel), want, "{}: members {channel}", ctx());
                assert_eq!(reg.has_channel(channel), !want.is_empty(), "{}", ctx());
            }
            assert_eq!(reg.len(), live.len(), "{}", ctx());
        }
    }
    assert!(
        reached > routed / 10 && reached < routed * 9 / 10,
        "{reached} of {routed} events reached someone"
    );
}
