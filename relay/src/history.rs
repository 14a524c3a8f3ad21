//! A channel's recent events, so that a client coming back after a disconnect can be sent exactly
//! what it missed — or told that the gap can no longer be filled.
//!
//! Pure data structure, used by the relay (with the serialized frames as items) and by the
//! simulated relay of the fault-schedule tests (`relay/tests/fault_schedule.rs`).

use std::collections::VecDeque;

/// Milliseconds on the owner's clock.
pub type Millis = u64;

/// How much history a channel keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// At most this many events per channel (0 keeps none: every gap is a resync).
    pub max_events: usize,
    /// Events older than this are forgotten.
    pub max_age_ms: Millis,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            max_events: 1000,
            max_age_ms: 5 * 60 * 1000,
        }
    }
}

/// What a client that has seen events up to some `seq` can be given.
#[derive(Debug, PartialEq, Eq)]
pub enum Replay<'a, T> {
    /// Everything after its position, oldest first (possibly nothing).
    Events(Vec<&'a T>),
    /// Part of what it missed is gone (too old, or over the size limit).
    Gap,
}

/// The sequence numbers and recent events of one channel.
#[derive(Debug, Clone)]
pub struct ChannelLog<T> {
    last_seq: u64,
    entries: VecDeque<(u64, Millis, T)>,
}

impl<T> Default for ChannelLog<T> {
    fn default() -> Self {
        ChannelLog {
            last_seq: 0,
            entries: VecDeque::new(),
        }
    }
}

impl<T> ChannelLog<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty log whose next event is numbered `last_seq + 1` (a relay node that starts
    /// following a channel numbered elsewhere).
    pub fn starting_after(last_seq: u64) -> Self {
        ChannelLog {
            last_seq,
            entries: VecDeque::new(),
        }
    }

    /// The seq of the newest event (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// How many events are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The seq the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.last_seq + 1
    }

    /// Appends the next event (built with [`ChannelLog::next_seq`]); returns its seq.
    pub fn push(&mut self, now: Millis, limits: &HistoryLimits, item: T) -> u64 {
        self.last_seq += 1;
        self.entries.push_back((self.last_seq, now, item));
        self.prune(now, limits);
        self.last_seq
    }

    /// Forgets events beyond the limits.
    pub fn prune(&mut self, now: Millis, limits: &HistoryLimits) {
        while self.entries.len() > limits.max_events {
            self.entries.pop_front();
        }
        while self
            .entries
            .front()
            .is_some_and(|(_, at, _)| now.saturating_sub(*at) > limits.max_age_ms)
        {
            self.entries.pop_front();
        }
    }

    /// What a client whose last seen event is `seen` (0: none) can be given.
    pub fn since(&self, now: Millis, limits: &HistoryLimits, seen: u64) -> Replay<'_, T> {
        if seen == self.last_seq {
            return Replay::Events(Vec::new());
        }
        if seen > self.last_seq {
            return Replay::Gap;
        }
        let fresh = |at: Millis| now.saturating_sub(at) <= limits.max_age_ms;
        let wanted = seen + 1;
        match self
            .entries
            .iter()
            .position(|(seq, at, _)| *seq == wanted && fresh(*at))
        {
            Some(start) => {
                Replay::Events(self.entries.iter().skip(start).map(|(_, _, t)| t).collect())
            }
            None => Replay::Gap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HistoryLimits = HistoryLimits {
        max_events: 3,
        max_age_ms: 1000,
    };

    fn log_of(n: u64) -> ChannelLog<u64> {
        let mut log = ChannelLog::new();
        for _ in 0..n {
            log.push(0, &LIMITS, log.next_seq() * 10);
        }
        log
    }

    #[test]
    fn seqs_start_at_one_and_grow_by_one() {
        let mut log = ChannelLog::new();
        assert_eq!(log.last_seq(), 0);
        assert_eq!(log.next_seq(), 1);
        assert_eq!(log.push(0, &LIMITS, "a"), 1);
        assert_eq!(log.push(0, &LIMITS, "b"), 2);
        assert_eq!(log.last_seq(), 2);
    }

    #[test]
    fn replays_what_was_missed() {
        let log = log_of(5); // keeps 3, 4, 5
        assert_eq!(log.since(0, &LIMITS, 5), Replay::Events(vec![]));
        assert_eq!(log.since(0, &LIMITS, 4), Replay::Events(vec![&50]));
        assert_eq!(
            log.since(0, &LIMITS, 2),
            Replay::Events(vec![&30, &40, &50])
        );
    }

    #[test]
    fn a_gap_past_the_size_limit_or_from_the_future_cannot_be_filled() {
        let log = log_of(5);
        assert_eq!(log.since(0, &LIMITS, 1), Replay::Gap, "event 2 was dropped");
        assert_eq!(log.since(0, &LIMITS, 0), Replay::Gap);
        assert_eq!(
            log.since(0, &LIMITS, 6),
            Replay::Gap,
            "a position this log never had"
        );
    }

    #[test]
    fn old_events_expire_but_up_to_date_clients_are_not_told_of_a_gap() {
        let mut log = ChannelLog::new();
        log.push(0, &LIMITS, 1);
        log.push(500, &LIMITS, 2);
        assert_eq!(
            log.since(1200, &LIMITS, 0),
            Replay::Gap,
            "event 1 is older than 1 s"
        );
        assert_eq!(log.since(1200, &LIMITS, 1), Replay::Events(vec![&2]));
        log.prune(5000, &LIMITS);
        assert_eq!(log.since(5000, &LIMITS, 2), Replay::Events(vec![]));
        assert_eq!(log.since(5000, &LIMITS, 1), Replay::Gap);
    }

    #[test]
    fn no_history_means_every_gap_is_a_resync() {
        let none = HistoryLimits {
            max_events: 0,
            max_age_ms: 1000,
        };
        let mut log = ChannelLog::new();
        assert_eq!(log.push(0, &none, 1), 1);
        assert_eq!(log.push(0, &none, 2), 2);
        assert!(log.is_empty());
        assert_eq!(log.since(0, &none, 2), Replay::Events(vec![]));
        assert_eq!(log.since(0, &none, 1), Replay::Gap);
    }
}
