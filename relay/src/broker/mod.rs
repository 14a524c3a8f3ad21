//! The broker: who is subscribed to what, each channel's numbering and recent events, the publish
//! keys, and the fan-out. [`Broker`] is the one interface the HTTP, WebSocket and SSE code uses;
//! it runs one of two implementations:
//!
//! - [`memory::MemoryBroker`] (the default): everything in this process.
//! - [`redis::RedisBroker`] (`--redis`): several relay nodes share one Redis.
//!
//! Both deliver through a [`hub::Hub`], so a connection sees the same frames, in the same order,
//! whichever runs.

pub mod epoch;
mod floors;
pub mod hub;
pub mod keys;
pub mod kick;
pub mod memory;
pub mod outbound;
pub mod outcome;
pub mod queue;
pub mod redis;
pub mod request;
pub mod stats;
pub mod tickets;

/// Why an SSE ticket was not kept.
#[derive(Debug)]
pub enum TicketError {
    /// Over a bound of the waiting tickets.
    Refused(tickets::TicketRefusal),
    Unavailable(Unavailable),
}

pub use hub::{ConnId, Member, Next, Outbox, Settings};
pub use kick::{Kick, KickReason};
pub use outbound::{scopes, Outbound, Scopes};
pub use outcome::{PublishFailure, Published, SubscribeError, Unavailable};
pub use request::{Request, Since, Subscribed, TooManyChannels};
pub use stats::{ChannelStats, Stats};

use crate::publish::ValidEvent;
use hub::Hub;
use memory::MemoryBroker;
use redis::RedisBroker;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The broker a relay runs (see the module doc).
#[derive(Debug)]
pub enum Broker {
    Memory(MemoryBroker),
    Redis(RedisBroker),
}

impl Broker {
    /// The in-process broker.
    pub fn memory(settings: Settings) -> Self {
        Broker::Memory(MemoryBroker::with_settings(settings))
    }

    /// The Redis broker on `url`, its keys under `prefix`, a `rediss://` server's certificate
    /// checked against the CAs in `ca` (PEM) when given; refuses (with the reason) when Redis
    /// cannot be reached.
    pub async fn redis(
        url: &str,
        prefix: &str,
        ca: Option<&std::path::Path>,
        settings: Settings,
    ) -> Result<Self, String> {
        RedisBroker::connect(url, prefix, ca, settings)
            .await
            .map(Broker::Redis)
    }

    fn hub(&self) -> &Arc<Hub> {
        match self {
            Broker::Memory(b) => b.hub(),
            Broker::Redis(b) => b.hub(),
        }
    }

