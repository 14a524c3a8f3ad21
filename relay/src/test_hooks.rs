//! Fault injection for the tests of the built binary, off unless its variable is set when the
//! relay starts. Not configuration: nothing here is a flag, and an operator has no reason to set
//! these.
//!
//! - `LIVE_RELAY_TEST_PANIC_CHANNEL=<name>`: a WebSocket subscribe to `<name>` panics inside that
//!   connection's task (the server profile's `panic = "unwind"` must keep the process and every
//!   other connection serving: relay/tests/panics.rs).
//! - `LIVE_RELAY_TEST_PG_STALL_BEFORE_COMMIT=<file>`: the PostgreSQL feed, having published a
//!   batch of outbox rows, writes the number of rows to `<file>` and waits forever instead of
//!   committing (the test then kills the relay: relay/tests/postgres_faults.rs).

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
    static FILE: OnceLock<Option<std::ffi::OsString>> = OnceLock::new();
    if let Some(file) =
        FILE.get_or_init(|| std::env::var_os("LIVE_RELAY_TEST_PG_STALL_BEFORE_COMMIT"))
    {
        if let Err(e) = std::fs::write(file, rows.to_string()) {
            eprintln!("live-relay test hook: cannot write {file:?}: {e}");
        }
        std::future::pending::<()>().await;
    }
}
