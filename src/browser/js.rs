//! The few JS globals the shells use, bound directly so that they work in windows, workers and
//! Node alike (no `window` needed).

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
export function eventFromFrame(frame) {
  const f = JSON.parse(frame);
  const event = { channel: f.channel, type: f.type, payload: f.payload, date: eventDate(f.date) };
  const m = f.meta;
  if (typeof m === "object" && m !== null && !Array.isArray(m)) event.meta = m;
  return event;
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

    /// Builds the `LiveEvent` from the `event` frame's text as it arrived from the network: one
    /// `JSON.parse` per event, and no string copied back out of wasm.
    #[wasm_bindgen(js_name = eventFromFrame, catch)]
    pub fn event_from_frame(frame: &JsValue) -> Result<JsValue, JsValue>;

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

/// Milliseconds on the monotonic clock, for the session.
pub fn now_ms() -> u64 {
    performance_now().max(0.0) as u64
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
