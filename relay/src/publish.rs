//! Validating a published event into one that is ready to be numbered and sent.
//!
//! Shared by the WebSocket `publish` frame, `POST /publish`, the demo API and `POST /revalidate`,
//! so all of them refuse the same events with the same codes and messages.

use axum::extract::ws::Utf8Bytes;
use live_protocol::frame::MAX_JS_DATE_MS;
use live_protocol::frame::{
    encode_event, excerpt, DateInput, ErrorCode, FrameError, Publish, REVALIDATE_CHANNEL,
};
use live_protocol::ids::payload_ids;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What validation needs to know about the relay's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_channel_len: usize,
}

/// The longest accepted idempotency `key` of a publish, in bytes.
pub const MAX_KEY_LEN: usize = 128;

/// The longest scope (of an event or of a connection), in bytes.
pub const MAX_SCOPE_LEN: usize = 128;
/// The most scopes an event or a connection may have.
pub const MAX_SCOPES: usize = 32;

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
    /// Only connections holding one of these scopes get the event; the others get a `skip`.
    /// `None` when the publish gave none (or an empty list): everyone gets the event.
    pub scopes: Option<Vec<Cow<'a, str>>>,
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

/// Whether a channel is reserved for the protocol (its name starts with `$`).
pub fn is_reserved(channel: &str) -> bool {
    channel.starts_with('$')
}

/// Checks a channel a connection subscribes to: the rules of [`check_channel`], and no reserved
/// channel but [`REVALIDATE_CHANNEL`] (`bad_channel`).
pub fn check_subscription(channel: &str, limits: &Limits) -> Result<(), FrameError> {
    check_channel(channel, limits)?;
    if is_reserved(channel) && channel != REVALIDATE_CHANNEL {
        return Err(FrameError::new(
            ErrorCode::BadChannel,
            format!(
                "channel \"{}\" is reserved: of the channels starting with `$`, only \
                 `{REVALIDATE_CHANNEL}` can be subscribed to",
                excerpt(channel)
            ),
        ));
    }
    Ok(())
}

/// Checks a list of scopes (of an event or of a connection): at most [`MAX_SCOPES`], each
/// non-empty and at most [`MAX_SCOPE_LEN`] bytes. The error names what is wrong.
pub fn check_scopes<S: AsRef<str>>(scopes: &[S]) -> Result<(), String> {
    if scopes.len() > MAX_SCOPES {
        return Err(format!(
            "{} scopes, over the limit of {MAX_SCOPES}",
            scopes.len()
        ));
    }
    for (i, scope) in scopes.iter().enumerate() {
        let scope = scope.as_ref();
        if scope.is_empty() {
            return Err(format!("scope {i} is empty"));
        }
        if scope.len() > MAX_SCOPE_LEN {
            return Err(format!(
                "scope {i} (\"{}\") is {} bytes long, over the limit of {MAX_SCOPE_LEN} bytes",
                excerpt(scope),
                scope.len()
            ));
        }
    }
    Ok(())
}

/// Validates an event as a client or an HTTP caller published it. Reserved channels (starting
/// with `$`) are refused (`bad_channel`).
pub fn validate<'a>(event: Publish<'a>, limits: &Limits) -> Result<ValidEvent<'a>, FrameError> {
    check_channel(&event.channel, limits)?;
    if is_reserved(&event.channel) {
        return Err(FrameError::new(
            ErrorCode::BadChannel,
            format!(
                "channel \"{}\" is reserved: channels starting with `$` cannot be published to{}",
                excerpt(&event.channel),
                if event.channel == REVALIDATE_CHANNEL {
                    " (use `POST /revalidate`)"
                } else {
                    ""
                }
            ),
        ));
    }
    validate_on_any_channel(event, limits)
}

