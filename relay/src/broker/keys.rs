//! The publish keys the in-process broker has seen recently, so that a publish resent with the
//! same key is answered with the seq it was given the first time instead of being published
//! twice. (The Redis broker keeps them in Redis.)

use crate::history::Millis;
use std::collections::{HashMap, VecDeque};

/// What a publish key was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedPublish {
    pub channel: Box<str>,
    pub seq: u64,
}

/// The publish keys seen recently, oldest first.
#[derive(Debug, Default)]
pub struct PublishKeys {
    seen: HashMap<Box<str>, KeyedPublish>,
    /// Every key of `seen` once, in the order it was first published.
    order: VecDeque<(Millis, Box<str>)>,
}

impl PublishKeys {
    /// What `key` was given, if it is remembered.
    pub fn get(&self, key: &str) -> Option<&KeyedPublish> {
        self.seen.get(key)
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        debug_assert_eq!(self.seen.len(), self.order.len());
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Forgets the keys older than `ttl`.
    pub fn expire(&mut self, now: Millis, ttl: Millis) {
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
    pub fn remember(&mut self, now: Millis, key: &str, published: KeyedPublish, max: usize) {
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
