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

/// Why a subscribe was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeError {
    TooManyChannels(TooManyChannels),
    Unavailable(Unavailable),
}
