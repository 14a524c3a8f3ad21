//! The JS the shells call: the per-frame functions of `pkg-template/frames.js` (a real `.js` file,
//! type-checked and unit-tested on its own), and the few JS globals, bound directly so that they
//! work in windows, workers and Node alike (no `window` needed).

use crate::prelude::*;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/pkg-template/frames.js")]
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