/// Validates an event the relay publishes itself (`POST /revalidate`): like [`validate`], but a
/// reserved channel is allowed.
pub fn validate_on_any_channel<'a>(
    event: Publish<'a>,
    limits: &Limits,
) -> Result<ValidEvent<'a>, FrameError> {
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
    if let Err(e) = payload_ids(payload.get()) {
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
        // A JS `Date` keeps whole milliseconds within ±8.64e15 ms of the epoch: a date outside
        // would reach every client as an invalid date, and a fraction would not survive the
        // round trip through the clients' JSON parser (found by the `relay_publish` fuzz target).
        Some(DateInput::Millis(ms)) if ms.is_finite() && ms.abs() <= MAX_JS_DATE_MS => ms.trunc(),
        Some(DateInput::Millis(ms)) => {
            return Err(FrameError::new(
                ErrorCode::BadEvent,
                format!(
                    "`date` {ms} is not a time a JS Date can hold (milliseconds within ±8.64e15 \
                     of the epoch)"
                ),
            ))
        }
        Some(DateInput::Text(text)) => parse_rfc3339(&text)?,
    };
    let scopes = match event.scopes {
        Some(scopes) if !scopes.is_empty() => {
            check_scopes(&scopes)
                .map_err(|e| FrameError::new(ErrorCode::BadEvent, format!("`scopes`: {e}")))?;
            Some(scopes)
        }
        _ => None,
    };
    Ok(ValidEvent {
        key: event.key,
        channel: event.channel,
        kind: event.kind,
        payload,
        date,
        meta: event.meta,
        scopes,
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
            scopes: None,
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

    /// Regression (fuzz target `relay_publish`): a date of 17638001763800001615 ms was accepted,
    /// and the client decoded the event's date one unit in the last place away from it; it is
    /// also no time a JS `Date` can hold. Dates are whole milliseconds within JS's range.
    #[test]
    fn dates_are_whole_milliseconds_a_js_date_can_hold() {
        let with = |ms: f64| {
            validate(
                Publish {
                    date: Some(DateInput::Millis(ms)),
                    ..publish("a", "x")
                },
                &LIMITS,
            )
        };
        for ms in [
            17_638_001_763_800_001_615_u64 as f64,
            8.64e15 + 1.0,
            -8.64e15 - 1.0,
            1e300,
        ] {
            let e = with(ms).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadEvent, "{ms}");
            assert!(e.message.contains("`date`"), "{e}");
        }
        assert_eq!(with(8.64e15).expect("the last JS date").date, 8.64e15);
        assert_eq!(with(-8.64e15).expect("the first JS date").date, -8.64e15);
        assert_eq!(
            with(1_763_800_000_123.9).expect("millis").date,
            1_763_800_000_123.0
        );
        assert_eq!(with(-1.5).expect("before the epoch").date, -1.0);
        // What the relay sends decodes to the same date.
        let body = br#"{"channel":"a","type":"x","date":1763800000123.456}"#;
        let event =
            validate(crate::http::read_publish_body(body).expect("body"), &LIMITS).expect("valid");
        let frame = event.frame(1);
        match live_protocol::frame::decode_server(frame.as_str()) {
            Ok(live_protocol::frame::ServerFrame::Event(e)) => {
                assert_eq!(e.date.to_bits(), event.date.to_bits())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reserved_channels_are_refused_but_for_the_relay_itself() {
        let e = validate(publish("$x", "updated"), &LIMITS).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadChannel);
        assert!(e.message.contains("reserved"), "{e}");
        let limits = Limits {
            max_channel_len: 64,
        };
        let e = validate(publish(REVALIDATE_CHANNEL, "revalidate"), &limits).unwrap_err();
        assert!(e.message.contains("POST /revalidate"), "{e}");
        assert!(
            validate_on_any_channel(publish(REVALIDATE_CHANNEL, "revalidate"), &limits).is_ok()
        );
        assert!(check_subscription(REVALIDATE_CHANNEL, &limits).is_ok());
        let e = check_subscription("$other", &limits).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadChannel);
        assert!(e.message.contains("$revalidate"), "{e}");
        assert!(check_subscription("a$", &limits).is_ok());
    }

    #[test]
    fn event_scopes_are_checked() {
        let scoped = |scopes: Vec<String>| {
            validate(
                Publish {
                    scopes: Some(scopes.into_iter().map(Cow::Owned).collect()),
                    ..publish("a", "x")
                },
                &LIMITS,
            )
        };
        let ev = scoped(vec!["user:1".into(), "team:2".into()]).expect("valid");
        assert_eq!(ev.scopes.map(|s| s.len()), Some(2));
        assert_eq!(
            scoped(vec![]).expect("valid").scopes,
            None,
            "empty: for all"
        );
        let e = scoped(vec!["a".into(), String::new()]).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadEvent);
        assert!(e.message.contains("`scopes`: scope 1 is empty"), "{e}");
        let e = scoped(vec!["s".repeat(MAX_SCOPE_LEN + 1)]).unwrap_err();
        assert!(e.message.contains("128"), "{e}");
        assert!(scoped(vec!["s".repeat(MAX_SCOPE_LEN)]).is_ok());
        let many = (0..=MAX_SCOPES).map(|i| i.to_string()).collect();
        let e = scoped(many).unwrap_err();
        assert!(e.message.contains("33 scopes"), "{e}");
    }
}
