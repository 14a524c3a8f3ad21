//! An `EventSource` (Server-Sent Events) that owns its listeners: dropping it removes them and
//! closes the stream. Reconnection is the session's job, so any error closes the stream for good.

use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventSource, MessageEvent};

/// What a stream reports.
pub enum StreamEvent {
    Open,
    /// An SSE event: its type (`message` unless named) and its data.
    Message {
        kind: String,
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
    /// longer than `max_frame` characters is reported as [`StreamEvent::Oversized`].
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
        for kind in std::iter::once("message").chain(named.iter().copied()) {
            let handler = on_event.clone();
            let name = kind.to_owned();
            stream.listen(kind, move |e: Event| {
                let Some(raw) = e.dyn_ref::<MessageEvent>().map(MessageEvent::data) else {
                    return;
                };
                // The length is read on the JS string: oversized data never enters wasm memory.
                let len = raw
                    .dyn_ref::<js_sys::JsString>()
                    .map(js_sys::JsString::length);
                if let Some(len) = len.filter(|len| *len > max_frame) {
                    handler(StreamEvent::Oversized { len });
                } else if let Some(data) = raw.as_string() {
                    handler(StreamEvent::Message {
                        kind: name.clone(),
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
