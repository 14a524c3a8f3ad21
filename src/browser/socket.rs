//! A WebSocket that owns its listeners: dropping it removes them and closes the socket, so no
//! closure outlives the connection it belongs to.

use crate::engine::frame::SUBPROTOCOL;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// What a socket reports.
pub enum SocketEvent {
    Open,
    /// A text frame, as a Rust string for the session and as the JS string it arrived as (so that
    /// the event handed to callbacks is built from it with one `JSON.parse`).
    Text {
        text: String,
        raw: JsValue,
    },
    /// A binary frame: not part of protocol v1.
    Binary,
    /// A text frame of `len` characters, over the cap: dropped before it was copied into wasm.
    Oversized {
        len: u32,
    },
    Closed {
        code: u16,
        reason: String,
    },
}

pub struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    /// Opens a WebSocket offering protocol v1 (with `plain`: no subprotocol, as the seed's simple
    /// protocol; a server that answers none would make the browser fail a handshake offering one).
    /// Errors when the URL is refused by the constructor.
    /// Text frames longer than `max_frame` characters are reported as [`SocketEvent::Oversized`].
    pub fn open(
        url: &str,
        plain: bool,
        max_frame: u32,
        on_event: impl Fn(SocketEvent) + 'static,
    ) -> Result<Socket, JsValue> {
        let ws = if plain {
            WebSocket::new(url)?
        } else {
            WebSocket::new_with_str(url, SUBPROTOCOL)?
        };
        let on_event: Rc<dyn Fn(SocketEvent)> = Rc::new(on_event);

        let handler = on_event.clone();
        let on_open = Closure::<dyn FnMut()>::new(move || handler(SocketEvent::Open));
        let handler = on_event.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let raw = e.data();
            // The length is read on the JS string: an oversized frame never enters wasm memory.
            match raw
                .dyn_ref::<js_sys::JsString>()
                .map(js_sys::JsString::length)
            {
                Some(len) if len > max_frame => handler(SocketEvent::Oversized { len }),
                Some(_) => match raw.as_string() {
                    Some(text) => handler(SocketEvent::Text { text, raw }),
                    None => handler(SocketEvent::Binary),
                },
                None => handler(SocketEvent::Binary),
            }
        });
        let handler = on_event;
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            handler(SocketEvent::Closed {
                code: e.code(),
                reason: e.reason(),
            })
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    pub fn send(&self, text: &str) -> Result<(), JsValue> {
        self.ws.send_with_str(text)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        if self.ws.ready_state() <= WebSocket::OPEN {
            // Closing an already-closing socket is a no-op; the result carries nothing to act on.
            let _ = self.ws.close_with_code(1000);
        }
    }
}
