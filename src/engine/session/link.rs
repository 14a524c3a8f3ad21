//! The link: where the connection to the relay stands, and what the page allows.
//!
//! The transitions between these states need the whole session; they are in `connection.rs`.

use super::config::Millis;

/// Where the connection to the relay stands.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Link {
    /// No connection and no reason to have one.
    Idle,
    /// Waiting for the shell's token before opening the transport (authentication on).
    Authorizing { since: Millis },
    /// A connection is being opened; waiting for `hello`.
    Connecting { since: Millis },
    /// `hello` received at `since`.
    Open {
        since: Millis,
        last_rx: Millis,
        ping_ms: Millis,
    },
    /// Waiting before the next attempt: until a time, or (`None`) until the page can connect again.
    Waiting { until: Option<Millis> },
    /// Closed by the app or for good.
    Closed,
}

/// What the page says about connecting.
#[derive(Debug, Clone, Copy)]
pub(super) struct Conditions {
    pub(super) online: bool,
    pub(super) visible: bool,
    pub(super) frozen: bool,
}

impl Conditions {
    pub(super) fn allow_connecting(&self) -> bool {
        self.online && self.visible && !self.frozen
    }

    pub(super) fn why_waiting(&self) -> &'static str {
        if self.frozen {
            "the page is frozen (back-forward cache)"
        } else if !self.online {
            "the browser is offline"
        } else {
            "the page is hidden"
        }
    }
}

/// How long a connection must have been useful — every channel of its `subscribe` answered — for
/// its loss to start the backoff again from the smallest delay (see [`super::SessionConfig::stable_after_ms`]).
///
/// The backoff grows only across attempts that failed before being useful: refused, timed out,
/// dropped before `hello` or before the `subscribed` answer, or dropped within this long of it (a
/// relay that answers and then crashes in a loop is retried with growing delays, as a refusing one
/// is). A link cut every few hundred milliseconds whose connections each got their answer — a
/// flapping proxy — is retried within `backoff_min_ms`, so that the outage stays within the relay's
/// history and the missed events come back as replays, not resyncs.
pub const MIN_USEFUL_MS: Millis = 250;
