//! What the session knows per channel: its delivery position, and its status with the relay.
//!
//! Moving a position (`advance`) and the `subscribed` answers are in `positions.rs`; subscribing
//! and the refusals are in `channels.rs`.

use crate::prelude::*;
/// Where a channel's delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChannelPosition {
    pub(super) epoch: String,
    pub(super) seq: u64,
}

/// A subscription's channel, as the relay last answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelStatus {
    /// Not (yet) confirmed by the relay on the current connection.
    Pending,
    /// Subscribed on the open connection: events flow.
    Subscribed,
    /// The relay refused the channel for the connection's token (`forbidden`); it is asked again on
    /// every new connection (a new token may allow it).
    Forbidden,
}

impl ChannelStatus {
    pub fn name(self) -> &'static str {
        match self {
            ChannelStatus::Pending => "pending",
            ChannelStatus::Subscribed => "subscribed",
            ChannelStatus::Forbidden => "forbidden",
        }
    }
}
