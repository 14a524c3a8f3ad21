//! A WebSocket that owns its listeners: dropping it removes them and closes the socket, so no
//! closure outlives the connection it belongs to.
//!
//! Frames are parsed in JS, once (`frameListener` in [`super::js`]): an `event` frame reaches the
//! shell as its routing keys and the parsed object ([`FrameEvent`]), and the shell may hand the
//! delivery back to JS, which calls the callbacks with no further trip through wasm. Every other
//! frame reaches it as the parsed object ([`SocketEvent::Frame`]), never as text: only a plain
//! socket (the simple protocol) reports its frames as text, for their translator.

use super::js::frame_listener;
use crate::engine::frame::SUBPROTOCOL;
use crate::prelude::*;
use alloc::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, WebSocket};

/// What a socket reports.
pub enum SocketEvent {
    Open,
    /// A frame other than the `event` frames of [`FrameEvent`], as the value `JSON.parse` made of
    /// it.
    Frame(JsValue),
    /// A text frame that is not JSON: why, as `JSON.parse` said it.
    NotJson(String),
    /// A text frame of a plain socket, as a Rust string for its translator and as the JS string
    /// it arrived as.
    #[cfg(feature = "simple")]
    Text {
        text: String,
        raw: JsValue,
    },
    /// A binary frame: not part of protocol v1.
    Binary,
    /// A text frame of `len` bytes of UTF-8, over the cap: dropped before it was copied into wasm.
    Oversized {
        len: u32,
    },
    Closed {
        code: u16,
        reason: String,
    },
}

/// An `event` frame, parsed in JS, that the engine routes by its keys alone
/// ([`Session::handle_event`](crate::engine::Session::handle_event)).
pub struct FrameEvent {
    pub channel: String,
    pub kind: String,
    pub seq: u64,
    /// `payload.ids`: an array of strings and safe integers, or `undefined`.
    pub ids: JsValue,
    /// The parsed frame, from which the app's event is built.
    pub frame: JsValue,
    /// The message event's `timeStamp` (`undefined`, so NaN, when it has none).
    pub stamp: f64,
}

/// Where a socket sends what it receives.
pub struct Handlers<E, F> {
    /// Everything but the `event` frames of [`FrameEvent`].
    pub on_event: E,
    /// An `event` frame; returns the subscriptions whose callbacks JS must call with it now (a
    /// sub id, a `Uint32Array` of them, or `undefined` when the shell has done all there is to do).
    pub on_frame_event: F,
    /// The callbacks by sub id (a JS `Map`), read by JS when it delivers.
    pub callbacks: JsValue,
    /// Called with what a callback called by JS threw.
    pub on_throw: Rc<dyn Fn(JsValue)>,
}

/// What `frameListener` calls with an `event` frame: channel, type, seq, ids, the parsed frame and
/// the message event's `timeStamp`.
type FrameEventFn = dyn FnMut(String, String, f64, JsValue, JsValue, f64) -> JsValue;

