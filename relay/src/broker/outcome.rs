//! What a publish and a subscribe come to, whichever broker runs.

use super::request::TooManyChannels;

/// The outcome of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Published with this seq.
    New(u64),
    /// Its key was published already, on this channel with this seq: nothing was published.
    Repeat { channel: Box<str>, seq: u64 },
}

impl Published {
    pub fn seq(&self) -> u64 {
        match self {
            Published::New(seq) | Published::Repeat { seq, .. } => *seq,
        }
    }
}

/// The broker cannot serve right now (Redis unreachable); the reason says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a publish has no seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishFailure {
    /// Not published: the broker could not be reached, nothing was sent.
    Unavailable(Unavailable),
    /// Sent to Redis, but no answer came (a timeout, a connection lost mid-command): it may have
    /// been published, or may yet be when a slow link delivers it. Only a keyed publish is safe to
    /// send again.
    OutcomeUnknown(Unavailable),
}

/// Why a subscribe was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeError {
    TooManyChannels(TooManyChannels),
    Unavailable(Unavailable),
}
