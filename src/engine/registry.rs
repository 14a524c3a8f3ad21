//! Subscriptions indexed by channel and by record id.
//!
//! Routing an event costs O(matching subscriptions): subscriptions without ids are kept apart
//! from those with ids, and the latter are reached through an index keyed by record id. Identical
//! channels share one server-side subscription: the registry reports when a channel gains its
//! first subscription and loses its last.

use super::event::RecordId;
use super::filter::Filter;
use super::hash::{Map, Set};
use super::sort::{sort, sort_dedup};
use crate::prelude::*;
use alloc::rc::Rc;

/// A subscription's handle. Handles grow monotonically, so their order is subscription order.
pub type SubId = u32;

#[derive(Debug)]
struct Subscription {
    /// The channel's name, shared with its index: no copy per subscription.
    channel: Rc<str>,
    filter: Filter,
}

#[derive(Debug)]
struct ChannelIndex {
    /// The channel's name, as its subscriptions share it.
    name: Rc<str>,
    /// Subscriptions not indexed by id (no ids, or an empty list): every event is a candidate.
    /// No order: what routing returns is sorted once (and a hash set costs less wasm than a
    /// `BTreeSet`).
    unindexed: Set<SubId>,
    /// Subscriptions with ids, by each of their ids. The subscriptions with ids are all here, so
    /// an event without ids (or "created"), which they all pass, reaches them through its values:
    /// no second set of them (at 10,000 `useOne` subscriptions it would cost memory per
    /// subscription).
    by_id: Map<RecordId, Vec<SubId>>,
}

impl ChannelIndex {
    fn new(name: Rc<str>) -> Self {
        ChannelIndex {
            name,
            unindexed: Set::default(),
            by_id: Map::default(),
        }
    }

    /// Adds subscription `id` under each of its record ids, or with those not indexed by id.
    fn add(&mut self, id: SubId, filter: &Filter) {
        match &filter.ids {
            Some(ids) if !ids.is_empty() => {
                for rid in ids {
                    // No copy of the id when it is indexed already.
                    match self.by_id.get_mut(rid) {
                        Some(list) => list.push(id),
                        None => {
                            self.by_id.insert(rid.clone(), vec![id]);
                        }
                    }
                }
            }
            _ => {
                self.unindexed.insert(id);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.unindexed.is_empty() && self.by_id.is_empty()
    }

    /// Every subscription indexed by id (each once per id it lists: the caller dedups).
    fn indexed(&self) -> impl Iterator<Item = &SubId> {
        self.by_id.values().flatten()
    }
}

/// What a change to the registry means for the server-side subscription of its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelChange {
    /// The channel got its first subscription: subscribe on the server.
    Added,
    /// The channel lost its last subscription: unsubscribe on the server.
    Removed,
    /// Other subscriptions share the channel: nothing to tell the server.
    Shared,
}

#[derive(Debug, Default)]
pub struct Registry {
    next: SubId,
    subs: Map<SubId, Subscription>,
    /// By name (the key shares the index's `name`).
    channels: Map<Rc<str>, ChannelIndex>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, channel: &str, filter: Filter) -> (SubId, ChannelChange) {
        self.next = self.next.wrapping_add(1);
        let id = self.next;
        // One lookup of the channel, and no copy of its name, when it has subscriptions already.
        let (name, change) = match self.channels.get_mut(channel) {
            Some(index) => {
                index.add(id, &filter);
                (index.name.clone(), ChannelChange::Shared)
            }
            None => {
                let name: Rc<str> = channel.into();
                let mut index = ChannelIndex::new(name.clone());
                index.add(id, &filter);
                self.channels.insert(name.clone(), index);
                (name, ChannelChange::Added)
            }
        };
        let channel = name;
        self.subs.insert(id, Subscription { channel, filter });
        (id, change)
    }

