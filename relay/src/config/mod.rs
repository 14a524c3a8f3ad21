//! The relay's settings: command-line flags, each also readable from a `LIVE_RELAY_*` variable.

use clap::builder::{BoolishValueParser, RangedU64ValueParser};
use clap::{ArgAction, Parser};

pub mod file;
use crate::history::HistoryLimits;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_PORT: u16 = 8787;
pub const DEFAULT_PING_MS: u64 = 25_000;
pub const DEFAULT_MAX_FRAME_BYTES: usize = 65_536;
pub const DEFAULT_MAX_CHANNELS: usize = 1000;
pub const DEFAULT_MAX_CHANNEL_LEN: usize = 256;
pub const DEFAULT_OUTBOUND_QUEUE: usize = 1024;
pub const DEFAULT_HISTORY_SIZE: usize = 1000;
pub const DEFAULT_HISTORY_TTL_MS: u64 = 300_000;
pub const DEFAULT_PUBLISH_KEY_TTL_MS: u64 = 300_000;
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 5_000;
/// How long a client has to send a request head, and then its body, before the relay gives up.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_PUBLISH_RATE: u32 = 100;
pub const DEFAULT_PUBLISH_BURST: u32 = 200;
pub const DEFAULT_KEY_PUBLISH_RATE: u32 = 1_000;
pub const DEFAULT_KEY_PUBLISH_BURST: u32 = 2_000;
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 1_000;
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;
pub const DEFAULT_REDIS_PREFIX: &str = "wlp";
pub const DEFAULT_POSTGRES_PARTITIONS: u16 = 1;
pub const DEFAULT_POSTGRES_POLL_MS: u64 = 250;
pub const DEFAULT_PRESENCE_GRACE_MS: u64 = 5_000;
pub const DEFAULT_PRESENCE_MAX_MEMBERS: usize = 100;
pub const DEFAULT_PRESENCE_MAX_PER_CONNECTION: usize = 16;
pub const DEFAULT_PRESENCE_MAX_DATA_BYTES: usize = 1024;
pub const DEFAULT_PRESENCE_MAX_UPDATES: u32 = 5;

const HEADING_AUTH: &str = "Authentication";
const HEADING_SERVER: &str = "Server";
const HEADING_LIMITS: &str = "Limits";
const HEADING_HISTORY: &str = "Timing and history";
const HEADING_CLUSTER: &str = "Cluster";
const HEADING_POSTGRES: &str = "Events from PostgreSQL";
const HEADING_PRESENCE: &str = "Presence";

/// The relay server of wasm-live-provider: protocol v1 over WebSocket (`GET /ws`) and
/// Server-Sent Events (`GET /sse`), `POST /publish`, `POST /revalidate`, `GET /healthz`,
/// `GET /metrics`, `GET /stats/channels`, optionally a static directory at `/` and, with `--demo`,
/// an in-memory REST API at `/api`.
///
/// Every flag can also be set by its `LIVE_RELAY_*` variable or in the `--config` file (a flag's
/// name with `_` for `-`, e.g. `history_size = 500`); a flag beats its variable, which beats the
/// file. With no key configured the relay is open, which it allows on a loopback address only.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "live-relay", version, about, long_about = None)]
pub struct Config {
    /// HS256 secret that connection tokens (JWT) are signed with (at least 32 bytes). Turns
    /// authentication on.
    #[arg(long, env = "LIVE_RELAY_JWT_SECRET", hide_env_values = true, help_heading = HEADING_AUTH)]
    pub jwt_secret: Option<String>,

    /// PEM file of the public key tokens are signed with: RSA (RS256) or EC P-256 (ES256). Turns
    /// authentication on.
    #[arg(long, env = "LIVE_RELAY_JWT_PUBLIC_KEY", value_name = "PEM", help_heading = HEADING_AUTH)]
    pub jwt_public_key: Option<PathBuf>,

    /// Refuse tokens whose `aud` is not this.
    #[arg(long, env = "LIVE_RELAY_JWT_AUDIENCE", help_heading = HEADING_AUTH)]
    pub jwt_audience: Option<String>,

    /// Refuse tokens whose `iss` is not this.
    #[arg(long, env = "LIVE_RELAY_JWT_ISSUER", help_heading = HEADING_AUTH)]
    pub jwt_issuer: Option<String>,

