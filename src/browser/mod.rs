//! The browser shells (wasm32 only): they move bytes and time between the JS world and the
//! sans-IO [`crate::engine::Session`], and call JS callbacks. No protocol logic lives here.

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
