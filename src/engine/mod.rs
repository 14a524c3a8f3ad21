//! The sans-IO core: everything that can be wrong lives here and is tested natively.

pub mod backoff;
pub mod coalesce;
pub mod event;
pub mod filter;
pub mod frame;
pub mod hash;
#[cfg(feature = "igniter")]
pub mod igniter;
pub mod json;
pub mod limiter;
pub mod registry;
pub mod relays;
pub mod session;
#[cfg(feature = "simple")]
pub mod simple;
pub mod text;

pub use backoff::Backoff;
pub use event::{payload_ids, Event, RecordId};
pub use filter::{Filter, TypeFilter};
pub use registry::{Registry, SubId};
pub use relays::{Relay, Relays, RelaysError, Urls};
pub use session::{
    ChannelStatus, ConnectionState, Output, PublishError, PublishId, Session, SessionConfig,
    SessionStats,
};