    /// `memory` or `redis`.
    pub fn kind(&self) -> &'static str {
        match self {
            Broker::Memory(_) => "memory",
            Broker::Redis(_) => "redis",
        }
    }

    /// The epoch the relay announces now.
    pub fn epoch(&self) -> Arc<str> {
        self.hub().epoch()
    }

    /// Whether the broker can serve (Redis reachable), and why not.
    pub fn health(&self) -> Result<(), Unavailable> {
        match self {
            Broker::Memory(_) => Ok(()),
            Broker::Redis(b) => b.health(),
        }
    }

    /// Registers a connection holding `scopes` with an outbound queue of `queue` frames.
    /// Dropping the returned [`Member`] unregisters it.
    pub fn connect(&self, queue: usize, scopes: Scopes) -> Result<Member, Unavailable> {
        match self {
            Broker::Memory(b) => Ok(b.hub().connect(queue, scopes)),
            Broker::Redis(b) => b.connect_member(queue, scopes),
        }
    }

    /// Subscribes a connection and queues the `subscribed` answer and the replay (see
    /// [`Hub::subscribe`]).
    pub async fn subscribe<'c>(
        &self,
        id: ConnId,
        requests: &[Request<'c>],
        max_channels: usize,
    ) -> Result<Vec<Subscribed<'c>>, SubscribeError> {
        match self {
            Broker::Memory(b) => b
                .subscribe(id, requests, max_channels)
                .map_err(SubscribeError::TooManyChannels),
            Broker::Redis(b) => b.subscribe(id, requests, max_channels).await,
        }
    }

    pub fn unsubscribe(&self, id: ConnId, channels: &[&str]) {
        self.hub().unsubscribe(id, channels)
    }

    /// Gives a connection new scopes (those of a refreshed token).
    pub fn set_scopes(&self, id: ConnId, scopes: Scopes) {
        self.hub().set_scopes(id, scopes)
    }

    /// The sending side of connection `id`'s outbound queue, while it is registered.
    pub fn outbox(&self, id: ConnId) -> Option<Outbox> {
        self.hub().outbox(id)
    }

    /// The channels a connection is subscribed to.
    pub fn channels_of(&self, id: ConnId) -> Vec<String> {
        self.hub().channels_of(id)
    }

    /// Publishes an event (validated, its key namespaced).
    pub async fn publish(&self, event: &ValidEvent<'_>) -> Result<Published, PublishFailure> {
        match self {
            Broker::Memory(b) => Ok(b.publish(event)),
            Broker::Redis(b) => b.publish(event).await,
        }
    }

    /// Resolves once connection `id`, when it is subscribed to `channel`, has had event `seq`
    /// queued (at once in process; on Redis, when the fan-out has brought it back, 1 s at most),
    /// so that a publisher subscribed to its channel sees its event before the ack.
    pub async fn delivered(&self, id: ConnId, channel: &str, seq: u64) {
        if let Broker::Redis(b) = self {
            if b.hub().is_subscribed(id, channel) {
                b.hub().wait_for(channel, seq, redis::CATCH_UP).await;
            }
        }
    }

    /// Keeps an SSE ticket, for the token it was issued for (held by `holder`), where any node
    /// can redeem it. The in-process broker bounds the tickets waiting per holder and in all
    /// (see [`tickets`]); Redis forgets them by TTL.
    pub async fn put_ticket(
        &self,
        ticket: &str,
        token: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<(), TicketError> {
        match self {
            Broker::Memory(b) => b
                .tickets
                .put(ticket, token, holder, ttl)
                .map_err(TicketError::Refused),
            Broker::Redis(b) => b
                .put_ticket(ticket, token, ttl)
                .await
                .map_err(TicketError::Unavailable),
        }
    }

    /// Uses up a ticket: the token it was issued for, if it was waiting.
    pub async fn take_ticket(&self, ticket: &str) -> Result<Option<String>, Unavailable> {
        match self {
            Broker::Memory(b) => Ok(b.tickets.take(ticket)),
            Broker::Redis(b) => b.take_ticket(ticket).await,
        }
    }

    /// Forgets what is too old (and, on Redis, stops following idle channels).
    pub async fn sweep(&self) {
        match self {
            Broker::Memory(b) => b.sweep(),
            Broker::Redis(b) => b.sweep().await,
        }
    }

    /// This node's counts.
    pub fn stats(&self) -> Stats {
        match self {
            Broker::Memory(b) => b.stats(),
            Broker::Redis(b) => b.stats(),
        }
    }

    /// The channels with at least one subscriber (on any node), by name.
    pub async fn channel_stats(&self) -> Result<BTreeMap<String, ChannelStats>, Unavailable> {
        match self {
            Broker::Memory(b) => Ok(b.channel_stats()),
            Broker::Redis(b) => b.channel_stats().await,
        }
    }

    /// Drops every connection on this node at once, as a network blip would (the demo's
    /// `POST /demo/cut`); the clients reconnect and resume. Returns how many there were.
    pub fn cut_every_connection(&self) -> usize {
        self.hub().kick_all(KickReason::Cut)
    }

    /// Resolves when no connection is registered on this node.
    pub async fn wait_idle(&self) {
        self.hub().wait_idle().await
    }
}
