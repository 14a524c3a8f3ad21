//! What every route and connection shares ([`AppState`]), and the one way anything is published
//! or subscribed: [`AppState::publish`], [`AppState::revalidate`] and
//! [`AppState::authorize_subscription`] check the grant, validate, and count.

use crate::auth::claims::Claims;
use crate::auth::ticket;
use crate::auth::{Auth, AuthFailure, Grant};
use crate::broker::tickets::TicketRefusal;
use crate::broker::{self, Broker, TicketError};
use crate::config::Config;
use crate::demo::Backend;
use crate::limits::{Buckets, Full, IpSlot, PerIp};
use crate::metrics::{limit, Metrics};
use crate::publish::{check_subscription, validate, validate_on_any_channel, Limits, ValidEvent};
use axum::http::header::ORIGIN;
use axum::http::HeaderMap;
use live_protocol::frame::{excerpt, ErrorCode, FrameError, Publish, REVALIDATE_CHANNEL};
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// What every route and connection shares.
#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub broker: Arc<Broker>,
    /// The demo API's records (`--demo` only): in memory, or in PostgreSQL with `--postgres`.
    pub demo: Option<Backend>,
    pub auth: Auth,
    pub metrics: Metrics,
    /// Open connections per client IP address.
    pub per_ip: Arc<PerIp>,
    /// The HTTP publishers' rate limits, per API key or token user.
    pub http_publishers: Buckets,
    /// The SSE tickets each token holder may take ([`TICKET_RATE`], [`TICKET_BURST`]).
    pub ticket_issuers: Buckets,
    /// Changes (or closes) when the relay shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// The PostgreSQL feed's state (`--postgres`).
    pub feed: Option<Arc<crate::postgres::status::FeedStatus>>,
    /// Who is on which channel (WebSocket `presence` frames; `--presence`).
    pub presence: Arc<crate::presence::Presence>,
}

/// SSE tickets a second one token holder may take, after [`TICKET_BURST`] at once.
pub const TICKET_RATE: u32 = 1;
/// SSE tickets one token holder may take at once.
pub const TICKET_BURST: u32 = 32;

/// A publish that was accepted: its channel and seq.
pub type Published<'a> = (Cow<'a, str>, u64);

impl AppState {
    pub fn limits(&self) -> Limits {
        Limits {
            max_channel_len: self.config.max_channel_len,
        }
    }

