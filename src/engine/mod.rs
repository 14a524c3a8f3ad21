//! The sans-IO core: everything that can be wrong lives here and is tested natively.
//!
//! Layers, each importing only from those below it (checked by `layers.rs`'s test): `time`, `hash`,
//! `backoff`; `sort`, `event`, `code`, `relays`, `limiter`, `limits`; `filter`, `http`; `registry`; `coalesce`,
//! `simple`; `session`; `igniter` (which drives a session); `options` (what a client's options choose).

pub mod backoff;
pub mod coalesce;
pub mod code;
pub mod event;
pub mod filter;
pub mod hash;
#[cfg(feature = "sse")]
pub mod http;
#[cfg(feature = "igniter")]
pub mod igniter;
pub mod limiter;
pub mod limits;
pub mod options;
pub mod registry;
pub mod relays;
pub mod session;
#[cfg(feature = "simple")]
pub mod simple;
pub mod sort;
pub mod time;

/// The wire protocol, shared with the relay: the `live-protocol` crate (`protocol/`).
pub use live_protocol::{frame, json, text};

pub use backoff::Backoff;
pub use code::Code;
pub use event::{number_to_id, payload_ids, Event, EventKeys, RecordId};
pub use filter::{Filter, TypeFilter};
pub use registry::{Registry, SubId};
pub use relays::{Relay, Relays};
pub use session::{
    ChannelStatus, ConnectionState, Output, PublishError, PublishId, Session, SessionConfig,
    SessionStats,
};

#[cfg(all(test, not(target_arch = "wasm32")))]
mod layers;
