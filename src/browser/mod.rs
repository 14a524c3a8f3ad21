//! The browser shells (wasm32 only): they move bytes and time between the JS world and the
//! sans-IO [`crate::engine::Session`], and call JS callbacks. The decisions are the engine's: the
//! one piece of the protocol here is `frame_object`, which reads a frame's fields from the object
//! `JSON.parse` built (the default wasm carries no JSON text reader) and hands them to the
//! engine's `frame::decode_fields`, the checks the text reader ends in too (the two readers are
//! compared on generated frames in `tests/browser.rs`). The JS that runs per frame is
//! `pkg-template/frames.js` (and `stream.js`), real files with their own tests, bound in `js`.

mod client;
mod frame_object;
#[cfg(feature = "sse")]
mod http;
mod js;
mod page;
mod socket;
#[cfg(feature = "sse")]
mod stream;
mod timer;

pub use client::LiveClient;
pub use frame_object::decoded_both_ways;
