//! The few JS globals the shells use, bound directly so that they work in windows, workers and
//! Node alike (no `window` needed).

use crate::prelude::*;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
function eventDate(ms) {
  const date = new Date(ms);
  return isNaN(date.getTime()) ? new Date() : date;
}
export function liveEvent(channel, type, payload, date, meta) {
  const event = { channel, type, payload: JSON.parse(payload), date: eventDate(date) };
  if (meta !== undefined) event.meta = JSON.parse(meta);
  return event;
}
function eventOf(f, date) {
  const event = { channel: f.channel, type: f.type, payload: f.payload, date };
  const m = f.meta;
  if (typeof m === "object" && m !== null && !Array.isArray(m)) event.meta = m;
  return event;
}
export function eventFromFrame(frame) {
  const f = typeof frame === "string" ? JSON.parse(frame) : frame;
  return eventOf(f, eventDate(f.date));
}
function eventIds(f) {
  if (f === null || typeof f !== "object" || f.op !== "event") return null;
  if (typeof f.channel !== "string" || typeof f.type !== "string") return null;
  if (!Number.isSafeInteger(f.seq) || f.seq < 0) return null;
  if (typeof f.date !== "number" || !(Math.abs(f.date) <= 8.64e15)) return null;
  const m = f.meta;
  if (m !== undefined && (typeof m !== "object" || m === null || Array.isArray(m))) return null;
  const p = f.payload;
  if (p === undefined) return null;
  if (p === null || typeof p !== "object" || Array.isArray(p) || p.ids == null) return undefined;
  const ids = p.ids;
  if (!Array.isArray(ids)) return null;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (typeof id !== "string" && !Number.isSafeInteger(id)) return null;
  }
  return ids;
}
export function frameListener(max, onText, onFrame, onEvent, callbacks, onThrow) {
  return (e) => {
    const d = e.data;
    if (typeof d !== "string") return onText(undefined, 0);
    // UTF-8 bytes, as the relay counts; a UTF-16 unit is 1 to 3 bytes (as stream.rs's bytesOver).
    const n = d.length * 3 > max ? new Blob([d]).size : 0;
    if (n > max) return onText(undefined, n);
    if (onEvent === undefined) return onText(d, 0);
    let f;
    try {
      f = JSON.parse(d);
    } catch (error) {
      return onFrame(undefined, String(error instanceof Error ? error.message : error));
    }
    // Presence frames go straight to the entry's presence bookkeeping (client.rs, PRESENCE_SUB).
    if (f !== null && f.op === "presence") return deliver(callbacks, 4294967295, f, onThrow);
    const ids = eventIds(f);
    if (ids === null) return onFrame(f, undefined);
    const subs = onEvent(f.channel, f.type, f.seq, ids, f, e.timeStamp);
    if (subs === undefined) return;
    // As eventFromFrame(f): eventIds checked that the date is a time JS can represent.
    const event = eventOf(f, new Date(f.date));
    if (typeof subs === "number") return deliver(callbacks, subs, event, onThrow);
    for (let i = 0; i < subs.length; i++) deliver(callbacks, subs[i], event, onThrow);
  };
}
function deliver(callbacks, sub, event, onThrow) {
  // Looked up at call time: an earlier callback may have unsubscribed this one.
  const callback = callbacks.get(sub);
  if (callback === undefined) return;
  try {
    callback(event);
  } catch (error) {
    onThrow(error);
  }
}
export function ownedParts(f) {
  return [JSON.stringify(f.payload), f.meta === undefined ? undefined : JSON.stringify(f.meta), f.date];
}
export function resyncEvent(channel, reason) {
  return { channel, type: "$resync", payload: {}, date: new Date(), meta: { resync: true, reason } };
}
"#)]
extern "C" {
    /// Builds the `LiveEvent` handed to callbacks: the payload becomes a JS object here, once per
    /// event whatever the number of callbacks.
    #[wasm_bindgen(js_name = liveEvent, catch)]
    pub fn live_event(
        channel: &str,
        kind: &str,
        payload: &str,
        date: f64,
        meta: Option<String>,
    ) -> Result<JsValue, JsValue>;

    /// Builds the `LiveEvent` from the `event` frame as it arrived from the network: its text (one
    /// `JSON.parse` per event, and no string copied back out of wasm) or the object
    /// `frameListener` already parsed it into.
    #[wasm_bindgen(js_name = eventFromFrame, catch)]
    pub fn event_from_frame(frame: &JsValue) -> Result<JsValue, JsValue>;

    /// A WebSocket's `onmessage`: it parses each text frame once. An `event` frame the engine can
    /// route by its keys alone (`Session::handle_event`: a `seq`, a `date` JS can represent, a
    /// `meta` object or none, `payload.ids` strings and safe integers or none) goes to
    /// `on_event(channel, type, seq, ids, frame, timeStamp)` with the ids (strings and safe integers, or
    /// `undefined`) and the
    /// parsed frame (with `on_event` undefined: none does). What it returns (a sub id or a
    /// `Uint32Array` of them) are the subscriptions whose `callbacks` (a `Map` by sub id) JS calls
    /// with the event then, each looked up when its turn comes; what one throws goes to
    /// `on_throw`. Every other frame goes to `on_frame(parsed, undefined)`, for the shell to read
    /// from the object (`on_frame(undefined, why)` when it is not JSON). A binary frame goes to
    /// `on_text(undefined, 0)`, and a text frame over `max` bytes of UTF-8 (what the relay's
    /// `--max-frame-bytes` counts) to `on_text(undefined, bytes)`: it never enters wasm. A plain socket (`on_event` undefined)
    /// hands every text frame to `on_text(text, 0)`, for its translator.
    #[wasm_bindgen(js_name = frameListener)]
    pub fn frame_listener(
        max: u32,
        on_text: &JsValue,
        on_frame: &JsValue,
        on_event: &JsValue,
        callbacks: &JsValue,
        on_throw: &JsValue,
    ) -> js_sys::Function;

    /// A parsed `event` frame's payload and meta as JSON text, and its date: `[payload, meta, date]`
    /// (for an event a coalescing window holds back).
    #[wasm_bindgen(js_name = ownedParts)]
    pub fn owned_parts(frame: &JsValue) -> js_sys::Array;

    /// The event handed to subscriptions whose channel could not be replayed (they should refetch).
    #[wasm_bindgen(js_name = resyncEvent)]
    pub fn resync_event(channel: &str, reason: &str) -> JsValue;
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    pub fn set_timeout(handler: &js_sys::Function, ms: f64) -> JsValue;

    #[wasm_bindgen(js_name = clearTimeout)]
    pub fn clear_timeout(handle: &JsValue);

    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;

    #[wasm_bindgen(js_namespace = console, js_name = error)]
    pub fn console_error(message: &str, error: &JsValue);

    #[wasm_bindgen(js_namespace = Math, js_name = random)]
    fn math_random() -> f64;
}

