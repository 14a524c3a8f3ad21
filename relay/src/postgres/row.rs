//! One outbox row, read from the database and published through the relay's one publish path.

use crate::auth::Grant;
use crate::state::AppState;
use live_protocol::frame::{
    excerpt, DateInput, ErrorCode, FrameError, Publish, REVALIDATE_CHANNEL, REVALIDATE_TYPE,
};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// What a drain selects of each row, in [`OutboxRow::read`]'s order, from `live_relay.outbox o`
/// joined with [`TEXTS`]: the row's size, and its fields only when it is no larger than `$max`
/// bytes (a row of 8 MB is refused as too large without being read: a batch of such rows would
/// take gigabytes).
pub const COLUMNS: &str = "o.id, o.event_id::text, t.size, \
     case when t.size <= $max then o.channel end, case when t.size <= $max then o.type end, \
     case when t.size <= $max then t.payload end, case when t.size <= $max then t.meta end, \
     case when t.size <= $max then o.scopes::text[] end, \
     (extract(epoch from o.created_at) * 1000)::float8";

/// The lateral join that [`COLUMNS`] reads the texts and the size from.
pub const TEXTS: &str = "cross join lateral (select p.payload, p.meta, \
     octet_length(o.channel)::int8 + octet_length(o.type) + coalesce(octet_length(p.payload), 0) \
     + coalesce(octet_length(p.meta), 0) + coalesce(octet_length(o.scopes::text), 0) as size \
     from (select o.payload::text as payload, o.meta::text as meta) p) t";

/// A row of `live_relay.outbox`.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: String,
    /// Its fields' bytes in all: over `--max-frame-bytes` the fields were not read.
    pub size: i64,
    pub channel: String,
    pub kind: String,
    /// JSON text.
    pub payload: Option<String>,
    /// JSON text.
    pub meta: Option<String>,
    /// A NULL element would be refused (the table's check keeps them out).
    pub scopes: Option<Vec<Option<String>>>,
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
    /// Reads a row selected with [`COLUMNS`]: its id, and the row or why it cannot be read (the
    /// row is then refused with the reason, and does not hold up the others).
    pub fn read(row: &tokio_postgres::Row) -> (Option<i64>, Result<OutboxRow, String>) {
        let id: Option<i64> = row.try_get(0).ok();
        let read = || -> Result<OutboxRow, tokio_postgres::Error> {
            let size: i64 = row.try_get::<_, Option<i64>>(2)?.unwrap_or(0);
            Ok(OutboxRow {
                id: row.try_get(0)?,
                event_id: row.try_get(1)?,
                size,
                channel: row.try_get::<_, Option<String>>(3)?.unwrap_or_default(),
                kind: row.try_get::<_, Option<String>>(4)?.unwrap_or_default(),
                payload: row.try_get(5)?,
                meta: row.try_get(6)?,
                scopes: row.try_get(7)?,
                created_ms: row.try_get(8)?,
            })
        };
        (
            id,
            read().map_err(|e| {
                format!(
                    "bad_event: the row cannot be read: {}",
                    super::error::describe(&e)
                )
            }),
        )
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
        let max = state.config.max_frame_bytes;
        if usize::try_from(self.size).map_or(true, |size| size > max) {
            return Err(FrameError::new(
                ErrorCode::TooLarge,
                format!(
                    "the row is {} bytes long, over --max-frame-bytes ({max})",
                    self.size
                ),
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
        let scopes = match &self.scopes {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|s| s.as_deref().map(Cow::Borrowed))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| FrameError::new(ErrorCode::BadEvent, "`scopes` holds a NULL"))?,
            ),
        };
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
