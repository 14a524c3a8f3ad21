//! The protocol-v1 frames an Igniter.js stream is translated into, owned and already decoded.
//!
//! The shell hands each to the session as it is ([`TranslatedFrame::frame`] to
//! `Session::handle_decoded`) and builds the app's event from an event's parts: nothing is written
//! as text only to be read again. [`TranslatedFrame::to_text`] writes one as the relay would, for
//! the tests and the fuzz target, which check that reading that text gives the same frame.

use super::NO_PING_MS;
use crate::engine::frame::{
    encode_event, encode_hello, encode_subscribed, ChannelEntry, EventFrame, ServerFrame,
    PROTOCOL_VERSION,
};
use alloc::borrow::Cow;
use serde_json::value::RawValue;

/// A frame of protocol v1, from an Igniter.js stream.
#[derive(Debug, Clone)]
pub enum TranslatedFrame {
    /// `hello` of a new epoch, with no ping deadline ([`NO_PING_MS`]).
    Hello {
        epoch: String,
    },
    /// `subscribed`: each channel's position in the epoch, and whether it continues (`recovered`).
    Subscribed {
        channels: Vec<ChannelEntry<'static>>,
    },
    Event(TranslatedEvent),
}

/// An `event` frame (never with `meta`).
#[derive(Debug, Clone)]
pub struct TranslatedEvent {
    pub channel: String,
    pub seq: u64,
    pub kind: String,
    pub payload: Box<RawValue>,
    /// Milliseconds since the Unix epoch (Igniter's timestamp; 0 without one).
    pub date: f64,
}

impl TranslatedFrame {
    /// The frame as the session reads it.
    pub fn frame(&self) -> ServerFrame<'_> {
        match self {
            TranslatedFrame::Hello { epoch } => ServerFrame::Hello {
                version: PROTOCOL_VERSION,
                epoch: Cow::Borrowed(epoch),
                ping_ms: NO_PING_MS,
                presence: false,
            },
            TranslatedFrame::Subscribed { channels } => ServerFrame::Subscribed {
                channels: channels.clone(),
            },
            TranslatedFrame::Event(e) => ServerFrame::Event(EventFrame {
                channel: Cow::Borrowed(&e.channel),
                seq: e.seq,
                kind: Cow::Borrowed(&e.kind),
                payload: e.payload.get(),
                date: e.date,
                meta: None,
            }),
        }
    }

    /// The frame written as the relay writes it.
    pub fn to_text(&self) -> String {
        match self {
            TranslatedFrame::Hello { epoch } => encode_hello(epoch, NO_PING_MS),
            TranslatedFrame::Subscribed { channels } => encode_subscribed(channels),
            TranslatedFrame::Event(e) => {
                encode_event(&e.channel, e.seq, &e.kind, &e.payload, e.date, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::frame::decode_server;

    /// What the session reads from a translated frame is what it would read from its text.
    #[test]
    fn a_frame_reads_as_its_text_does() {
        let payload = RawValue::from_string(r#"{"ids":[1,"2"],"s":"a\"b\u00e9"}"#.to_owned());
        let frames = [
            TranslatedFrame::Hello {
                epoch: "igniter-3".to_owned(),
            },
            TranslatedFrame::Subscribed {
                channels: vec![ChannelEntry {
                    seq: Some(4),
                    recovered: Some(true),
                    ..ChannelEntry::named("posts \"list\"".to_owned())
                }],
            },
            TranslatedFrame::Event(TranslatedEvent {
                channel: "posts/é".to_owned(),
                seq: 9,
                kind: "up\ndated".to_owned(),
                payload: payload.expect("test JSON"),
                date: 1_735_689_600_123.0,
            }),
        ];
        for f in &frames {
            let text = f.to_text();
            let read = decode_server(&text).expect("a valid frame");
            assert_eq!(format!("{read:?}"), format!("{:?}", f.frame()), "{text}");
        }
    }
}