/// Milliseconds on the monotonic clock, for the session: `performance.now()`, never less than
/// a time it gave before.
pub fn now_ms() -> u64 {
    clock(performance_now())
}

/// The time of a DOM event that happened just now, from its `timeStamp` (milliseconds on the
/// same clock as `performance.now()`, read for free): the time to give the session for it,
/// never less than a time given before. A stamp that is missing or not on that clock (over
/// 10^11 ms, three years, is no page's age) is replaced by [`now_ms`].
pub fn now_at(stamp: f64) -> u64 {
    if stamp > 0.0 && stamp < 1e11 {
        clock(stamp)
    } else {
        now_ms()
    }
}

/// The latest time handed out. The wasm runs on one thread: the atomic is only a `static` that
/// needs no std (`thread_local!` does).
static LAST: AtomicU64 = AtomicU64::new(0);

fn clock(ms: f64) -> u64 {
    let now = (ms.max(0.0) as u64).max(LAST.load(Relaxed));
    LAST.store(now, Relaxed);
    now
}

/// A seed for the reconnect jitter, so that many tabs do not retry in lockstep.
pub fn random_seed() -> u64 {
    (math_random() * (u64::MAX as f64)) as u64
}

/// A JS error (or any thrown value) as text, for error messages.
pub(crate) fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        // Not `{:?}`: JsValue's Debug formats floats, which costs kilobytes of wasm.
        .or_else(|| js_sys::JSON::stringify(e).ok().and_then(|s| s.as_string()))
        .unwrap_or_else(|| "an error that is not an Error".to_owned())
}
