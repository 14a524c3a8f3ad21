//! Tokens: asking the shell for one, its answers, refreshing it before it expires, the relay's
//! `authed` answer and its `error` frames.

use super::deadlines::MAX_TIMER_MS;
use super::link::Link;
use super::token::{refresh_delay, Refresh, MIN_REFRESH_MARGIN_MS};
use super::{Millis, Output, PublishError, Session};
use crate::cat;
use crate::engine::code::Code;
use crate::engine::frame::{self, ErrorCode};
use crate::prelude::*;

impl Session {
    /// The answer to [`Output::NeedToken`]: the token, or why none could be obtained. An answer to
    /// an older request (the session has moved on since) is ignored.
    pub fn handle_token(&mut self, now: Millis, request: u64, result: Result<String, String>) {
        if request != self.token_request || self.link == Link::Closed {
            return;
        }
        let token = match result {
            Ok(token) if !token.is_empty() => token,
            Ok(_) => return self.token_failed(now, "getToken gave an empty token".into()),
            Err(reason) => return self.token_failed(now, reason),
        };
        self.token = Some(token);
        #[cfg(feature = "sse")]
        self.post_held();
        match self.link {
            Link::Authorizing { .. } => self.open_transport(now),
            Link::Open { .. } if self.refresh == Refresh::Fetching => {
                if self.uses_sse() {
                    // A stream cannot take a new token: reopen it with a fresh ticket, resuming
                    // every channel from its position.
                    self.refresh = Refresh::None;
                    self.outputs.push_back(Output::Disconnect);
                    self.open_transport(now);
                } else {
                    self.refresh = Refresh::Sent;
                    let text = frame::encode_auth(self.token.as_deref().unwrap_or_default());
                    self.send(text);
                }
            }
            _ => {}
        }
    }

    pub(super) fn request_token(&mut self) {
        self.token_request += 1;
        self.outputs.push_back(Output::NeedToken {
            request: self.token_request,
        });
    }

    /// No token: while connecting, this attempt failed (backoff as for a failed connection); while
    /// refreshing, try again later or let the relay end the connection at expiry (then reconnect).
    pub(super) fn token_failed(&mut self, now: Millis, reason: String) {
        let message = cat!("could not get a token: ", reason);
        self.stats.problems += 1;
        self.outputs.push_back(Output::Error {
            code: Code::GetToken,
            channel: None,
            message: message.clone(),
        });
        match self.link {
            Link::Authorizing { .. } => {
                self.token_request += 1; // a late answer to this request is ignored
                self.lose_link(now, &message, false);
            }
            Link::Open { .. } if self.refresh == Refresh::Fetching => self.retry_refresh(now),
            Link::Idle => {
                // SSE publishes that were waiting for this token alone.
                for id in self.publishes.drop_held() {
                    let error = PublishError::Rejected {
                        code: Code::GetToken,
                        message: message.clone(),
                    };
                    self.outputs.push_back(Output::PublishFailed { id, error });
                }
            }
            _ => {}
        }
    }

    /// A refresh failed: try again halfway to the expiry while there is time; otherwise the relay
    /// ends the connection when the token expires and the session reconnects with a new one.
    pub(super) fn retry_refresh(&mut self, now: Millis) {
        self.refresh = match self.expires_at {
            Some(expires) if expires.saturating_sub(now) >= MIN_REFRESH_MARGIN_MS => {
                Refresh::At(now + expires.saturating_sub(now) / 2)
            }
            _ => Refresh::None,
        };
    }

    /// `authed`: the token is accepted for `ttl_ms` more milliseconds (none: no expiry to watch).
    pub(super) fn on_authed(&mut self, now: Millis, ttl_ms: Option<Millis>) {
        if !matches!(self.link, Link::Open { .. }) {
            return;
        }
        match ttl_ms {
            Some(ttl) if self.cfg.auth => {
                // Refreshing a very long-lived token early is harmless; a deadline past what a
                // timer can wait is not.
                let ttl = ttl.min(MAX_TIMER_MS);
                self.expires_at = Some(now + ttl);
                self.refresh = Refresh::At(now + refresh_delay(ttl));
            }
            _ => {
                self.expires_at = None;
                self.refresh = Refresh::None;
            }
        }
    }

    /// An `error` frame that answers no publish.
    pub(super) fn on_error(&mut self, now: Millis, code: Code, message: &str) {
        let unauthorized = matches!(code, Code::Relay(ErrorCode::Unauthorized));
        let message = if unauthorized && self.refresh == Refresh::Sent {
            // The refreshed token was refused; the connection keeps the previous one until it expires.
            self.retry_refresh(now);
            cat!(
                "the relay refused the refreshed token (unauthorized): ",
                message
            )
        } else if unauthorized && !self.cfg.auth {
            cat!(
                "the relay requires a token (unauthorized): ",
                message,
                "; give the client `token` or `getToken`"
            )
        } else {
            cat!("the relay reported an error (", code.name(), "): ", message)
        };
        self.stats.problems += 1;
        self.outputs.push_back(Output::Error {
            code,
            channel: None,
            message,
        });
    }
}
