//! The deadline table: every timer of a session, by name, in one place.
//!
//! A [`Timer`] names one reason for the shell to call [`super::Session::handle_timeout`];
//! [`Timer::ALL`] is also the order in which a due timer fires there. A [`Deadlines`] table holds at
//! most one deadline per timer. The session keeps the timers it arms itself (idle close, stream
//! reopen) in its table; the others follow from state that already says when they are due — the
//! link's own times, the publish queue, the refresh of the token, the coalescer — and are read from
//! it in one place (`Session::deadline`, in `timeouts.rs`).

use crate::engine::time::Millis;
pub use crate::engine::time::{timer_delay, MAX_TIMER_MS};

/// A reason for the shell to wake the session up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// A subscription's coalescing window ends (the coalescer's next window).
    Coalesce,
    /// A sent publish has had no ack for [`super::SessionConfig::publish_timeout_ms`] (the earliest
    /// such deadline in the publish queue).
    PublishTimeout,
    /// SSE: a `POST /publish` that could not reach the relay is tried again (the publish queue).
    PublishRetry,
    /// SSE: the channel set changed; reopen the stream (debounced).
    Reopen,
    /// Ask for a new token before the connection's expires (only while the link is open).
    Refresh,
    /// The link's own deadline: the token or `hello` is late, the open link has been silent too
    /// long, or the wait before the next attempt is over.
    Link,
    /// Nothing to do for [`super::SessionConfig::idle_close_ms`]: close the connection.
    Idle,
}

impl Timer {
    /// Every timer, in the order `handle_timeout` fires the due ones.
    pub const ALL: [Timer; 7] = [
        Timer::Coalesce,
        Timer::PublishTimeout,
        Timer::PublishRetry,
        Timer::Reopen,
        Timer::Refresh,
        Timer::Link,
        Timer::Idle,
    ];
}

/// At most one deadline per [`Timer`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deadlines {
    at: [Option<Millis>; Timer::ALL.len()],
}

impl Deadlines {
    /// When `timer` is due, if armed.
    pub fn get(&self, timer: Timer) -> Option<Millis> {
        self.at[timer as usize]
    }

    /// Arms `timer` for `at` (replacing an earlier deadline); `None` disarms it.
    pub fn set(&mut self, timer: Timer, at: Option<Millis>) {
        self.at[timer as usize] = at;
    }

    /// Arms `timer` for `at` unless it is armed already (the first of a burst of changes wins).
    pub fn arm(&mut self, timer: Timer, at: Millis) {
        self.at[timer as usize].get_or_insert(at);
    }

    /// Disarms `timer`.
    pub fn clear(&mut self, timer: Timer) {
        self.at[timer as usize] = None;
    }

    /// The earliest deadline of all.
    pub fn next(&self) -> Option<Millis> {
        self.at.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reports_its_earliest_deadline_and_what_is_due() {
        let mut d = Deadlines::default();
        assert_eq!(d.next(), None);
        d.set(Timer::Link, Some(30));
        d.arm(Timer::Idle, 20);
        d.arm(Timer::Idle, 10); // already armed: stays at 20
        assert_eq!((d.get(Timer::Idle), d.next()), (Some(20), Some(20)));
        d.clear(Timer::Idle);
        assert_eq!((d.get(Timer::Idle), d.next()), (None, Some(30)));
        d.set(Timer::Link, None);
        assert_eq!(d.next(), None);
    }
}