    /// Publishes an event on a channel (not a reserved `$` one) for someone holding `grant`: the
    /// WebSocket `publish` frame, `POST /publish` and the demo API all come here.
    pub async fn publish<'a>(
        &self,
        grant: &Grant,
        event: Publish<'a>,
    ) -> Result<Published<'a>, FrameError> {
        self.count_channel_len(&event.channel);
        self.check_publish(grant, &event.channel)?;
        let event = validate(event, &self.limits())?;
        self.send(scope_key(grant, event)).await
    }

    /// Publishes a revalidation on `$revalidate` (`POST /revalidate`).
    pub async fn revalidate<'a>(
        &self,
        grant: &Grant,
        event: Publish<'a>,
    ) -> Result<Published<'a>, FrameError> {
        if event.channel != REVALIDATE_CHANNEL {
            return Err(FrameError::new(
                ErrorCode::BadChannel,
                format!("a revalidation goes on `{REVALIDATE_CHANNEL}`"),
            ));
        }
        self.check_publish(grant, &event.channel)?;
        let event = validate_on_any_channel(event, &self.limits())?;
        self.send(scope_key(grant, event)).await
    }

    /// A single-use SSE ticket for a verified token, kept by the broker (any node of a cluster
    /// redeems it). A user gets [`TICKET_BURST`] at once and [`TICKET_RATE`] a second after that
    /// (on any broker), and the in-process broker bounds those waiting per user and in all:
    /// refused with `rate_limited`, or `unavailable` when the relay's map is full.
    pub async fn issue_ticket(&self, token: &str, claims: &Claims) -> Result<String, FrameError> {
        let unavailable = |message: String| FrameError::new(ErrorCode::Unavailable, message);
        let holder = claims.holder();
        if !self.ticket_issuers.take(&holder) {
            self.metrics.limit_hit(limit::SSE_TICKETS);
            return Err(FrameError::new(
                ErrorCode::RateLimited,
                format!(
                    "over {TICKET_RATE} SSE tickets per second for this user (after {TICKET_BURST} \
                     at once): retry later"
                ),
            ));
        }
        let ticket = ticket::fresh().map_err(unavailable)?;
        match self
            .broker
            .put_ticket(&ticket, token, &holder, ticket::ttl(claims))
            .await
        {
            Ok(()) => Ok(ticket),
            Err(TicketError::Refused(refusal)) => {
                self.metrics.limit_hit(limit::SSE_TICKETS);
                let code = match refusal {
                    TicketRefusal::HolderFull => ErrorCode::RateLimited,
                    TicketRefusal::RelayFull => ErrorCode::Unavailable,
                };
                Err(FrameError::new(code, refusal.to_string()))
            }
            Err(TicketError::Unavailable(e)) => Err(unavailable(e.to_string())),
        }
    }

    /// The claims of an SSE ticket, which is used up: its token is verified again
    /// (`unauthorized` when the ticket is unknown, used or expired, or its token has expired).
    pub async fn redeem_ticket(&self, ticket: &str) -> Result<Arc<Claims>, FrameError> {
        if ticket.is_empty() {
            return Err(self.refuse(&AuthFailure::Missing));
        }
        let token = self
            .broker
            .take_ticket(ticket)
            .await
            .map_err(|e| FrameError::new(ErrorCode::Unavailable, e.to_string()))?;
        let claims = match token {
            None => Err(AuthFailure::BadTicket),
            Some(token) => self.auth.verify(&token).and_then(|claims| {
                if crate::auth::time_left(&claims).is_zero() {
                    Err(AuthFailure::Expired)
                } else {
                    Ok(claims)
                }
            }),
        };
        claims.map_err(|failure| self.refuse(&failure))
    }

    /// Whether `grant` may subscribe to `channel` (a valid name, and allowed by its token).
    pub fn authorize_subscription(&self, grant: &Grant, channel: &str) -> Result<(), FrameError> {
        self.count_channel_len(channel);
        check_subscription(channel, &self.limits())?;
        if grant.may_subscribe(channel) {
            return Ok(());
        }
        self.metrics.forbid("subscribe");
        Err(FrameError::new(
            ErrorCode::Forbidden,
            format!(
                "the token does not allow subscribing to `{}` (its `channels` claim)",
                excerpt(channel)
            ),
        ))
    }

    /// The grant of an HTTP publisher (`Authorization: Bearer <API key or token>`), counted
    /// against its rate limit; refused with `unauthorized` or `rate_limited`.
    pub fn http_publisher(&self, headers: &HeaderMap) -> Result<Grant, FrameError> {
        let grant = self.auth.bearer(headers).map_err(|e| self.refuse(&e))?;
        self.check_http_rate(&grant)?;
        Ok(grant)
    }

    /// An `unauthorized` error for a refused credential, counted by its reason.
    pub fn refuse(&self, failure: &AuthFailure) -> FrameError {
        self.metrics.auth_failure(failure.reason());
        FrameError::new(ErrorCode::Unauthorized, failure.to_string())
    }

    /// Admits a new WebSocket or SSE connection: its page's `Origin` must be allowed
    /// (`--allowed-origins`; requests without one are not from a page) and its IP address under
    /// `--max-connections-per-ip`. The slot counts the connection until dropped.
    pub fn admit(&self, headers: &HeaderMap, ip: IpAddr) -> Result<IpSlot, FrameError> {
        if !self.config.allowed_origins.is_empty() {
            if let Some(origin) = headers.get(ORIGIN) {
                let allowed = self
                    .config
                    .allowed_origins
                    .iter()
                    .any(|o| o.as_bytes() == origin.as_bytes());
                if !allowed {
                    self.metrics.limit_hit(limit::ORIGIN);
                    return Err(FrameError::new(
                        ErrorCode::Forbidden,
                        format!(
                            "origin `{}` is not allowed (--allowed-origins)",
                            excerpt(&String::from_utf8_lossy(origin.as_bytes()))
                        ),
                    ));
                }
            }
        }
        self.per_ip.admit(ip).map_err(|full| match full {
            Full::Address => {
                self.metrics.limit_hit(limit::CONNECTIONS_PER_IP);
                FrameError::new(
                    ErrorCode::TooManyConnections,
                    format!(
                        "{ip} has {} connections open already (--max-connections-per-ip; IPv6 \
                         counts per /64)",
                        self.config.max_connections_per_ip
                    ),
                )
            }
            Full::Relay => {
                self.metrics.limit_hit(limit::CONNECTIONS);
                FrameError::new(
                    ErrorCode::TooManyConnections,
                    format!(
                        "the relay has {} connections open already (--max-connections): try \
                         another relay or later",
                        self.config.max_connections
                    ),
                )
            }
        })
    }

    /// Counts one HTTP publish against its credential's rate limit.
    pub fn check_http_rate(&self, grant: &Grant) -> Result<(), FrameError> {
        if matches!(grant, Grant::Open) {
            return Ok(());
        }
        if self.http_publishers.take(&grant.publisher()) {
            return Ok(());
        }
        self.metrics.limit_hit(limit::PUBLISH_RATE);
        Err(FrameError::new(
            ErrorCode::RateLimited,
            format!(
                "over {} publishes per second for this credential (--key-publish-rate): retry later",
                self.config.key_publish_rate
            ),
        ))
    }

    /// Counts a channel name over `--max-channel-len` (refused by the validation that follows).
    fn count_channel_len(&self, channel: &str) {
        if channel.len() > self.config.max_channel_len {
            self.metrics.limit_hit(limit::CHANNEL_LEN);
        }
    }

    fn check_publish(&self, grant: &Grant, channel: &str) -> Result<(), FrameError> {
        if grant.may_publish(channel) {
            return Ok(());
        }
        self.metrics.forbid("publish");
        Err(FrameError::new(
            ErrorCode::Forbidden,
            format!(
                "the token does not allow publishing on `{}` (its `publish` claim)",
                excerpt(channel)
            ),
        ))
    }

    async fn send<'a>(&self, event: ValidEvent<'a>) -> Result<Published<'a>, FrameError> {
        match self.broker.publish(&event).await {
            Ok(broker::Published::New(seq)) => {
                self.metrics.published.inc();
                Ok((event.channel, seq))
            }
            // Its key was seen: the answer of the first publish.
            Ok(broker::Published::Repeat { channel, seq }) => Ok((Cow::Owned(channel.into()), seq)),
            Err(broker::PublishFailure::Unavailable(e)) => {
                Err(FrameError::new(ErrorCode::Unavailable, e.to_string()))
            }
            Err(broker::PublishFailure::OutcomeUnknown(e)) => Err(FrameError::new(
                ErrorCode::OutcomeUnknown,
                format!(
                    "{e}: the publish may have been published (or may be, when the link delivers \
                     it); send it again only with the same `key`"
                ),
            )),
        }
    }
}

/// Gives a publish's idempotency key its publisher ([`Grant::publisher`]: no two publishers share
/// one, whatever a token's `sub` says) and its channel as namespace, so one publisher's key can
/// neither swallow another's event nor reveal where it was published. The channel is
/// length-prefixed, so the parts cannot run into each other.
fn scope_key<'a>(grant: &Grant, mut event: ValidEvent<'a>) -> ValidEvent<'a> {
    if let Some(key) = event.key.take() {
        event.key = Some(Cow::Owned(format!(
            "{}\u{1f}{}:{}\u{1f}{key}",
            grant.publisher(),
            event.channel.len(),
            event.channel
        )));
    }
    event
}
