//! A connection's `presence` frames (docs/PROTOCOL.md, *Presence*): the rights and identity
//! checks, the per-connection limit, then the presence service. Every refusal is an `error` frame
//! with the frame's `id` (counted in `live_relay_presence_refused_total`); the connection stays
//! open. A `join` or `watch` refused for good, and a channel a refreshed token no longer allows,
//! also get a presence `closed` frame, so that the client's handles stop waiting.

use super::{Connection, Gone};
use crate::auth::token::MAX_INFO_BYTES;
use crate::auth::Grant;
use crate::limits::TokenBucket;
use crate::presence::connection::Memberships;
use crate::presence::contract::{JoinRequest, StoreError};
use crate::presence::set::Refusal;
use crate::presence::settings::{FRAMES_BURST, FRAMES_PER_SECOND};
use live_protocol::frame::{encode_presence_closed, ErrorCode, PresenceRequest, PresenceVerb};
use serde_json::Value;
use std::sync::Arc;

/// The longest `user` a frame may state (open mode).
pub const MAX_OPEN_USER_BYTES: usize = 256;

/// What a connection keeps of presence, made on its first presence frame.
pub(super) struct ConnectionPresence {
    /// Its presence frames per second.
    frames: TokenBucket,
    /// The channels it is in or watches the presence of; dropped with the connection, which
    /// starts its members' grace period.
    memberships: Memberships,
}

/// A refused presence frame: its code and why.
struct Refused(ErrorCode, String);

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Refused(refusal) => {
                let code = ErrorCode::from_name(refusal.code()).unwrap_or(ErrorCode::BadFrame);
                let message = match refusal {
                    Refusal::Full => {
                        "the channel's presence is full (--presence-max-members): you get its \
                         counts (`stats`) instead"
                            .to_owned()
                    }
                    Refusal::TooFast => format!("{refusal} (--presence-max-updates per 10 s)"),
                    Refusal::TooLarge(_) => format!("{refusal} (--presence-max-data-bytes)"),
                    other => other.to_string(),
                };
                Refused(code, message)
            }
            StoreError::Unavailable(why) => Refused(ErrorCode::Unavailable, why),
        }
    }
}

impl Connection {
    /// The connection's presence, made now if this is its first presence frame.
    fn presence_state(&mut self) -> &mut ConnectionPresence {
        let (presence, conn) = (&self.state.presence, self.member.id);
        self.presence.get_or_insert_with(|| {
            Box::new(ConnectionPresence {
                frames: TokenBucket::new(FRAMES_PER_SECOND, FRAMES_BURST),
                memberships: Memberships::new(Arc::clone(presence), conn),
            })
        })
    }

    fn memberships(&mut self) -> &mut Memberships {
        &mut self.presence_state().memberships
    }

    /// A `presence` frame: answered by a `sync` (join, watch: queued by the service) or, refused,
    /// by an `error` with its `id`, then by a `closed` when the refusal is for good and the
    /// connection has nothing on the channel.
    pub(super) async fn presence(&mut self, request: PresenceRequest<'_>) -> Result<(), Gone> {
        let (id, verb) = (request.id, request.verb);
        // Borrowed from the frame's text in the common case: no copy.
        let channel = request.channel.clone();
        match self.presence_step(request).await {
            Ok(()) => Ok(()),
            Err(Refused(code, message)) => {
                self.state.presence.metrics().refuse(code.as_str());
                self.send_error(code, &message, Some(id)).await?;
                let entering = matches!(verb, PresenceVerb::Join | PresenceVerb::Watch);
                if entering && refused_for_good(code) && !self.memberships().has(&channel) {
                    self.send_presence_closed(&channel, code).await?;
                }
                Ok(())
            }
        }
    }

    /// Tells the client that it has nothing on `channel`'s presence any more (`code`: why).
    pub(super) async fn send_presence_closed(
        &mut self,
        channel: &str,
        code: ErrorCode,
    ) -> Result<(), Gone> {
        self.send(encode_presence_closed(channel, code).into())
            .await
    }

