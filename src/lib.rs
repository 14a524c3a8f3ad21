//! # wasm-live-provider
//!
//! Live data for Refine and Ginjou apps. The crate has two halves:
//!
//! - [`engine`]: a sans-IO core in plain Rust — the event model, the filter, the subscription
//!   registry, the wire protocol and the connection [`engine::Session`]. It never touches a socket
//!   or a clock, builds natively and is unit-tested with `cargo test`. The relay server reuses its
//!   wire types.
//! - `browser` (wasm32 only): thin shells that move bytes between a WebSocket and the session,
//!   arm timers, and call JS callbacks. This is the `#[wasm_bindgen]` surface.

pub mod engine;

#[cfg(target_arch = "wasm32")]
mod browser;

#[cfg(target_arch = "wasm32")]
pub use browser::LiveClient;
