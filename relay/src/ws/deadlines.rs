//! A WebSocket connection's deadlines in one table, behind one timer: the first `auth` frame (then
//! the token's expiry), two ping intervals without a frame from the client, and the next ping.
//!
//! The connection's loop sleeps until [`Deadlines::earliest`] and asks [`Deadlines::due`] when it
//! wakes. A frame heard moves `last_heard` only; the timer is not touched then, and finds the
//! silence deadline moved when it fires. One timer instead of three, none of them made or moved
//! per frame: at 5,000 connections an event reaches every connection's loop, and each timer
//! polled there is memory the event's delivery has to bring into the cache.

use std::time::Duration;
use tokio::time::Instant;

/// What a connection has to do when its timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// No `auth` frame in time, or the token expired.
    Auth,
    /// Nothing heard from the client for two ping intervals.
    Silence,
    /// Time to send a ping.
    Ping,
}

#[derive(Debug)]
pub struct Deadlines {
    ping_every: Duration,
    next_ping: Instant,
    last_heard: Instant,
    auth: Option<Instant>,
}

impl Deadlines {
    /// A connection opened at `now`, pinging every `ping_every`, with an `auth` deadline or none.
    pub fn new(now: Instant, ping_every: Duration, auth: Option<Instant>) -> Self {
        Deadlines {
            ping_every,
            next_ping: now + ping_every,
            last_heard: now,
            auth,
        }
    }

    /// A frame was heard from the client at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// The `auth` deadline now in force (set by an `auth` frame: the token's expiry, or none).
    pub fn set_auth(&mut self, auth: Option<Instant>) {
        self.auth = auth;
    }

    fn silence(&self) -> Instant {
        self.last_heard + self.ping_every * 2
    }

    /// When the timer has to fire next.
    pub fn earliest(&self) -> Instant {
        let earliest = self.next_ping.min(self.silence());
        self.auth.map_or(earliest, |auth| auth.min(earliest))
    }

    /// What is due at `now`, the end of the connection first; a ping due is taken (the next one
    /// is `ping_every` after `now`, so a late ping does not bring the next one closer).
    pub fn due(&mut self, now: Instant) -> Option<Due> {
        if self.auth.is_some_and(|auth| auth <= now) {
            Some(Due::Auth)
        } else if self.silence() <= now {
            Some(Due::Silence)
        } else if self.next_ping <= now {
            self.next_ping = now + self.ping_every;
            Some(Due::Ping)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PING: Duration = Duration::from_secs(25);

    #[test]
    fn pings_come_every_interval_after_the_last_one() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(t0, PING, None);
        assert_eq!(d.earliest(), t0 + PING);
        assert_eq!(d.due(t0 + PING - Duration::from_millis(1)), None);
        d.heard(t0 + PING);
        // Sent late: the next one is an interval after it.
        let late = t0 + PING + Duration::from_secs(3);
        assert_eq!(d.due(late), Some(Due::Ping));
        assert_eq!(d.due(late), None);
        assert_eq!(d.earliest(), late + PING);
    }

    #[test]
    fn silence_is_two_intervals_after_the_last_frame_heard() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(t0, PING, None);
        d.due(t0 + PING);
        d.heard(t0 + Duration::from_secs(30));
        assert_eq!(d.due(t0 + PING * 2), Some(Due::Ping));
        assert_eq!(
            d.earliest(),
            t0 + PING * 3,
            "the next ping, before the silence"
        );
        assert_eq!(d.due(t0 + PING * 3), Some(Due::Ping));
        let silent = t0 + Duration::from_secs(30) + PING * 2;
        assert_eq!(d.earliest(), silent);
        assert_eq!(d.due(silent - Duration::from_millis(1)), None);
        assert_eq!(d.due(silent), Some(Due::Silence));
    }

    #[test]
    fn the_auth_deadline_comes_first_and_can_be_lifted() {
        let t0 = Instant::now();
        let auth = t0 + Duration::from_secs(10);
        let mut d = Deadlines::new(t0, PING, Some(auth));
        assert_eq!(d.earliest(), auth);
        assert_eq!(d.due(auth), Some(Due::Auth));
        // Silence and a ping are due too: the end of the connection is said first.
        assert_eq!(d.due(t0 + PING * 3), Some(Due::Auth));
        d.set_auth(None);
        assert_eq!(d.earliest(), t0 + PING);
        assert_eq!(d.due(auth), None);
    }
}
