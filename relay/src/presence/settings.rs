//! Presence's settings, from the `--presence*` flags.

use super::set::Limits;
use crate::config::Config;

/// The window `--presence-max-updates` counts in.
pub const UPDATE_WINDOW_MS: u64 = 10_000;
/// How often members whose grace period ended are swept (and full sets' counts sent).
pub const TICK_MS: u64 = 250;
/// The shortest time between two `stats` frames of one channel.
pub const STATS_EVERY_MS: u64 = 1_000;
/// Presence frames one connection may send at once, and then per second (any action): room for a
/// reconnect's joins on `--presence-max-per-connection` channels and quick navigation, not for a
/// client churning watches (each one a snapshot, and on a cluster a Redis subscription).
pub const FRAMES_BURST: u32 = 32;
pub const FRAMES_PER_SECOND: u32 = 8;
/// The feature `hello` names when presence is on.
pub const FEATURE: &str = "presence";

/// What presence allows (see docs/PROTOCOL.md, *Presence*, and docs/OPERATIONS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `--presence`: off, `hello` names no feature and presence frames are `bad_frame`.
    pub enabled: bool,
    /// The limits of each channel's set (members, data size and rate, grace period).
    pub limits: Limits,
    /// `--presence-max-per-connection`: channels one connection may be in or watch.
    pub max_per_connection: usize,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Settings {
            enabled: config.presence,
            limits: Limits {
                max_members: config.presence_max_members,
                max_data_bytes: config.presence_max_data_bytes,
                max_updates: config.presence_max_updates,
                update_window_ms: UPDATE_WINDOW_MS,
                grace_ms: config.presence_grace_ms,
            },
            max_per_connection: config.presence_max_per_connection,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_config(&Config::default())
    }
}
