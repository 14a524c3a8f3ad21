//! # live-relay
//!
//! The relay server of wasm-live-provider: protocol v1 (`docs/PROTOCOL.md`) over WebSocket at
//! `GET /ws` and over Server-Sent Events at `GET /sse` (see [`sse`]), `POST /publish`,
//! `POST /revalidate`, `GET /healthz`, `GET /stats/channels`, optionally a static directory at `/`
//! and, in demo mode (`--demo`), an in-memory REST API at `/api` (see [`demo`]).
//!
//! Start it in-process with [`serve`] on a listener you bound:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let config = live_relay::Config { ping_ms: 200, ..live_relay::Config::default() };
//! tokio::spawn(live_relay::serve(config, listener, std::future::pending()));
//! // ws://{addr}/ws, http://{addr}/publish ...
//! # let _ = addr; Ok(()) }
//! ```

pub mod broker;
pub mod config;
pub mod demo;
pub mod http;
pub mod publish;
pub mod query;
pub mod sse;
pub mod ws;

pub use broker::{Broker, Settings, Stats};
pub use config::Config;

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What every route and connection shares.
#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub broker: Arc<Broker>,
    /// Identifies this run of the relay's history (sent in `hello`).
    pub epoch: String,
    /// The demo API's records (`--demo` only).
    pub demo: Option<demo::Store>,
    /// Changes (or closes) when the relay shuts down.
    shutdown: watch::Receiver<bool>,
}

impl AppState {
    pub fn limits(&self) -> publish::Limits {
        publish::Limits {
            max_channel_len: self.config.max_channel_len,
        }
    }
}

/// A fresh epoch: 16 hex digits from the clock, the process id and std's random hash keys.
pub fn new_epoch() -> String {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// How long open WebSocket connections get to close after the shutdown signal.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Serves the relay on `listener` until `shutdown` resolves, then closes the WebSocket
/// connections (close code 1001) and returns.
pub async fn serve<F>(config: Config, listener: TcpListener, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = watch::channel(false);
    let broker = Arc::new(Broker::with_settings(Settings::from_config(&config)));
    let sweeper = tokio::spawn(sweep(Arc::clone(&broker), sweep_interval(&config)));
    let state = Arc::new(AppState {
        demo: config.demo.then(demo::Store::seeded),
        config,
        broker,
        epoch: new_epoch(),
        shutdown: stopped,
    });
    let app = http::router(Arc::clone(&state));
    let signal = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        // Small frames must leave at once: no Nagle delay behind an unacknowledged segment.
        let _ = tcp.set_nodelay(true);
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await;
    if served.is_ok() {
        let _ = tokio::time::timeout(CLOSE_GRACE, state.broker.wait_idle()).await;
    }
    sweeper.abort();
    served
}

/// How often the expired history and publish keys are swept: half the shorter TTL, between
/// 50 ms and 10 s.
fn sweep_interval(config: &Config) -> Duration {
    let ttl = config.history_ttl_ms.min(config.publish_key_ttl_ms);
    Duration::from_millis((ttl / 2).clamp(50, 10_000))
}

/// Sweeps the broker every `every`, for as long as the relay serves.
async fn sweep(broker: Arc<Broker>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        broker.sweep();
    }
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