pub struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_text: Closure<dyn FnMut(JsValue, u32)>,
    _on_frame: Closure<dyn FnMut(JsValue, Option<String>)>,
    _on_event: Closure<FrameEventFn>,
    _on_throw: Closure<dyn FnMut(JsValue)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    /// Opens a WebSocket offering protocol v1 (with `plain`: no subprotocol, as the seed's simple
    /// protocol; a server that answers none would make the browser fail a handshake offering one,
    /// and every frame of such a socket is reported as text, for its translator).
    /// Errors when the URL is refused by the constructor.
    /// Text frames over `max_frame` bytes of UTF-8 are reported as [`SocketEvent::Oversized`].
    pub fn open<E, F>(
        url: &str,
        plain: bool,
        max_frame: u32,
        handlers: Handlers<E, F>,
    ) -> Result<Socket, JsValue>
    where
        E: Fn(SocketEvent) + 'static,
        F: Fn(FrameEvent) -> JsValue + 'static,
    {
        let ws = if plain {
            WebSocket::new(url)?
        } else {
            WebSocket::new_with_str(url, SUBPROTOCOL)?
        };
        let Handlers {
            on_event,
            on_frame_event,
            callbacks,
            on_throw,
        } = handlers;
        let on_event: Rc<dyn Fn(SocketEvent)> = Rc::new(on_event);
        let on_open = open_listener(on_event.clone());
        let on_text = text_listener(on_event.clone());
        let on_frame = frame_listener_of(on_event.clone());
        let on_frame_event = event_listener(on_frame_event);
        let on_throw = Closure::<dyn FnMut(JsValue)>::new(move |thrown| on_throw(thrown));
        let on_close = close_listener(on_event);
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        // A plain socket speaks another protocol: every frame goes to its translator as text.
        let frame_events = if plain {
            &JsValue::UNDEFINED
        } else {
            on_frame_event.as_ref()
        };
        ws.set_onmessage(Some(&frame_listener(
            max_frame,
            on_text.as_ref(),
            on_frame.as_ref(),
            frame_events,
            &callbacks,
            on_throw.as_ref(),
        )));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            _on_open: on_open,
            _on_text: on_text,
            _on_frame: on_frame,
            _on_event: on_frame_event,
            _on_throw: on_throw,
            _on_close: on_close,
        })
    }

    pub fn send(&self, text: &str) -> Result<(), JsValue> {
        self.ws.send_with_str(text)
    }
}

/// The socket's `onopen`.
#[inline(always)]
fn open_listener(handler: Rc<dyn Fn(SocketEvent)>) -> Closure<dyn FnMut()> {
    Closure::<dyn FnMut()>::new(move || handler(SocketEvent::Open))
}

/// `frameListener`'s `onText`: a frame that never enters the decoder (too large, binary) or, on a
/// plain socket, a text frame for its translator.
#[inline(always)]
fn text_listener(handler: Rc<dyn Fn(SocketEvent)>) -> Closure<dyn FnMut(JsValue, u32)> {
    Closure::<dyn FnMut(JsValue, u32)>::new(move |raw: JsValue, len: u32| {
        if len > 0 {
            return handler(SocketEvent::Oversized { len });
        }
        match raw.as_string() {
            #[cfg(feature = "simple")]
            Some(text) => handler(SocketEvent::Text { text, raw }),
            // Without `simple` no socket is plain: text frames all go to `on_frame`.
            _ => handler(SocketEvent::Binary),
        }
    })
}

/// `frameListener`'s `onFrame`: a parsed frame other than a routable `event`, or why the text was
/// not JSON.
#[inline(always)]
fn frame_listener_of(
    handler: Rc<dyn Fn(SocketEvent)>,
) -> Closure<dyn FnMut(JsValue, Option<String>)> {
    Closure::<dyn FnMut(JsValue, Option<String>)>::new(
        move |parsed: JsValue, not_json: Option<String>| match not_json {
            Some(why) => handler(SocketEvent::NotJson(why)),
            None => handler(SocketEvent::Frame(parsed)),
        },
    )
}

/// `frameListener`'s `onEvent`: an `event` frame routed by its keys.
#[inline(always)]
fn event_listener<F>(on_frame_event: F) -> Closure<FrameEventFn>
where
    F: Fn(FrameEvent) -> JsValue + 'static,
{
    Closure::<FrameEventFn>::new(move |channel, kind, seq: f64, ids, frame, stamp| {
        on_frame_event(FrameEvent {
            channel,
            kind,
            // A safe integer from 0 (checked in JS).
            seq: seq as u64,
            ids,
            frame,
            stamp,
        })
    })
}

/// The socket's `onclose`.
#[inline(always)]
fn close_listener(handler: Rc<dyn Fn(SocketEvent)>) -> Closure<dyn FnMut(CloseEvent)> {
    Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
        handler(SocketEvent::Closed {
            code: e.code(),
            reason: e.reason(),
        })
    })
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