    /// API key(s) that backends send as `Authorization: Bearer <key>` to `POST /publish` and
    /// `POST /revalidate` (comma-separated or repeated, to rotate keys; at least 16 characters).
    #[arg(long, env = "LIVE_RELAY_API_KEY", hide_env_values = true, value_delimiter = ',',
          help_heading = HEADING_AUTH)]
    pub api_key: Vec<String>,

    /// Origins whose pages may open WebSocket and SSE connections (comma-separated, e.g.
    /// `https://admin.example.com`); others get 403. Requests without an `Origin` header
    /// (servers, curl) are not affected. Default: any origin.
    #[arg(long, env = "LIVE_RELAY_ALLOWED_ORIGINS", value_delimiter = ',', help_heading = HEADING_AUTH)]
    pub allowed_origins: Vec<String>,

    /// Serve without authentication on a non-loopback address (anyone who reaches the relay may
    /// subscribe to and publish anything).
    #[arg(long, env = "LIVE_RELAY_INSECURE_NO_AUTH", value_parser = BoolishValueParser::new(),
          help_heading = HEADING_AUTH)]
    pub insecure_no_auth: bool,

    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "LIVE_RELAY_ADDR", default_value_t = SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
          help_heading = HEADING_SERVER)]
    pub addr: SocketAddr,

    /// Read settings from this TOML file (keys are the flags' names with `_`).
    #[arg(long, env = "LIVE_RELAY_CONFIG", value_name = "FILE", help_heading = HEADING_SERVER)]
    pub config: Option<PathBuf>,

    /// Serve this directory's files at `/` (index.html for directories).
    #[arg(long, env = "LIVE_RELAY_STATIC_DIR", help_heading = HEADING_SERVER)]
    pub static_dir: Option<PathBuf>,

    /// Demo mode: serve an in-memory REST API at `/api` (the json-server conventions of
    /// `@refinedev/simple-rest`), seeded with `posts` and `categories`, that publishes every change
    /// on `resources/<resource>`, and mint short-lived tokens for a demo user at `GET /demo/token`.
    /// The data lives in memory only and is lost when the relay stops; with `--postgres`, in the
    /// tables `posts` and `categories` of that database instead (created, seeded and watched if
    /// missing), whose triggers publish every change, also one made with `psql`.
    #[arg(long, env = "LIVE_RELAY_DEMO", value_parser = BoolishValueParser::new(), help_heading = HEADING_SERVER)]
    pub demo: bool,

    /// How long the relay waits, after SIGTERM, for connections to close, in milliseconds
    /// (clients are told to reconnect elsewhere at once).
    #[arg(long, env = "LIVE_RELAY_SHUTDOWN_GRACE_MS", default_value_t = DEFAULT_SHUTDOWN_GRACE_MS,
          value_parser = RangedU64ValueParser::<u64>::new().range(0..=600_000), help_heading = HEADING_SERVER)]
    pub shutdown_grace_ms: u64,

    /// How long a client may take to send an HTTP request head (or to start its next request on
    /// a kept-alive connection), and then to send its body and get the answer, in milliseconds.
    /// Slower connections are closed (slowloris), counted as `request_timeout` limit hits.
    #[arg(long, env = "LIVE_RELAY_REQUEST_TIMEOUT_MS", default_value_t = DEFAULT_REQUEST_TIMEOUT_MS,
          value_parser = RangedU64ValueParser::<u64>::new().range(100..=600_000), help_heading = HEADING_SERVER)]
    pub request_timeout_ms: u64,

    /// Publishes per second one WebSocket connection may make (token bucket; 0: no limit).
    #[arg(long, env = "LIVE_RELAY_PUBLISH_RATE", default_value_t = DEFAULT_PUBLISH_RATE, help_heading = HEADING_LIMITS)]
    pub publish_rate: u32,

    /// Publishes one WebSocket connection may make in a burst.
    #[arg(long, env = "LIVE_RELAY_PUBLISH_BURST", default_value_t = DEFAULT_PUBLISH_BURST,
          value_parser = RangedU64ValueParser::<u32>::new().range(1..), help_heading = HEADING_LIMITS)]
    pub publish_burst: u32,

    /// HTTP publishes per second of one API key, one token user, or one token without `sub` (0:
    /// no limit).
    #[arg(long, env = "LIVE_RELAY_KEY_PUBLISH_RATE", default_value_t = DEFAULT_KEY_PUBLISH_RATE, help_heading = HEADING_LIMITS)]
    pub key_publish_rate: u32,

    /// HTTP publishes one API key or user may make in a burst.
    #[arg(long, env = "LIVE_RELAY_KEY_PUBLISH_BURST", default_value_t = DEFAULT_KEY_PUBLISH_BURST,
          value_parser = RangedU64ValueParser::<u32>::new().range(1..), help_heading = HEADING_LIMITS)]
    pub key_publish_burst: u32,

    /// Open WebSocket and SSE connections from one IP address, or one IPv6 /64 (0: no limit).
    /// Behind a proxy every client shares the proxy's address: raise it or set it to 0 there.
    #[arg(long, env = "LIVE_RELAY_MAX_CONNECTIONS_PER_IP", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_IP,
          help_heading = HEADING_LIMITS)]
    pub max_connections_per_ip: usize,

    /// Open WebSocket and SSE connections in all (0: no limit); past it a new one gets `429
    /// too_many_connections`. Keep it under the process's file-descriptor limit (`ulimit -n`).
    #[arg(long, env = "LIVE_RELAY_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS,
          help_heading = HEADING_LIMITS)]
    pub max_connections: usize,

    /// Largest accepted WebSocket frame or `POST /publish` / `POST /revalidate` body, in bytes.
    #[arg(long, env = "LIVE_RELAY_MAX_FRAME_BYTES", default_value_t = DEFAULT_MAX_FRAME_BYTES,
          value_parser = RangedU64ValueParser::<usize>::new().range(64..=(1 << 30)), help_heading = HEADING_LIMITS)]
    pub max_frame_bytes: usize,

    /// Most channels one connection may subscribe to.
    #[arg(long, env = "LIVE_RELAY_MAX_CHANNELS", default_value_t = DEFAULT_MAX_CHANNELS,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..), help_heading = HEADING_LIMITS)]
    pub max_channels: usize,

    /// Longest channel name, in bytes.
    #[arg(long, env = "LIVE_RELAY_MAX_CHANNEL_LEN", default_value_t = DEFAULT_MAX_CHANNEL_LEN,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..), help_heading = HEADING_LIMITS)]
    pub max_channel_len: usize,

    /// Frames queued for one connection (WebSocket or SSE) before it counts as a slow consumer and
    /// is closed.
    #[arg(long, env = "LIVE_RELAY_OUTBOUND_QUEUE", default_value_t = DEFAULT_OUTBOUND_QUEUE,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=(1 << 20)), help_heading = HEADING_LIMITS)]
    pub outbound_queue: usize,

    /// Interval of the relay's `ping` frames, in milliseconds. A WebSocket connection silent for
    /// two intervals is closed (an SSE stream expects nothing back).
    #[arg(long, env = "LIVE_RELAY_PING_MS", default_value_t = DEFAULT_PING_MS,
          value_parser = RangedU64ValueParser::<u64>::new().range(1..=86_400_000), help_heading = HEADING_HISTORY)]
    pub ping_ms: u64,

    /// Events kept per channel, so that a client coming back can be sent what it missed
    /// (0 keeps none: every reconnecting client is told to refetch). A replay must fit in the
    /// outbound queue, or the client is closed as a slow consumer.
    #[arg(long, env = "LIVE_RELAY_HISTORY_SIZE", default_value_t = DEFAULT_HISTORY_SIZE,
          value_parser = RangedU64ValueParser::<usize>::new().range(0..=(1 << 20)), help_heading = HEADING_HISTORY)]
    pub history_size: usize,

    /// Kept events older than this many milliseconds are forgotten.
    #[arg(long, env = "LIVE_RELAY_HISTORY_TTL_MS", default_value_t = DEFAULT_HISTORY_TTL_MS,
          value_parser = RangedU64ValueParser::<u64>::new().range(0..=(30 * 86_400_000)), help_heading = HEADING_HISTORY)]
    pub history_ttl_ms: u64,

    /// How long the `key` of a publish is remembered, in milliseconds: a publish resent with the
    /// same key within this time is acknowledged again and not published twice.
    #[arg(long, env = "LIVE_RELAY_PUBLISH_KEY_TTL_MS", default_value_t = DEFAULT_PUBLISH_KEY_TTL_MS,
          value_parser = RangedU64ValueParser::<u64>::new().range(0..=(30 * 86_400_000)), help_heading = HEADING_HISTORY)]
    pub publish_key_ttl_ms: u64,

    /// Run as one node of a cluster over Redis (`redis://[user:password@]host:port[/db]`,
    /// `rediss://…` for TLS, or `unix:///path/to/redis.sock`): every node on the same Redis
    /// shares the channels' numbering, history and publish keys, so a client can resume on any
    /// node. Without it, one process keeps everything in memory. See docs/SCALING.md.
    #[arg(long, env = "LIVE_RELAY_REDIS_URL", hide_env_values = true, value_name = "URL",
          value_parser = redis_url, help_heading = HEADING_CLUSTER)]
    pub redis: Option<String>,

    /// PEM file of the CA(s) that signed the Redis server's TLS certificate (`rediss://` only):
    /// the certificate is checked against these instead of the public CAs built in.
    #[arg(long, env = "LIVE_RELAY_REDIS_CA", value_name = "PEM", help_heading = HEADING_CLUSTER)]
    pub redis_ca: Option<PathBuf>,

    /// What every Redis key and pub/sub channel of this cluster starts with, so that several
    /// clusters (staging and production, say) can share one Redis.
    #[arg(long, env = "LIVE_RELAY_REDIS_PREFIX", default_value = DEFAULT_REDIS_PREFIX,
          value_parser = redis_prefix, help_heading = HEADING_CLUSTER)]
    pub redis_prefix: String,

    /// Publish the changes of a PostgreSQL database (`postgres://user:password@host:5432/db`):
    /// the relay installs the `live_relay` schema and publishes every row committed to
    /// `live_relay.outbox` (by the triggers of `select live_relay.watch('posts')`, or by the app).
    /// See docs/POSTGRES.md.
    #[arg(long, env = "LIVE_RELAY_POSTGRES_URL", hide_env_values = true, value_name = "URL",
          help_heading = HEADING_POSTGRES)]
    pub postgres: Option<String>,

    /// A direct connection for LISTEN, when --postgres goes through PgBouncer in transaction mode
    /// (where LISTEN does not work).
    #[arg(long, env = "LIVE_RELAY_POSTGRES_LISTEN_URL", hide_env_values = true, value_name = "URL",
          help_heading = HEADING_POSTGRES)]
    pub postgres_listen_url: Option<String>,

    /// Partitions of the outbox, each drained by one relay at a time, in order (a channel's events
    /// always go through one partition). Every relay on the database must use the same number.
    #[arg(long, env = "LIVE_RELAY_POSTGRES_PARTITIONS", default_value_t = DEFAULT_POSTGRES_PARTITIONS,
          value_parser = RangedU64ValueParser::<u16>::new().range(1..=64), help_heading = HEADING_POSTGRES)]
    pub postgres_partitions: u16,

    /// How often each partition is read when no notification came, in milliseconds.
    #[arg(long, env = "LIVE_RELAY_POSTGRES_POLL_MS", default_value_t = DEFAULT_POSTGRES_POLL_MS,
          value_parser = RangedU64ValueParser::<u64>::new().range(10..=60_000), help_heading = HEADING_POSTGRES)]
    pub postgres_poll_ms: u64,

    /// Wake the relay with NOTIFY when outbox rows commit (`--postgres-notify=false` for
    /// write-heavy apps: a NOTIFYing commit takes a database-wide lock; the relay then polls).
    #[arg(long, env = "LIVE_RELAY_POSTGRES_NOTIFY", default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true,
          value_parser = BoolishValueParser::new(), help_heading = HEADING_POSTGRES)]
    pub postgres_notify: bool,

    /// Offer presence over WebSocket (who else is on a channel; docs/PROTOCOL.md, *Presence*):
    /// `hello` says `"features": ["presence"]`. `--presence=false` turns it off: presence frames
    /// are then refused as `bad_frame`.
    #[arg(long, env = "LIVE_RELAY_PRESENCE", default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true,
          value_parser = BoolishValueParser::new(), help_heading = HEADING_PRESENCE)]
    pub presence: bool,

    /// How long a member whose socket ended (closed tab, network loss, ping timeout, relay
    /// restart) stays listed, in milliseconds: a reconnect that joins again with its key within it
    /// resumes it unannounced. An explicit leave is immediate.
    #[arg(long, env = "LIVE_RELAY_PRESENCE_GRACE_MS", default_value_t = DEFAULT_PRESENCE_GRACE_MS,
          value_parser = RangedU64ValueParser::<u64>::new().range(0..=600_000), help_heading = HEADING_PRESENCE)]
    pub presence_grace_ms: u64,

    /// Members one channel's presence may have; a join past it is refused (`presence_full`) and
    /// that connection gets the set's counts (`stats`) instead.
    #[arg(long, env = "LIVE_RELAY_PRESENCE_MAX_MEMBERS", default_value_t = DEFAULT_PRESENCE_MAX_MEMBERS,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=100_000), help_heading = HEADING_PRESENCE)]
    pub presence_max_members: usize,

    /// Channels one connection may be in or watch the presence of (`too_many_channels` past it).
    #[arg(long, env = "LIVE_RELAY_PRESENCE_MAX_PER_CONNECTION", default_value_t = DEFAULT_PRESENCE_MAX_PER_CONNECTION,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=10_000), help_heading = HEADING_PRESENCE)]
    pub presence_max_per_connection: usize,

    /// The longest presence `data` of a member, serialized, in bytes (`too_large` past it).
    #[arg(long, env = "LIVE_RELAY_PRESENCE_MAX_DATA_BYTES", default_value_t = DEFAULT_PRESENCE_MAX_DATA_BYTES,
          value_parser = RangedU64ValueParser::<usize>::new().range(2..=65_536), help_heading = HEADING_PRESENCE)]
    pub presence_max_data_bytes: usize,

    /// Changes of its `data` (a join with new data, an update) one member may make in 10 s
    /// (`rate_limited` past it).
    #[arg(long, env = "LIVE_RELAY_PRESENCE_MAX_UPDATES", default_value_t = DEFAULT_PRESENCE_MAX_UPDATES,
          value_parser = RangedU64ValueParser::<u32>::new().range(1..=10_000), help_heading = HEADING_PRESENCE)]
    pub presence_max_updates: u32,
}

