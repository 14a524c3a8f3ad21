//! An `EventSource` (Server-Sent Events) that owns its listeners: dropping it removes them and
//! closes the stream. Reconnection is the session's job, so any error closes the stream for good.
//! Also [`probe`]: what HTTP status a stream URL answers, which an `EventSource` never tells.

#[cfg(feature = "igniter")]
use super::js::describe;
#[cfg(feature = "igniter")]
use crate::engine::igniter::Probe;
use alloc::rc::Rc;
#[cfg(feature = "igniter")]
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
#[cfg(feature = "igniter")]
use wasm_bindgen_futures::JsFuture;
#[cfg(feature = "igniter")]
use web_sys::AbortController;
use web_sys::{Event, EventSource, MessageEvent};

#[wasm_bindgen(module = "/pkg-template/stream.js")]
extern "C" {
    /// How many bytes the string `text` takes in UTF-8 (what the relay's `--max-frame-bytes` counts)
    /// when that is over `max`, else 0 (as the WebSocket's `frameListener` measures). A UTF-16 code
    /// unit is 1 to 3 bytes: a string of at most `max / 3` units is not encoded.
    #[wasm_bindgen(js_name = bytesOver)]
    fn bytes_over(text: &JsValue, max: u32) -> u32;
}

#[cfg(feature = "igniter")]
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_with(url: &str, init: &JsValue) -> js_sys::Promise;
}

/// GETs `url` and reports its HTTP status as soon as the headers are in, then aborts the request:
/// a stream that opens is not kept. No answer at all (refused, reset, CORS) is `Unreachable`.
#[cfg(feature = "igniter")]
pub async fn probe(url: &str) -> Probe {
    let controller = match AbortController::new() {
        Ok(c) => c,
        Err(e) => return Probe::Unreachable(format!("no AbortController: {}", describe(&e))),
    };
    let init = Object::new();
    // Plain data properties on a fresh object.
    let _ = Reflect::set(&init, &"signal".into(), &controller.signal());
    let _ = Reflect::set(&init, &"cache".into(), &"no-store".into());
    let answer = JsFuture::from(fetch_with(url, &init)).await;
    let status = answer.as_ref().ok().map(|response| {
        Reflect::get(response, &"status".into())
            .ok()
            .and_then(|s| s.as_f64())
            .unwrap_or(0.0) as u16
    });
    // Nobody reads the body, so aborting it rejects nothing that is awaited.
    controller.abort();
    match (status, answer) {
        (Some(status), _) => Probe::Status(status),
        (None, Err(e)) => Probe::Unreachable(describe(&e)),
        (None, Ok(_)) => Probe::Unreachable("fetch gave no response".into()),
    }
}

/// What a stream reports.
#[cfg_attr(not(feature = "igniter"), allow(dead_code))] // an SSE event's type and id: Igniter's
pub enum StreamEvent {
    Open,
    /// An SSE event: its type (`message` unless named), its id (`lastEventId`) and its data.
    Message {
        kind: String,
        id: String,
        data: String,
        /// `data` as the JS string it arrived as.
        raw: JsValue,
    },
    /// Data of `len` characters, over the cap: dropped before it was copied into wasm.
    Oversized {
        len: u32,
    },
    /// The stream failed or was closed by the server.
    Failed,
}

struct Listener {
    kind: String,
    closure: Closure<dyn FnMut(Event)>,
}

pub struct Stream {
    source: EventSource,
    listeners: Vec<Listener>,
}

impl Stream {
    /// Opens `url`, listening to `message` events and to the named event types in `named`. Data
    /// over `max_frame` bytes of UTF-8 is reported as [`StreamEvent::Oversized`].
    pub fn open(
        url: &str,
        named: &[&str],
        max_frame: u32,
        on_event: impl Fn(StreamEvent) + 'static,
    ) -> Result<Stream, JsValue> {
        let source = EventSource::new(url)?;
        let on_event: Rc<dyn Fn(StreamEvent)> = Rc::new(on_event);
        let mut stream = Stream {
            source,
            listeners: Vec::new(),
        };

        let handler = on_event.clone();
        stream.listen("open", move |_| handler(StreamEvent::Open))?;
        let handler = on_event.clone();
        stream.listen("error", move |_| handler(StreamEvent::Failed))?;
        for kind in core::iter::once("message").chain(named.iter().copied()) {
            let handler = on_event.clone();
            let name = kind.to_owned();
            stream.listen(kind, move |e: Event| {
                let Some(message) = e.dyn_ref::<MessageEvent>() else {
                    return;
                };
                let raw = message.data();
                // Measured on the JS string: oversized data never enters wasm memory.
                let len = match raw.is_string() {
                    true => bytes_over(&raw, max_frame),
                    false => 0,
                };
                if len > 0 {
                    handler(StreamEvent::Oversized { len });
                } else if let Some(data) = raw.as_string() {
                    handler(StreamEvent::Message {
                        kind: name.clone(),
                        id: message.last_event_id(),
                        data,
                        raw,
                    });
                }
            })?;
        }
        Ok(stream)
    }

    fn listen(&mut self, kind: &str, f: impl FnMut(Event) + 'static) -> Result<(), JsValue> {
        let closure = Closure::<dyn FnMut(Event)>::new(f);
        self.source
            .add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref())?;
        self.listeners.push(Listener {
            kind: kind.to_owned(),
            closure,
        });
        Ok(())
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        for l in self.listeners.drain(..) {
            // Removing a registered listener cannot fail in a way worth reporting.
            let _ = self
                .source
                .remove_event_listener_with_callback(&l.kind, l.closure.as_ref().unchecked_ref());
        }
        self.source.close();
    }
}
