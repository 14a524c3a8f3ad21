//! Validating a published event into one that is ready to be numbered and sent.
//!
//! Shared by the WebSocket `publish` frame and `POST /publish`, so both refuse the same events with
//! the same codes and messages.

use axum::extract::ws::Utf8Bytes;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use wasm_live_provider::engine::event::payload_ids;
use wasm_live_provider::engine::frame::{
    encode_event, excerpt, DateInput, ErrorCode, FrameError, Publish,
};

/// What validation needs to know about the relay's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_channel_len: usize,
}

/// The longest accepted idempotency `key` of a publish, in bytes.
pub const MAX_KEY_LEN: usize = 128;

/// An event that passed validation: everything but its sequence number is settled.
#[derive(Debug, Clone)]
pub struct ValidEvent<'a> {
    /// The publish's idempotency key (non-empty, at most [`MAX_KEY_LEN`] bytes).
    pub key: Option<Cow<'a, str>>,
    pub channel: Cow<'a, str>,
    pub kind: Cow<'a, str>,
    pub payload: &'a RawValue,
    /// Milliseconds since the Unix epoch.
    pub date: f64,
    pub meta: Option<&'a RawValue>,
}

impl ValidEvent<'_> {
    /// The `event` frame with this sequence number, serialized once and shared by every subscriber.
    pub fn frame(&self, seq: u64) -> Utf8Bytes {
        Utf8Bytes::from(encode_event(
            &self.channel,
            seq,
            &self.kind,
            self.payload,
            self.date,
            self.meta,
        ))
    }
}

/// The payload of a publish that gives none.
fn empty_object() -> &'static RawValue {
    serde_json::from_str("{}").unwrap_or(RawValue::NULL)
}

/// Checks a channel name against the relay's rules (`bad_channel`).
pub fn check_channel(channel: &str, limits: &Limits) -> Result<(), FrameError> {
    if channel.is_empty() {
        return Err(FrameError::new(ErrorCode::BadChannel, "`channel` is empty"));
    }
    if channel.len() > limits.max_channel_len {
        return Err(FrameError::new(
            ErrorCode::BadChannel,
            format!(
                "`channel` is {} bytes long, over the limit of {} bytes",
                channel.len(),
                limits.max_channel_len
            ),
        ));
    }
    Ok(())
}

/// Validates an event as a client or an HTTP caller published it.
pub fn validate<'a>(event: Publish<'a>, limits: &Limits) -> Result<ValidEvent<'a>, FrameError> {
    check_channel(&event.channel, limits)?;
    if event.kind.is_empty() {
        return Err(FrameError::new(ErrorCode::BadEvent, "`type` is empty"));
    }
    if event.kind.starts_with('$') {
        return Err(FrameError::new(
            ErrorCode::BadEvent,
            format!(
                "`type` \"{}\" is reserved: types starting with `$` are reserved for the protocol",
                excerpt(&event.kind)
            ),
        ));
    }
    if let Some(key) = &event.key {
        if key.is_empty() {
            return Err(FrameError::new(ErrorCode::BadEvent, "`key` is empty"));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(FrameError::new(
                ErrorCode::BadEvent,
                format!(
                    "`key` is {} bytes long, over the limit of {MAX_KEY_LEN} bytes",
                    key.len()
                ),
            ));
        }
    }
    let payload = event.payload.unwrap_or(empty_object());
    if let Err(e) = payload_ids(payload) {
        return Err(FrameError::new(
            ErrorCode::BadEvent,
            format!("payload.ids: {}", e.0),
        ));
    }
    if let Some(meta) = event.meta {
        if !meta.get().trim_start().starts_with('{') {
            return Err(FrameError::new(
                ErrorCode::BadEvent,
                format!("`meta` must be an object, not `{}`", excerpt(meta.get())),
            ));
        }
    }
    let date = match event.date {
        None => now_ms(),
        Some(DateInput::Millis(ms)) if ms.is_finite() => ms,
        Some(DateInput::Millis(ms)) => {
            return Err(FrameError::new(
                ErrorCode::BadEvent,
                format!("`date` {ms} is not a finite number"),
            ))
        }
        Some(DateInput::Text(text)) => parse_rfc3339(&text)?,
    };
    Ok(ValidEvent {
        key: event.key,
        channel: event.channel,
        kind: event.kind,
        payload,
        date,
        meta: event.meta,
    })
}