/// A key prefix: 1 to 64 letters, digits, `_`, `-` or `.`.
fn redis_prefix(text: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err("1 to 64 letters, digits, `_`, `-` or `.`".to_owned())
    }
}

/// A `redis://`, `rediss://` (TLS) or `unix://` URL (checked again, fully, when connecting).
fn redis_url(text: &str) -> Result<String, String> {
    let scheme = text.split_once("://").map(|(s, _)| s);
    match scheme {
        Some("redis" | "unix" | "redis+unix") => Ok(text.to_owned()),
        Some("rediss") if text.ends_with("#insecure") => Err(
            "rediss://…#insecure (no check of the server's certificate) is not supported: give \
             the CA that signed it with --redis-ca"
                .to_owned(),
        ),
        Some("rediss") => Ok(text.to_owned()),
        _ => Err("expected a Redis URL such as redis://127.0.0.1:6379".to_owned()),
    }
}

impl Config {
    /// Whether a token key is configured (connections must authenticate).
    pub fn has_token_key(&self) -> bool {
        self.jwt_secret.is_some() || self.jwt_public_key.is_some()
    }

    /// Refuses a configuration that would put an open relay on the network: without a token key,
    /// only a loopback address may be bound, unless `--insecure-no-auth` says otherwise. Also
    /// refuses a `--redis-ca` that is not a readable PEM file of certificates, or that is given
    /// without a `rediss://` URL.
    pub fn check(&self) -> Result<(), String> {
        if !self.addr.ip().is_loopback() && !self.has_token_key() && !self.insecure_no_auth {
            return Err(format!(
                "refusing to serve {} without authentication: give --jwt-secret or \
                 --jwt-public-key (and --api-key for backends), or --insecure-no-auth",
                self.addr
            ));
        }
        if self.demo && !self.addr.ip().is_loopback() {
            return Err(format!(
                "refusing to serve the demo on {}: it mints tokens for anyone and its API is \
                 unauthenticated; bind a loopback address",
                self.addr
            ));
        }
        if self.postgres.is_none() && self.postgres_listen_url.is_some() {
            return Err("--postgres-listen-url is given without --postgres".to_owned());
        }
        crate::broker::redis::tls::check(self.redis.as_deref(), self.redis_ca.as_deref())
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

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
            jwt_secret: None,
            jwt_public_key: None,
            jwt_audience: None,
            jwt_issuer: None,
            api_key: Vec::new(),
            allowed_origins: Vec::new(),
            insecure_no_auth: false,
            config: None,
            shutdown_grace_ms: DEFAULT_SHUTDOWN_GRACE_MS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            publish_rate: DEFAULT_PUBLISH_RATE,
            publish_burst: DEFAULT_PUBLISH_BURST,
            key_publish_rate: DEFAULT_KEY_PUBLISH_RATE,
            key_publish_burst: DEFAULT_KEY_PUBLISH_BURST,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_connections: DEFAULT_MAX_CONNECTIONS,
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
            redis: None,
            redis_ca: None,
            redis_prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            postgres: None,
            postgres_listen_url: None,
            postgres_partitions: DEFAULT_POSTGRES_PARTITIONS,
            postgres_poll_ms: DEFAULT_POSTGRES_POLL_MS,
            postgres_notify: true,
            presence: true,
            presence_grace_ms: DEFAULT_PRESENCE_GRACE_MS,
            presence_max_members: DEFAULT_PRESENCE_MAX_MEMBERS,
            presence_max_per_connection: DEFAULT_PRESENCE_MAX_PER_CONNECTION,
            presence_max_data_bytes: DEFAULT_PRESENCE_MAX_DATA_BYTES,
            presence_max_updates: DEFAULT_PRESENCE_MAX_UPDATES,
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
        let c = Config::try_parse_from(["live-relay", "--redis", "redis://10.0.0.5:6379/2"])
            .expect("a Redis URL");
        assert_eq!(c.redis.as_deref(), Some("redis://10.0.0.5:6379/2"));
        assert_eq!(c.redis_prefix, "wlp");
        let c =
            Config::try_parse_from(["live-relay", "--redis", "rediss://u:p@cache.example:6380"])
                .expect("a TLS URL");
        assert_eq!(c.redis.as_deref(), Some("rediss://u:p@cache.example:6380"));
        for bad in ["10.0.0.5:6379", "http://x", "rediss://x:6380/#insecure"] {
            assert!(
                Config::try_parse_from(["live-relay", "--redis", bad]).is_err(),
                "{bad}"
            );
        }
        for bad in ["", "a b", "a:b", &"x".repeat(65)] {
            let args = ["live-relay", "--redis-prefix", bad];
            assert!(Config::try_parse_from(args).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_redis_ca_needs_a_tls_url_and_a_pem_file() {
        let with = |url: &str, ca: &str| Config {
            redis: Some(url.to_owned()),
            redis_ca: Some(PathBuf::from(ca)),
            ..Config::default()
        };
        let e = with("redis://127.0.0.1:6379", "/nonexistent/ca.pem")
            .check()
            .expect_err("a CA for a plain URL");
        assert!(e.contains("--redis-ca") && e.contains("rediss://"), "{e}");
        let e = with("rediss://127.0.0.1:6380", "/nonexistent/ca.pem")
            .check()
            .expect_err("a missing CA");
        assert!(e.starts_with("--redis-ca /nonexistent/ca.pem: "), "{e}");
        let c = Config {
            redis_ca: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..Config::default()
        };
        assert!(c.check().is_err(), "a CA without --redis");
        let c = Config {
            redis: Some("rediss://127.0.0.1:6380".to_owned()),
            ..Config::default()
        };
        assert_eq!(c.check(), Ok(()), "the public CAs");
    }

    #[test]
    fn presence_flags_parse_and_turn_off_with_equals_false() {
        if std::env::vars().any(|(k, _)| k.starts_with("LIVE_RELAY_PRESENCE")) {
            return;
        }
        let c = Config::try_parse_from(["live-relay"]).expect("defaults");
        assert!(c.presence);
        assert_eq!(
            (
                c.presence_grace_ms,
                c.presence_max_members,
                c.presence_max_per_connection
            ),
            (5_000, 100, 16)
        );
        assert_eq!(
            (c.presence_max_data_bytes, c.presence_max_updates),
            (1024, 5)
        );
        let c = Config::try_parse_from([
            "live-relay",
            "--presence=false",
            "--presence-grace-ms",
            "600",
        ])
        .expect("presence off");
        assert!(!c.presence);
        assert_eq!(c.presence_grace_ms, 600);
        assert!(Config::try_parse_from(["live-relay", "--presence-max-members", "0"]).is_err());
        assert!(Config::try_parse_from(["live-relay", "--presence-max-updates", "x"]).is_err());
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
