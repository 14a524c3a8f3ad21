//! Publishing: `publish`, the answers over HTTP, the timeouts and the queue's limit.
//!
//! The queue itself is [`super::publish_queue::PublishQueue`].

use super::deadlines::Timer;
use super::link::Link;
use super::publish_queue::PendingPublish;
use super::{Millis, Output, PublishError, PublishId, Session};
use crate::engine::frame;
#[cfg(feature = "sse")]
use crate::engine::http::PublishResult;
use crate::engine::json;
use crate::prelude::*;

impl Session {
    /// Publishes an event. `payload` and `meta` are JSON texts. The result settles later through
    /// [`Output::PublishAcked`] or [`Output::PublishFailed`] with the returned id.
    pub fn publish(
        &mut self,
        now: Millis,
        channel: &str,
        kind: &str,
        payload: &str,
        date_ms: f64,
        meta: Option<&str>,
    ) -> Result<PublishId, PublishError> {
        if self.link == Link::Closed {
            return Err(PublishError::Closed);
        }
        let payload = json::validate(payload).map_err(|e| PublishError::InvalidJson {
            field: "payload",
            reason: e.0.to_owned(),
        })?;
        let meta = match meta {
            Some(m) => Some(json::validate(m).map_err(|e| PublishError::InvalidJson {
                field: "meta",
                reason: e.0.to_owned(),
            })?),
            None => None,
        };
        let (id, key) = self.publishes.next_id();
        let text = frame::PublishOut {
            op: "publish",
            id,
            key: Some(&key),
            channel,
            kind,
            payload,
            date: date_ms,
            meta,
            scopes: None,
        }
        .encode();
        #[cfg(feature = "sse")]
        if self.using_sse {
            // Over HTTP: no need for the stream, nor to wait for it — only for a first token.
            let held = self.cfg.auth && self.token.is_none();
            if !held {
                self.outputs.push_back(Output::PostPublish {
                    id,
                    body: text.clone(),
                });
            }
            let deadline = Some(now + self.cfg.publish_timeout_ms);
            self.publishes
                .insert(id, PendingPublish::new(text, deadline, held));
            if held && self.link == Link::Idle {
                self.request_token(); // the stream is not needed, but a token is
            }
            return Ok(id);
        }
        self.timers.clear(Timer::Idle);
        if let Link::Open { .. } = self.link {
            self.send(text.clone());
            let deadline = Some(now + self.cfg.publish_timeout_ms);
            self.publishes
                .insert(id, PendingPublish::new(text, deadline, false));
        } else {
            self.publishes
                .insert(id, PendingPublish::new(text, None, false));
            self.trim_publish_queue();
            if self.link == Link::Idle {
                self.start(now);
            }
        }
        Ok(id)
    }

    /// SSE: POSTs again the publishes whose retry time has come (the relay could not be reached).
    #[cfg(feature = "sse")]
    pub(super) fn retry_posts(&mut self, now: Millis) {
        let retries = self.publishes.due_retries(now).into_iter();
        (self.outputs).extend(retries.map(|(id, body)| Output::PostPublish { id, body }));
    }

    /// SSE: POSTs the publishes that waited for a first token.
    #[cfg(feature = "sse")]
    pub(super) fn post_held(&mut self) {
        let posts = self.publishes.release_held().into_iter();
        (self.outputs).extend(posts.map(|(id, body)| Output::PostPublish { id, body }));
    }

    /// The answer to an [`Output::PostPublish`].
    #[cfg(feature = "sse")]
    pub fn handle_publish_result(&mut self, now: Millis, id: PublishId, result: PublishResult) {
        let Some(pending) = self.publishes.get_mut(&id) else {
            return; // already settled (timed out, closed)
        };
        match result {
            PublishResult::Acked(seq) => {
                self.publishes.remove(&id);
                self.outputs.push_back(Output::PublishAcked { id, seq });
            }
            PublishResult::Rejected { code, message } => {
                self.publishes.remove(&id);
                let error = PublishError::Rejected { code, message };
                self.outputs.push_back(Output::PublishFailed { id, error });
            }
            PublishResult::Unreachable(_) => {
                pending.retry_at = Some(now + self.cfg.backoff_min_ms);
            }
        }
        self.check_idle(now);
    }

    /// Fails the publishes whose ack is overdue ([`Timer::PublishTimeout`]).
    pub(super) fn expire_publishes(&mut self, now: Millis) {
        for id in self.publishes.expire(now) {
            let error = PublishError::Timeout {
                after_ms: self.cfg.publish_timeout_ms,
            };
            self.outputs.push_back(Output::PublishFailed { id, error });
        }
    }

    /// Fails the oldest publishes waiting for a connection past [`super::SessionConfig::publish_queue`].
    pub(super) fn trim_publish_queue(&mut self) {
        for id in self.publishes.trim(self.cfg.publish_queue) {
            let error = PublishError::QueueFull {
                capacity: self.cfg.publish_queue,
            };
            self.outputs.push_back(Output::PublishFailed { id, error });
        }
    }
}
