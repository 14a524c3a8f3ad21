//! Time: when the shell must wake the session up, and what fires then.
//!
//! Every deadline of the session is a [`Timer`]; [`Session::deadline`] is the one place that says
//! when each is due, [`Session::fire`] the one place that says what each does.

use super::deadlines::{Deadlines, Timer};
use super::link::Link;
use super::token::Refresh;
use super::{ConnectionState, Millis, Output, Session, MAX_TIMER_MS};
use crate::cat;

impl Session {
    /// When the shell must call [`Session::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.deadlines().next()
    }

    /// Time passed: fire whatever deadline is due.
    pub fn handle_timeout(&mut self, now: Millis) {
        // In the order of `Timer::ALL`, each timer looked at after the ones before it fired (a
        // reopen, say, moves the link's deadline).
        for timer in Timer::ALL {
            if self.deadline(timer).is_some_and(|at| at <= now) {
                self.fire(timer, now);
            }
        }
        self.check_idle(now);
    }

    /// Every timer's deadline, as the table the shell's next wake-up is taken from.
    fn deadlines(&self) -> Deadlines {
        let mut table = Deadlines::default();
        for timer in Timer::ALL {
            table.set(timer, self.deadline(timer));
        }
        table
    }

    /// When `timer` is due: the ones the session arms itself from its table, the others from the
    /// state that holds them.
    fn deadline(&self, timer: Timer) -> Option<Millis> {
        match timer {
            Timer::Coalesce => self.coalesce.deadline(),
            Timer::PublishTimeout => self.publishes.next_timeout(),
            Timer::PublishRetry => self.publishes.next_retry(),
            Timer::Refresh => match (self.refresh, &self.link) {
                (Refresh::At(at), Link::Open { .. }) => Some(at),
                _ => None,
            },
            Timer::Link => match self.link {
                Link::Authorizing { since } | Link::Connecting { since } => {
                    Some(since + self.cfg.connect_timeout_ms)
                }
                Link::Open {
                    last_rx, ping_ms, ..
                } => Some(last_rx + self.liveness_span(ping_ms)),
                Link::Waiting { until } => until,
                Link::Idle | Link::Closed => None,
            },
            Timer::Reopen | Timer::Idle => self.timers.get(timer),
        }
    }

    /// How long the link may stay silent: the relay's ping interval and the grace, at most
    /// [`MAX_TIMER_MS`] (a relay may announce any `ping_ms`).
    fn liveness_span(&self, ping_ms: Millis) -> Millis {
        ping_ms
            .saturating_add(self.cfg.ping_grace_ms)
            .min(MAX_TIMER_MS)
    }

    /// `timer` is due at `now`.
    fn fire(&mut self, timer: Timer, now: Millis) {
        match timer {
            Timer::Coalesce => {
                for (subs, event) in self.coalesce.flush(now) {
                    self.outputs.push_back(Output::Deliver { subs, event });
                }
            }
            Timer::PublishTimeout => self.expire_publishes(now),
            Timer::PublishRetry => {
                #[cfg(feature = "sse")]
                self.retry_posts(now);
            }
            Timer::Reopen => {
                self.timers.clear(Timer::Reopen);
                if matches!(self.link, Link::Open { .. } | Link::Connecting { .. }) {
                    self.outputs.push_back(Output::Disconnect);
                    if self.token.is_some() {
                        // The current token is still good for a ticket: no need to ask for another.
                        self.open_transport(now);
                    } else {
                        self.connect(now);
                    }
                }
            }
            Timer::Refresh => {
                self.refresh = Refresh::Fetching;
                self.request_token();
            }
            Timer::Link => self.link_timed_out(now),
            Timer::Idle => {
                self.timers.clear(Timer::Idle);
                if !self.has_work() {
                    if matches!(self.link, Link::Open { .. } | Link::Connecting { .. }) {
                        self.outputs.push_back(Output::Disconnect);
                    }
                    self.link = Link::Idle;
                    self.refresh = Refresh::None;
                    self.awaiting.clear();
                    self.set_state(ConnectionState::Idle);
                }
            }
        }
    }

    /// The link's deadline passed: the token or `hello` is late, the link went silent, or the wait
    /// before the next attempt is over.
    fn link_timed_out(&mut self, now: Millis) {
        match self.link {
            Link::Authorizing { .. } => {
                let reason = cat!(
                    "getToken did not settle within ",
                    self.cfg.connect_timeout_ms,
                    " ms"
                );
                self.token_failed(now, reason);
            }
            Link::Connecting { .. } => {
                self.outputs.push_back(Output::Disconnect);
                let reason = cat!(
                    "no hello from the relay within ",
                    self.cfg.connect_timeout_ms,
                    " ms"
                );
                self.lose_link(now, &reason, true);
            }
            Link::Open { last_rx, .. } => {
                self.outputs.push_back(Output::Disconnect);
                let reason = cat!("nothing heard from the relay for ", now - last_rx, " ms");
                self.lose_link(now, &reason, true);
            }
            Link::Waiting { until: Some(_) } => self.connect(now),
            Link::Waiting { until: None } | Link::Idle | Link::Closed => {}
        }
    }
}
