//! Reads a frame of protocol v1 from the object JS parsed it into (`frameListener` parses every
//! WebSocket frame once): the same fields, checks and wording as the engine's reader of a frame's
//! text, which the default wasm therefore does not carry. Both end in
//! [`frame::decode_fields`], which checks what each `op` requires.
//!
//! JSON itself was checked by `JSON.parse`. What a JS value cannot tell apart is read as JS
//! sees it: a repeated key keeps its last value, and a whole number past 2^53 (which `JSON.parse`
//! has already rounded) is refused as too large.

use crate::engine::frame::{self, invalid, ChannelEntry, FrameError, Position, ServerFrame};
use crate::engine::json::{self, is_whole};
use crate::prelude::*;
use alloc::borrow::Cow;
use js_sys::{Array, Reflect, JSON};
use wasm_bindgen::{JsCast, JsValue};

/// The JSON text of an `event` frame's payload and meta, which its decoded frame borrows.
#[derive(Default)]
pub struct Texts {
    payload: Option<String>,
    meta: Option<String>,
}

type Read<T> = Result<Option<T>, json::Error>;

/// The frame `f` (a parsed JSON value) holds; `texts` keeps what the frame borrows.
pub fn decode_object<'t>(f: &JsValue, texts: &'t mut Texts) -> Result<ServerFrame<'t>, FrameError> {
    if !is_object(f) {
        return Err(invalid(None, json::Error("expected an object")));
    }
    let field = |name| (name, get(f, name));
    let mut e = frame::ServerFields {
        op: check(field("op"), string)?,
        id: check(field("id"), whole)?,
        channel: check(field("channel"), string)?,
        channels: check(field("channels"), channel_list)?,
        kind: check(field("type"), string)?,
        date: check(field("date"), |v| {
            Ok(Some(v.as_f64().filter(|n| n.is_finite())))
        })?,
        seq: check(field("seq"), whole)?,
        version: check(field("version"), whole)?,
        epoch: check(field("epoch"), string)?,
        // No `action`: presence frames never come here (`frameListener` hands them to the entry).
        features: check(field("features"), |v| {
            let presence = JsValue::from_str("presence");
            Ok(Some(
                v.dyn_ref::<Array>()
                    .is_some_and(|a| a.includes(&presence, 0)),
            ))
        })?,
        ping_ms: check(field("ping_ms"), whole)?,
        code: check(field("code"), string)?,
        message: check(field("message"), string)?,
        sub: check(field("sub"), string)?,
        ttl_ms: check(field("ttl_ms"), whole)?,
        ..Default::default()
    };
    texts.payload = check(field("payload"), json_text)?;
    texts.meta = check(field("meta"), json_text)?;
    let texts: &'t Texts = texts;
    e.payload = texts.payload.as_deref();
    e.meta = texts.meta.as_deref();
    frame::decode_fields(e)
}

/// A field as the text reader words its problems: `null` and absent alike leave it unset.
fn check<T>(
    (name, value): (&str, JsValue),
    read: impl FnOnce(&JsValue) -> Read<T>,
) -> Result<Option<T>, FrameError> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    read(&value).map_err(|e| invalid(Some(name), e))
}

fn get(object: &JsValue, name: &str) -> JsValue {
    // Only read from objects (checked by the caller): a getter cannot be there, so this does not
    // throw; if it ever did, the field reads as absent.
    Reflect::get(object, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn is_object(v: &JsValue) -> bool {
    v.is_object() && !Array::is_array(v)
}

fn string(v: &JsValue) -> Read<Cow<'static, str>> {
    match v.as_string() {
        Some(s) => Ok(Some(Cow::Owned(s))),
        None => Err(json::Error("expected a string")),
    }
}

/// A whole number from 0 that JS holds exactly (every finite number from 2^53 is whole, and may
/// have been rounded by `JSON.parse`).
fn whole(v: &JsValue) -> Read<u64> {
    match v.as_f64() {
        Some(n) if n >= 0.0 && is_whole(n) => Ok(Some(n as u64)),
        Some(n) if n.is_finite() && n >= 9_007_199_254_740_992.0 => Err(too_large()),
        _ => Err(json::Error("expected a whole number from 0")),
    }
}

fn too_large() -> json::Error {
    json::Error("number too large")
}

fn json_text(v: &JsValue) -> Read<String> {
    match JSON::stringify(v).ok().and_then(|s| s.as_string()) {
        Some(text) => Ok(Some(text)),
        None => Err(json::Error("expected a value")),
    }
}

/// A `subscribed` frame's `channels`.
fn channel_list(v: &JsValue) -> Read<Vec<ChannelEntry<'static>>> {
    let Some(list) = v.dyn_ref::<Array>() else {
        return Err(json::Error("expected an array"));
    };
    let mut out = Vec::new();
    for item in list.iter() {
        out.push(channel_entry(&item)?);
    }
    Ok(Some(out))
}

fn channel_entry(v: &JsValue) -> Result<ChannelEntry<'static>, json::Error> {
    if !is_object(v) {
        return Err(json::Error("expected an object"));
    }
    // As the text reader: `null` is missing, another type is the wrong type.
    let channel = optional(&get(v, "channel"), string)?;
    let channel = channel.ok_or(json::Error("missing field `channel`"))?;
    Ok(ChannelEntry {
        channel,
        seq: optional(&get(v, "seq"), whole)?,
        since: optional(&get(v, "since"), position)?,
        recovered: optional(&get(v, "recovered"), |v| match v.as_bool() {
            Some(b) => Ok(Some(b)),
            None => Err(json::Error("expected a boolean")),
        })?,
    })
}

fn optional<T>(v: &JsValue, read: impl FnOnce(&JsValue) -> Read<T>) -> Read<T> {
    if v.is_undefined() || v.is_null() {
        Ok(None)
    } else {
        read(v)
    }
}

fn position(v: &JsValue) -> Read<Position<'static>> {
    if !is_object(v) {
        return Err(json::Error("expected an object"));
    }
    let epoch = get(v, "epoch");
    let seq = get(v, "seq");
    Ok(Some(Position {
        epoch: optional(&epoch, string)?.ok_or(json::Error("missing field `epoch`"))?,
        seq: optional(&seq, whole)?.ok_or(json::Error("missing field `seq`"))?,
    }))
}

/// For the browser tests: `text` decoded from its text (the engine's reader) and from the value
/// `JSON.parse` makes of it, each as the frame's `Debug` form or the error's message.
#[doc(hidden)]
pub fn decoded_both_ways(text: &str) -> (String, String) {
    let show = |decoded: Result<ServerFrame<'_>, FrameError>| match decoded {
        Ok(frame) => format!("{frame:?}"),
        Err(e) => e.message,
    };
    let from_text = show(frame::decode_server(text));
    let from_object = match JSON::parse(text) {
        Ok(parsed) => show(decode_object(&parsed, &mut Texts::default())),
        Err(_) => "not JSON".into(),
    };
    (from_text, from_object)
}
