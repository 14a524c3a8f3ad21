//! What a subscribe asks of the hub ([`Request`], [`Since`]) and what it answers
//! ([`Subscribed`], [`Refusal`]), and what became of an event handed to it ([`Delivery`]).

/// A subscribe that would exceed the per-connection channel limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyChannels {
    pub subscribed: usize,
    pub adding: usize,
    pub max: usize,
}

impl std::fmt::Display for TooManyChannels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "subscribing to {} more channels would make {}, over the limit of {} channels per connection",
            self.adding,
            self.subscribed + self.adding,
            self.max
        )
    }
}

/// Why the hub did not subscribe a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooManyChannels(TooManyChannels),
    /// A channel this node does not follow (Redis broker): follow it first.
    Untracked(String),
}

/// Where a subscribing connection wants a channel to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// No `since`: live events only, and no `recovered` in the answer.
    Now,
    /// A `since` in this relay's epoch: replay the events after this seq, if they are all kept.
    Seq(u64),
    /// A `since` in another epoch: nothing can be replayed.
    OtherEpoch,
}

/// One channel of a subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'c> {
    pub channel: &'c str,
    pub since: Since,
}

impl<'c> Request<'c> {
    /// A channel without `since`.
    pub fn live(channel: &'c str) -> Self {
        Request {
            channel,
            since: Since::Now,
        }
    }
}

/// One channel of the `subscribed` answer the broker queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribed<'c> {
    pub channel: &'c str,
    /// The channel's last seq when it was subscribed.
    pub seq: u64,
    /// For a request with `since`: whether the missed events were queued after the answer.
    pub recovered: Option<bool>,
    /// How many events were queued for replay.
    pub replayed: usize,
}

/// What became of an event handed to [`Hub::deliver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Appended and queued for the subscribers.
    Delivered,
    /// Its seq was appended already.
    Stale,
    /// Events before it are missing: nothing was appended.
    Gap { last_seq: u64 },
    /// The channel is not followed here.
    Untracked,
}
