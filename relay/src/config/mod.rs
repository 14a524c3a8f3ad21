//! The relay's settings: command-line flags, each also readable from a `LIVE_RELAY_*` variable.

use clap::builder::{BoolishValueParser, RangedU64ValueParser};
use clap::Parser;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use wasm_live_provider::engine::history::HistoryLimits;

pub const DEFAULT_PORT: u16 = 8787;
pub const DEFAULT_PING_MS: u64 = 25_000;
pub const DEFAULT_MAX_FRAME_BYTES: usize = 65_536;
pub const DEFAULT_MAX_CHANNELS: usize = 1000;
pub const DEFAULT_MAX_CHANNEL_LEN: usize = 256;
pub const DEFAULT_OUTBOUND_QUEUE: usize = 1024;
pub const DEFAULT_HISTORY_SIZE: usize = 1000;
pub const DEFAULT_HISTORY_TTL_MS: u64 = 300_000;
pub const DEFAULT_PUBLISH_KEY_TTL_MS: u64 = 300_000;

/// The relay server of wasm-live-provider: protocol v1 over WebSocket (`GET /ws`) and
/// Server-Sent Events (`GET /sse`), `POST /publish`, `POST /revalidate`, `GET /healthz`,
/// `GET /stats/channels`, optionally a static directory at `/` and, with `--demo`, an in-memory
/// REST API at `/api`.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "live-relay", version, about)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "LIVE_RELAY_ADDR", default_value_t = SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)))]
    pub addr: SocketAddr,

    /// Interval of the relay's `ping` frames, in milliseconds. A WebSocket connection silent for
    /// two intervals is closed (an SSE stream expects nothing back).
    #[arg(long, env = "LIVE_RELAY_PING_MS", default_value_t = DEFAULT_PING_MS,
          value_parser = RangedU64ValueParser::<u64>::new().range(1..=86_400_000))]
    pub ping_ms: u64,

    /// Largest accepted WebSocket frame or `POST /publish` / `POST /revalidate` body, in bytes.
    #[arg(long, env = "LIVE_RELAY_MAX_FRAME_BYTES", default_value_t = DEFAULT_MAX_FRAME_BYTES,
          value_parser = RangedU64ValueParser::<usize>::new().range(64..=(1 << 30)))]
    pub max_frame_bytes: usize,

    /// Most channels one connection may subscribe to.
    #[arg(long, env = "LIVE_RELAY_MAX_CHANNELS", default_value_t = DEFAULT_MAX_CHANNELS,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_channels: usize,

    /// Longest channel name, in bytes.
    #[arg(long, env = "LIVE_RELAY_MAX_CHANNEL_LEN", default_value_t = DEFAULT_MAX_CHANNEL_LEN,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_channel_len: usize,

    /// Frames queued for one connection (WebSocket or SSE) before it counts as a slow consumer and
    /// is closed.
    #[arg(long, env = "LIVE_RELAY_OUTBOUND_QUEUE", default_value_t = DEFAULT_OUTBOUND_QUEUE,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=(1 << 20)))]
    pub outbound_queue: usize,

    /// Events kept per channel, so that a client coming back can be sent what it missed
    /// (0 keeps none: every reconnecting client is told to refetch). A replay must fit in the
    /// outbound queue, or the client is closed as a slow consumer.
    #[arg(long, env = "LIVE_RELAY_HISTORY_SIZE", default_value_t = DEFAULT_HISTORY_SIZE,
          value_parser = RangedU64ValueParser::<usize>::new().range(0..=(1 << 20)))]
    pub history_size: usize,

    /// Kept events older than this many milliseconds are forgotten.
    #[arg(long, env = "LIVE_RELAY_HISTORY_TTL_MS", default_value_t = DEFAULT_HISTORY_TTL_MS,
          value_parser = RangedU64ValueParser::<u64>::new().range(0..=(30 * 86_400_000)))]
    pub history_ttl_ms: u64,

    /// How long the `key` of a publish is remembered, in milliseconds: a publish resent with the
    /// same key within this time is acknowledged again and not published twice.
    #[arg(long, env = "LIVE_RELAY_PUBLISH_KEY_TTL_MS", default_value_t = DEFAULT_PUBLISH_KEY_TTL_MS,
          value_parser = RangedU64ValueParser::<u64>::new().range(0..=(30 * 86_400_000)))]
    pub publish_key_ttl_ms: u64,

    /// Serve this directory's files at `/` (index.html for directories).
    #[arg(long, env = "LIVE_RELAY_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,

    /// Demo mode: serve an in-memory REST API at `/api` (the json-server conventions of
    /// `@refinedev/simple-rest`), seeded with `posts` and `categories`, that publishes every change
    /// on `resources/<resource>`. The data lives in memory only and is lost when the relay stops.
    #[arg(long, env = "LIVE_RELAY_DEMO", value_parser = BoolishValueParser::new())]
    pub demo: bool,
}

impl Config {
    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_ms)
    }

    /// How much history each channel keeps.
    pub fn history_limits(&self) -> HistoryLimits {
        HistoryLimits {
            max_events: self.history_size,
            max_age_ms: self.history_ttl_ms,
        }
    }
}

impl Default for Config {
    /// The same values as the flags' defaults, without reading the environment.
    fn default() -> Self {
        Config {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            ping_ms: DEFAULT_PING_MS,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_channels: DEFAULT_MAX_CHANNELS,
            max_channel_len: DEFAULT_MAX_CHANNEL_LEN,
            outbound_queue: DEFAULT_OUTBOUND_QUEUE,
            history_size: DEFAULT_HISTORY_SIZE,
            history_ttl_ms: DEFAULT_HISTORY_TTL_MS,
            publish_key_ttl_ms: DEFAULT_PUBLISH_KEY_TTL_MS,
            static_dir: None,
            demo: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_flags() {
        let parsed = Config::try_parse_from(["live-relay"]);
        // The environment of the test run may set LIVE_RELAY_*; only compare when it does not.
        if std::env::vars().all(|(k, _)| !k.starts_with("LIVE_RELAY_")) {
            assert_eq!(parsed.expect("defaults parse"), Config::default());
        }
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Config::try_parse_from(["live-relay", "--ping-ms", "0"]).is_err());
        assert!(Config::try_parse_from(["live-relay", "--addr", "nowhere"]).is_err());
        assert!(Config::try_parse_from(["live-relay", "--outbound-queue", "-1"]).is_err());
        let c =
            Config::try_parse_from(["live-relay", "--addr", "127.0.0.1:0", "--max-channels", "3"])
                .expect("valid flags");
        assert_eq!((c.addr.port(), c.max_channels), (0, 3));
        let c = Config::try_parse_from(["live-relay", "--history-size", "0"]).expect("no history");
        assert_eq!(c.history_limits().max_events, 0);
        assert!(Config::try_parse_from(["live-relay", "--history-ttl-ms", "-5"]).is_err());
    }

    #[test]
    fn demo_is_a_plain_flag() {
        let c = Config::try_parse_from(["live-relay", "--demo"]).expect("--demo");
        assert!(c.demo);
        assert!(Config::try_parse_from(["live-relay", "--demo", "yes"]).is_err());
        if std::env::var_os("LIVE_RELAY_DEMO").is_none() {
            let c = Config::try_parse_from(["live-relay"]).expect("no flags");
            assert!(!c.demo);
        }
    }
}
