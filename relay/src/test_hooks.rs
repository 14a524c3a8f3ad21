//! Fault injection for the tests of the built binary, off unless its variable is set when the
//! relay starts. Not configuration: nothing here is a flag, and an operator has no reason to set
//! these.
//!
//! - `LIVE_RELAY_TEST_PANIC_CHANNEL=<name>`: a WebSocket subscribe to `<name>` panics inside that
//!   connection's task (the server profile's `panic = "unwind"` must keep the process and every
//!   other connection serving: relay/tests/panics.rs).
//! - `LIVE_RELAY_TEST_PG_STALL_BEFORE_COMMIT=1`: the PostgreSQL feed, having published a batch of
//!   outbox rows, prints `live-relay test hook: stalled before COMMIT` on stderr and waits forever
//!   instead of committing (the test then kills the relay: relay/tests/postgres_faults.rs).

use std::sync::OnceLock;

/// Whether a subscribe to `channel` must panic (see the module doc).
pub fn panics_on(channel: &str) -> bool {
    static CHANNEL: OnceLock<Option<String>> = OnceLock::new();
    CHANNEL
        .get_or_init(|| std::env::var("LIVE_RELAY_TEST_PANIC_CHANNEL").ok())
        .as_deref()
        == Some(channel)
}

/// Stalls the PostgreSQL feed between a batch's publish and its COMMIT (see the module doc).
pub async fn stall_before_commit(rows: usize) {
    static STALL: OnceLock<bool> = OnceLock::new();
    if *STALL.get_or_init(|| std::env::var_os("LIVE_RELAY_TEST_PG_STALL_BEFORE_COMMIT").is_some()) {
        eprintln!("live-relay test hook: stalled before COMMIT ({rows} rows published)");
        std::future::pending::<()>().await;
    }
}
