//! One outbox row, read from the database and published through the relay's one publish path.

use crate::auth::Grant;
use crate::state::AppState;
use live_protocol::frame::{
    excerpt, DateInput, ErrorCode, FrameError, Publish, REVALIDATE_CHANNEL, REVALIDATE_TYPE,
};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The columns [`OutboxRow::read`] reads, in its order.
pub const COLUMNS: &str = "id, event_id::text, channel, type, payload::text, meta::text, scopes, \
                           (extract(epoch from created_at) * 1000)::float8";

/// A row of `live_relay.outbox`.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: String,
    pub channel: String,
    pub kind: String,
    /// JSON text.
    pub payload: Option<String>,
    /// JSON text.
    pub meta: Option<String>,
    pub scopes: Option<Vec<String>>,
    /// When the row was written, in milliseconds since the Unix epoch.
    pub created_ms: f64,
}

/// What became of a row's publish.
#[derive(Debug)]
pub enum Outcome {
    /// Published (or published before, under the same key): the row can go.
    Published,
    /// The relay refuses this row, now and every time: it is set aside with the reason.
    Refused(String),
    /// The publish failed for now (the broker is unavailable, or the outcome unknown): the row and
    /// those after it stay, and are tried again.
    Failed(String),
}

impl OutboxRow {
    /// Reads a row selected with [`COLUMNS`].
    pub fn read(row: &tokio_postgres::Row) -> Result<OutboxRow, tokio_postgres::Error> {
        Ok(OutboxRow {
            id: row.try_get(0)?,
            event_id: row.try_get(1)?,
            channel: row.try_get(2)?,
            kind: row.try_get(3)?,
            payload: row.try_get(4)?,
            meta: row.try_get(5)?,
            scopes: row.try_get(6)?,
            created_ms: row.try_get(7)?,
        })
    }

    /// The publish's idempotency key: a row published again (after a crash between the publish
    /// and the commit) is not published twice while the relay remembers its key.
    pub fn key(&self) -> String {
        format!("pg:{}", self.event_id)
    }

    /// Publishes the row on its channel, as the feed ([`Grant::Feed`]).
    pub async fn publish(&self, state: &AppState) -> Outcome {
        match self.try_publish(state).await {
            Ok(_) => Outcome::Published,
            Err(e) => match e.code {
                ErrorCode::Unavailable | ErrorCode::OutcomeUnknown | ErrorCode::RateLimited => {
                    Outcome::Failed(e.message.to_string())
                }
                code => Outcome::Refused(format!("{}: {}", code.as_str(), e.message)),
            },
        }
    }

    async fn try_publish(&self, state: &AppState) -> Result<u64, FrameError> {
        let bad = |what: &str, text: &str| {
            FrameError::new(
                ErrorCode::BadEvent,
                format!("`{what}` is not JSON: `{}`", excerpt(text)),
            )
        };
        let size = self.channel.len()
            + self.kind.len()
            + self.payload.as_deref().map_or(0, str::len)
            + self.meta.as_deref().map_or(0, str::len);
        let max = state.config.max_frame_bytes;
        if size > max {
            return Err(FrameError::new(
                ErrorCode::TooLarge,
                format!("the event is {size} bytes long, over --max-frame-bytes ({max})"),
            ));
        }
        let payload: Option<&RawValue> = match &self.payload {
            Some(text) => Some(serde_json::from_str(text).map_err(|_| bad("payload", text))?),
            None => None,
        };
        let meta: Option<&RawValue> = match &self.meta {
            Some(text) => Some(serde_json::from_str(text).map_err(|_| bad("meta", text))?),
            None => None,
        };
        let scopes = self
            .scopes
            .as_ref()
            .map(|s| s.iter().map(|s| Cow::Borrowed(s.as_str())).collect());
        let key = self.key();
        if self.channel == REVALIDATE_CHANNEL {
            return self.revalidate(state, payload, scopes, &key).await;
        }
        let event = Publish {
            key: Some(Cow::Borrowed(&key)),
            channel: Cow::Borrowed(&self.channel),
            kind: Cow::Borrowed(&self.kind),
            payload,
            date: Some(DateInput::Millis(self.created_ms.trunc())),
            meta,
            scopes,
        };
        state.publish(&Grant::Feed, event).await.map(|(_, seq)| seq)
    }

    /// A row on `$revalidate`: its payload must be `{"keys": [...]}`, as `POST /revalidate` takes.
    async fn revalidate(
        &self,
        state: &AppState,
        payload: Option<&RawValue>,
        scopes: Option<Vec<Cow<'_, str>>>,
        key: &str,
    ) -> Result<u64, FrameError> {
        if self.kind != REVALIDATE_TYPE {
            return Err(FrameError::new(
                ErrorCode::BadEvent,
                format!(
                    "a row on `{REVALIDATE_CHANNEL}` has type `{REVALIDATE_TYPE}`, not `{}`",
                    excerpt(&self.kind)
                ),
            ));
        }
        #[derive(serde::Deserialize)]
        struct Keys<'a> {
            #[serde(borrow)]
            keys: Option<&'a RawValue>,
        }
        let keys = payload
            .and_then(|p| serde_json::from_str::<Keys>(p.get()).ok())
            .and_then(|k| k.keys);
        let payload = crate::http::revalidate_payload(keys)?;
        let event = Publish {
            key: Some(Cow::Borrowed(key)),
            channel: Cow::Borrowed(REVALIDATE_CHANNEL),
            kind: Cow::Borrowed(REVALIDATE_TYPE),
            payload: Some(&payload),
            date: Some(DateInput::Millis(self.created_ms.trunc())),
            meta: None,
            scopes,
        };
        state
            .revalidate(&Grant::Feed, event)
            .await
            .map(|(_, seq)| seq)
    }
}
