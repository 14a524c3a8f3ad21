//! The event model: what travels on a channel.

use crate::prelude::*;
pub use live_protocol::ids::{number_to_id, payload_ids, IdsError, RecordId};

/// One event delivered on a channel. The payload and meta stay raw JSON text: the engine only
/// reads what routing needs (`payload.ids`), and the browser shell turns the text into a JS
/// object once per event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub channel: String,
    /// Refine's `type` (Ginjou's `action`): "created", "updated", "deleted" or any string.
    pub kind: String,
    /// Per-channel sequence number given by the relay.
    pub seq: u64,
    /// Raw JSON text of the payload (an object for Refine events).
    pub payload: String,
    /// Milliseconds since the Unix epoch; NaN when the relay's was not a time JS can represent
    /// (the shell puts the receipt time instead).
    pub date: f64,
    /// Raw JSON text of `meta`, when present (always an object: any other meta is dropped).
    pub meta: Option<String>,
    /// `payload.ids` as strings; `None` when the payload carries no ids.
    pub ids: Option<Vec<RecordId>>,
}

/// What routing needs of an `event` frame: where it belongs, its place in the channel, and what
/// the filters look at. The payload itself never enters the engine on this path
/// ([`Session::handle_event`](super::Session::handle_event)).
#[derive(Debug, Clone, PartialEq)]
pub struct EventKeys<'a> {
    pub channel: &'a str,
    pub seq: u64,
    /// The event's `type`.
    pub kind: &'a str,
    /// `payload.ids` as strings ([`number_to_id`] for numbers); `None` when the payload has none.
    pub ids: Option<Vec<RecordId>>,
}
