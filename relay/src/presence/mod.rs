//! # Presence (issue 26, in progress)
//!
//! Who else is on a channel ("Alice is editing post 3"), beside the event stream: no `seq`, no
//! history. [`set`] is one channel's set, without I/O: joins and resumes, updates, explicit
//! leaves, the grace period after a socket ends, the sweep, the limits. The wire frames, the
//! in-process and Redis brokers' sets and the client come next (docs/PROTOCOL.md will describe the
//! frames once the relay serves them).

pub mod set;
