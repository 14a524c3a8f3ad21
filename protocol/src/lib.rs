//! # live-protocol
//!
//! Protocol v1 of wasm-live-provider, shared by the client crate (compiled to WebAssembly) and
//! the relay: the frames and their encoders and decoders ([`frame`]), the small JSON reader and
//! writer the client uses instead of serde ([`json`]), the record ids of `payload.ids`
//! ([`ids`]), and messages built without `core::fmt` ([`text`], [`cat!`]). `docs/PROTOCOL.md`
//! describes the wire.
//!
//! The client reads server frames and writes client frames by hand, so its wasm carries no serde.
//! The relay's side (reading client frames, writing server frames) uses serde: the `serde`
//! feature. The crate's tests check each side against the other.
//!
//! The crate is `no_std` (`alloc` only) unless its `std` feature, or a test build, links std:
//! the client's default wasm links no std.

#![cfg_attr(not(any(test, feature = "std")), no_std)]

extern crate alloc;

/// What std's prelude gives every module and `alloc` does not: each module that needs them says
/// `use crate::prelude::*`, so that the crate builds with and without std. The client crate
/// uses it too.
#[doc(hidden)]
#[allow(unused_imports)]
pub mod prelude {
    pub use alloc::borrow::ToOwned;
    pub use alloc::boxed::Box;
    pub use alloc::format;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec;
    pub use alloc::vec::Vec;
}

pub mod frame;
pub mod ids;
pub mod json;
pub mod text;