fn parse_rfc3339(text: &str) -> Result<f64, FrameError> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        FrameError::new(
            ErrorCode::BadEvent,
            format!("`date` \"{}\" is not an RFC 3339 date: {e}", excerpt(text)),
        )
    })?;
    Ok((parsed.unix_timestamp_nanos() / 1_000_000) as f64)
}

/// The relay's clock, in whole milliseconds since the Unix epoch.
pub fn now_ms() -> f64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as f64,
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_channel_len: 8 };

    fn publish<'a>(channel: &'a str, kind: &'a str) -> Publish<'a> {
        Publish {
            key: None,
            channel: channel.into(),
            kind: kind.into(),
            payload: None,
            date: None,
            meta: None,
        }
    }

    fn raw(json: &str) -> &RawValue {
        serde_json::from_str(json).expect("test JSON")
    }

    #[test]
    fn defaults_payload_and_date() {
        let before = now_ms();
        let ev = validate(publish("a", "created"), &LIMITS).expect("valid");
        assert_eq!(ev.payload.get(), "{}");
        assert!(ev.date >= before && ev.date <= now_ms());
        let text = ev.frame(3);
        let value: serde_json::Value = serde_json::from_str(text.as_str()).expect("frame is JSON");
        assert_eq!(value["seq"], 3);
        assert_eq!(value["op"], "event");
        assert_eq!(value["type"], "created");
    }

    #[test]
    fn refuses_bad_events_with_their_codes() {
        let code = |p| validate(p, &LIMITS).map(|_| ()).map_err(|e| e.code);
        assert_eq!(code(publish("", "x")), Err(ErrorCode::BadChannel));
        assert_eq!(code(publish("123456789", "x")), Err(ErrorCode::BadChannel));
        assert_eq!(code(publish("12345678", "x")), Ok(()));
        assert_eq!(code(publish("a", "")), Err(ErrorCode::BadEvent));
        let p = Publish {
            payload: Some(raw(r#"{"ids":"1"}"#)),
            ..publish("a", "x")
        };
        let e = validate(p, &LIMITS).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadEvent);
        assert!(e.message.starts_with("payload.ids: invalid type"), "{e}");
        let p = Publish {
            meta: Some(raw("[1]")),
            ..publish("a", "x")
        };
        assert_eq!(code(p), Err(ErrorCode::BadEvent));
    }

    #[test]
    fn reserved_types_and_bad_keys_are_bad_events() {
        let e = validate(publish("a", "$resync"), &LIMITS).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadEvent);
        assert!(e.message.contains("starting with `$` are reserved"), "{e}");
        assert!(validate(publish("a", "x$"), &LIMITS).is_ok());
        let keyed = |key: String| Publish {
            key: Some(key.into()),
            ..publish("a", "x")
        };
        let e = validate(keyed(String::new()), &LIMITS).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::BadEvent, "`key` is empty")
        );
        let e = validate(keyed("k".repeat(MAX_KEY_LEN + 1)), &LIMITS).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadEvent);
        assert!(
            e.message.contains("`key`") && e.message.contains("128"),
            "{e}"
        );
        let ev = validate(keyed("k".repeat(MAX_KEY_LEN)), &LIMITS).expect("128 bytes is fine");
        assert_eq!(ev.key.as_deref().map(str::len), Some(MAX_KEY_LEN));
    }

    #[test]
    fn dates_are_millis_or_rfc3339() {
        let with = |d: DateInput<'static>| {
            validate(
                Publish {
                    date: Some(d),
                    ..publish("a", "x")
                },
                &LIMITS,
            )
        };
        assert_eq!(
            with(DateInput::Millis(1.5e12)).expect("millis").date,
            1.5e12
        );
        let ev = with(DateInput::Text("2025-11-22T08:26:40.123Z".into())).expect("rfc 3339");
        assert_eq!(ev.date, 1_763_800_000_123.0);
        let ev = with(DateInput::Text("2025-11-22T09:26:40+01:00".into())).expect("offset");
        assert_eq!(ev.date, 1_763_800_000_000.0);
        let e = with(DateInput::Text("yesterday".into())).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadEvent);
        assert!(e.message.contains("`date`"), "{e}");
        assert_eq!(
            DateInput::read(raw("true")).unwrap_err().code,
            ErrorCode::BadEvent
        );
        assert!(matches!(DateInput::read(raw("12")), Ok(DateInput::Millis(ms)) if ms == 12.0));
    }
}
