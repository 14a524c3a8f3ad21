//! # wasm-live-provider
//!
//! Live data for Refine and Ginjou apps. The crate has two halves:
//!
//! - [`engine`]: a sans-IO core in plain Rust — the event model, the filter, the subscription
//!   registry and the connection [`engine::Session`]. It never touches a socket or a clock, builds
//!   natively and is unit-tested with `cargo test`. It speaks the wire protocol of the
//!   `live-protocol` crate (`protocol/`, re-exported as `engine::frame`, `engine::json` and
//!   `engine::text`), which the relay server shares.
//! - `browser` (wasm32 only): thin shells that move bytes between a WebSocket and the session,
//!   arm timers, and call JS callbacks. This is the `#[wasm_bindgen]` surface.
//!
//! The default wasm build is `no_std` (`alloc` only): a panic aborts without formatting its
//! message, so no `core::fmt` machinery is linked for it. Everything else, and every native build,
//! links std (the `std` feature, which `serde` and the `full` build turn on).

#![cfg_attr(all(target_arch = "wasm32", not(feature = "std"), not(test)), no_std)]

extern crate alloc;

/// What std's prelude gives every module and `alloc` does not: each module that needs them says
/// `use crate::prelude::*`, so the crate builds with and without std.
#[allow(unused_imports)]
mod prelude {
    pub use live_protocol::prelude::*;
}

/// Builds a message from pieces without `core::fmt` (the `live-protocol` crate's).
pub use live_protocol::cat;

#[cfg(all(target_arch = "wasm32", not(feature = "std"), not(test)))]
mod no_std;

pub mod engine;

#[cfg(target_arch = "wasm32")]
mod browser;

#[cfg(target_arch = "wasm32")]
pub use browser::LiveClient;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub use browser::decoded_both_ways;