    async fn presence_step(&mut self, request: PresenceRequest<'_>) -> Result<(), Refused> {
        let presence = Arc::clone(&self.state.presence);
        if !presence.settings().enabled {
            return Err(Refused(
                ErrorCode::BadFrame,
                "presence is off on this relay (--presence=false; its `hello` offers no \
                 `presence` feature)"
                    .to_owned(),
            ));
        }
        if !self.presence_state().frames.take() {
            return Err(Refused(
                ErrorCode::RateLimited,
                format!(
                    "too many presence frames from this connection: at most {FRAMES_BURST} at \
                     once, then {FRAMES_PER_SECOND} a second"
                ),
            ));
        }
        // `on_text` closed the connection already when it has no grant.
        let grant = self.grant.clone().ok_or_else(|| {
            Refused(
                ErrorCode::Unauthorized,
                "send an `auth` frame first".to_owned(),
            )
        })?;
        let conn = self.member.id;
        let channel = request.channel.as_ref();
        match request.verb {
            PresenceVerb::Join | PresenceVerb::Watch => {
                self.state
                    .authorize_subscription(&grant, channel)
                    .map_err(|e| Refused(e.code, e.message))?;
                if self.memberships().is_full_for(channel) {
                    return Err(Refused(
                        ErrorCode::TooManyChannels,
                        format!(
                            "this connection is in or watches the presence of {} channels \
                             already (--presence-max-per-connection)",
                            presence.settings().max_per_connection
                        ),
                    ));
                }
            }
            PresenceVerb::Update | PresenceVerb::Leave => {}
        }
        let outbox = self.state.broker.outbox(conn).ok_or_else(|| {
            Refused(
                ErrorCode::Unavailable,
                "the connection is closing".to_owned(),
            )
        })?;
        match request.verb {
            PresenceVerb::Join => {
                let key = request.key.as_deref().unwrap_or_default();
                let (user, info) = identity(&grant, &request, key)?;
                if self.memberships().key_in(channel) != Some(key)
                    && !self
                        .memberships()
                        .take_entry(channel, std::time::Instant::now())
                {
                    return Err(Refused(
                        ErrorCode::RateLimited,
                        format!(
                            "too many presence joins with a new key on `{channel}` from this \
                             connection: at most {} in 10 s (--presence-max-updates)",
                            presence.settings().limits.max_updates
                        ),
                    ));
                }
                if let Some(old) = self.memberships().key_in(channel) {
                    if old != key {
                        // Another key on the same connection: the old member leaves first.
                        let old = old.to_owned();
                        presence.leave(channel, Some(&old), conn).await?;
                        self.memberships().forget(channel);
                    }
                }
                let join = JoinRequest {
                    key,
                    user: &user,
                    info,
                    data: request
                        .data
                        .unwrap_or_else(|| Value::Object(Default::default())),
                    conn,
                };
                match presence.join(channel, join, &outbox, request.id).await {
                    Ok(()) => self.memberships().record(channel, Some(key)),
                    Err(StoreError::Refused(Refusal::Full)) => {
                        if self.memberships().key_in(channel).is_none() {
                            self.memberships().record(channel, None);
                        }
                        return Err(StoreError::Refused(Refusal::Full).into());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            PresenceVerb::Watch => {
                presence.watch(channel, conn, &outbox, request.id).await?;
                if self.memberships().key_in(channel).is_none() {
                    self.memberships().record(channel, None);
                }
            }
            PresenceVerb::Update => {
                let key = self.memberships().key_in(channel).ok_or_else(|| {
                    Refused(
                        ErrorCode::BadFrame,
                        format!("presence `update` on `{channel}` without having joined it"),
                    )
                })?;
                let key = key.to_owned();
                let data = request.data.unwrap_or(Value::Null);
                presence.update(channel, &key, conn, data).await?;
            }
            PresenceVerb::Leave => {
                let key = self.memberships().forget(channel);
                presence.leave(channel, key.as_deref(), conn).await?;
            }
        }
        Ok(())
    }

    /// After a token refresh: the channels the new token does not allow are left at once
    /// (announced); they are returned, for their `closed` frames.
    pub(super) async fn presence_after_refresh(&mut self, grant: &Grant) -> Vec<String> {
        let presence = Arc::clone(&self.state.presence);
        let mut ended = Vec::new();
        let Some(state) = &self.presence else {
            return ended;
        };
        for channel in state.memberships.channels() {
            if grant.may_subscribe(&channel) {
                continue;
            }
            let key = self.memberships().forget(&channel);
            if let Err(e) = presence
                .leave(&channel, key.as_deref(), self.member.id)
                .await
            {
                tracing::warn!(
                    conn = self.member.id,
                    channel,
                    "presence leave failed: {e:?}"
                );
            }
            ended.push(channel);
        }
        ended
    }
}

/// Whether a `join` or `watch` refused with `code` would be refused again as it is: the channel
/// is not allowed (or a token without `sub` joins), the connection has all the channels it may
/// have, or what the frame declares is too large. (`presence_full` leaves a watcher with counts;
/// `rate_limited` and `unavailable` pass.)
fn refused_for_good(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Forbidden | ErrorCode::TooManyChannels | ErrorCode::TooLarge
    )
}

/// Who joins: with a token, its `sub` (required) and its `info` claim, whatever the frame says;
/// in open mode, what the frame says (`user` defaults to the key).
fn identity(
    grant: &Grant,
    request: &PresenceRequest<'_>,
    key: &str,
) -> Result<(String, Value), Refused> {
    match grant {
        Grant::Token(claims) => {
            let user = claims.sub.clone().ok_or_else(|| {
                Refused(
                    ErrorCode::Forbidden,
                    "a token without `sub` may watch presence but not join it".to_owned(),
                )
            })?;
            Ok((user, claims.info.clone().unwrap_or(Value::Null)))
        }
        _ => {
            let user = request.user.as_deref().unwrap_or(key);
            if user.len() > MAX_OPEN_USER_BYTES {
                return Err(Refused(
                    ErrorCode::TooLarge,
                    format!(
                        "presence `user` of {} bytes: at most {MAX_OPEN_USER_BYTES}",
                        user.len()
                    ),
                ));
            }
            let info = request.info.clone().unwrap_or(Value::Null);
            let info_len = serde_json::to_string(&info).map_or(usize::MAX, |s| s.len());
            if info_len > MAX_INFO_BYTES {
                return Err(Refused(
                    ErrorCode::TooLarge,
                    format!("presence `info` of {info_len} bytes: at most {MAX_INFO_BYTES}"),
                ));
            }
            Ok((user.to_owned(), info))
        }
    }
}
