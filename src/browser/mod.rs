//! The browser shells (wasm32 only): they move bytes and time between the JS world and the
//! sans-IO [`crate::engine::Session`], and call JS callbacks. No protocol logic lives here.

mod client;
#[cfg(feature = "sse")]
mod http;
mod js;
mod page;
mod socket;
#[cfg(feature = "sse")]
mod stream;
mod timer;

pub use client::LiveClient;