    /// Removes a subscription; `None` when it was not there (already removed).
    pub fn remove(&mut self, id: SubId) -> Option<(Rc<str>, ChannelChange)> {
        let sub = self.subs.remove(&id)?;
        let Some(index) = self.channels.get_mut(&sub.channel) else {
            return Some((sub.channel, ChannelChange::Removed));
        };
        match &sub.filter.ids {
            Some(ids) if !ids.is_empty() => {
                for rid in ids {
                    if let Some(list) = index.by_id.get_mut(rid) {
                        list.retain(|s| *s != id);
                        if list.is_empty() {
                            index.by_id.remove(rid);
                        }
                    }
                }
            }
            _ => {
                index.unindexed.remove(&id);
            }
        }
        let change = if index.is_empty() {
            self.channels.remove(&sub.channel);
            ChannelChange::Removed
        } else {
            ChannelChange::Shared
        };
        Some((sub.channel, change))
    }

    /// The subscriptions an event reaches, in subscription order.
    pub fn route(&self, channel: &str, kind: &str, ids: Option<&[RecordId]>) -> Vec<SubId> {
        let Some(index) = self.channels.get(channel) else {
            return Vec::new();
        };
        let mut out: Vec<SubId> = Vec::new();
        let accepts = |id: &SubId| {
            self.subs
                .get(id)
                .is_some_and(|s| s.filter.types.accepts(kind))
        };
        // The unindexed may list no ids at all (they pass) or an empty list (it passes no id).
        let unindexed_pass = |id: &SubId| {
            self.subs
                .get(id)
                .is_some_and(|s| s.filter.accepts(kind, ids))
        };
        out.extend(index.unindexed.iter().filter(|i| unindexed_pass(i)));
        match ids {
            // The id check narrows the candidates: those indexed under one of the event's ids.
            Some(event_ids) if kind != "created" => {
                for rid in event_ids {
                    if let Some(list) = index.by_id.get(rid) {
                        out.extend(list.iter().filter(|i| accepts(i)));
                    }
                }
            }
            // No ids on the event, or "created": every subscription passes the id check.
            _ => out.extend(index.indexed().filter(|i| accepts(i))),
        }
        sort_dedup(&mut out);
        out
    }

    /// Whether a subscription of `channel` filters by record id: only then does routing an event
    /// of it read the event's ids.
    pub fn indexes_ids(&self, channel: &str) -> bool {
        self.channels
            .get(channel)
            .is_some_and(|index| !index.by_id.is_empty())
    }

    /// Every subscription of a channel, in subscription order.
    pub fn members(&self, channel: &str) -> Vec<SubId> {
        let Some(index) = self.channels.get(channel) else {
            return Vec::new();
        };
        let mut out: Vec<SubId> = index
            .unindexed
            .iter()
            .chain(index.indexed())
            .copied()
            .collect();
        sort_dedup(&mut out);
        out
    }

    /// The channels that have at least one subscription, in name order (so frames that list them
    /// do not depend on hashing).
    pub fn channels(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = self.channels.keys().map(|c| &**c).collect();
        sort(&mut names);
        names.into_iter()
    }

    /// Whether some channel with a subscription satisfies `test` (no sorting, unlike
    /// [`channels`](Self::channels)).
    pub fn any_channel(&self, test: impl Fn(&str) -> bool) -> bool {
        self.channels.keys().any(|c| test(c))
    }

    pub fn has_channel(&self, channel: &str) -> bool {
        self.channels.contains_key(channel)
    }

    pub fn contains(&self, id: SubId) -> bool {
        self.subs.contains_key(&id)
    }

    /// The channel of a live subscription.
    pub fn channel_of(&self, id: SubId) -> Option<&str> {
        self.subs.get(&id).map(|s| &*s.channel)
    }

    pub fn len(&self) -> usize {
        self.subs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::filter::TypeFilter;

    fn filter(types: &[&str], ids: Option<&[&str]>) -> Filter {
        Filter::new(
            TypeFilter::from_types(types.iter().copied()),
            ids.map(|v| v.iter().map(|s| s.to_string()).collect()),
        )
    }

    fn evids(v: &[&str]) -> Vec<RecordId> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn identical_channels_share_one_server_subscription() {
        let mut r = Registry::new();
        let (a, ca) = r.insert("resources/posts", filter(&["*"], None));
        let (b, cb) = r.insert("resources/posts", filter(&["*"], Some(&["1"])));
        assert_eq!((ca, cb), (ChannelChange::Added, ChannelChange::Shared));
        assert_eq!(
            r.remove(a),
            Some(("resources/posts".into(), ChannelChange::Shared))
        );
        assert_eq!(r.remove(a), None, "a second unsubscribe is a no-op");
        assert_eq!(
            r.remove(b),
            Some(("resources/posts".into(), ChannelChange::Removed))
        );
        assert!(r.is_empty());
        assert_eq!(r.channels().count(), 0);
    }

    #[test]
    fn routes_only_to_matching_subscriptions_in_order() {
        let mut r = Registry::new();
        let (list, _) = r.insert("c", filter(&["*"], None));
        let (one2, _) = r.insert("c", filter(&["*"], Some(&["2"])));
        let (many, _) = r.insert("c", filter(&["updated"], Some(&["2", "3"])));
        let (deletes, _) = r.insert("c", filter(&["deleted"], None));
        let (_other, _) = r.insert("other", filter(&["*"], None));

        assert_eq!(
            r.route("c", "updated", Some(&evids(&["3"]))),
            vec![list, many]
        );
        assert_eq!(
            r.route("c", "updated", Some(&evids(&["2", "3"]))),
            vec![list, one2, many]
        );
        assert_eq!(
            r.route("c", "created", Some(&evids(&["9"]))),
            vec![list, one2]
        );
        assert_eq!(r.route("c", "deleted", None), vec![list, one2, deletes]);
        assert_eq!(r.route("c", "updated", Some(&evids(&["4"]))), vec![list]);
        assert!(r.route("nobody", "updated", None).is_empty());
    }

    #[test]
    fn unsubscribe_stops_routing() {
        let mut r = Registry::new();
        let (a, _) = r.insert("c", filter(&["*"], Some(&["1"])));
        let (b, _) = r.insert("c", filter(&["*"], Some(&["1"])));
        r.remove(a);
        assert_eq!(r.route("c", "updated", Some(&evids(&["1"]))), vec![b]);
        r.remove(b);
        assert!(r.route("c", "updated", Some(&evids(&["1"]))).is_empty());
    }

    #[test]
    fn many_subscriptions_on_one_channel_route_by_id() {
        let mut r = Registry::new();
        let subs: Vec<SubId> = (0..10_000)
            .map(|i| r.insert("rows", filter(&["*"], Some(&[&i.to_string()]))).0)
            .collect();
        assert_eq!(
            r.route("rows", "updated", Some(&evids(&["4242"]))),
            vec![subs[4242]]
        );
        assert_eq!(r.route("rows", "updated", None).len(), 10_000);
        for s in &subs {
            r.remove(*s);
        }
        assert!(r.is_empty());
    }

    /// The index must agree with the plain filter, whatever the mix.
    #[test]
    fn index_agrees_with_filter_by_brute_force() {
        let types: &[&[&str]] = &[&["*"], &["updated"], &["created", "deleted"], &[]];
        let idsets: &[Option<&[&str]>] = &[None, Some(&["1"]), Some(&["1", "2"]), Some(&[])];
        let mut r = Registry::new();
        let mut all = Vec::new();
        for t in types {
            for i in idsets {
                let f = filter(t, *i);
                let (id, _) = r.insert("c", f.clone());
                all.push((id, f));
            }
        }
        for kind in ["created", "updated", "deleted", "other"] {
            for ev in [
                None,
                Some(evids(&["1"])),
                Some(evids(&["2", "3"])),
                Some(evids(&[])),
            ] {
                let expected: Vec<SubId> = all
                    .iter()
                    .filter(|(_, f)| f.accepts(kind, ev.as_deref()))
                    .map(|(id, _)| *id)
                    .collect();
                assert_eq!(r.route("c", kind, ev.as_deref()), expected, "{kind} {ev:?}");
            }
        }
    }
}

/// The filter and the registry against a reference model of Refine's rule (here, above both).
#[cfg(test)]
mod proptests;
