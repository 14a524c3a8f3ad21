//! # live-relay
//!
//! The relay server of wasm-live-provider: protocol v1 (`docs/PROTOCOL.md`) over WebSocket at
//! `GET /ws` and over Server-Sent Events at `GET /sse` (see [`sse`]), `POST /publish`,
//! `POST /revalidate`, `GET /healthz`, `GET /metrics`, `GET /stats/channels`, optionally a static
//! directory at `/` and, in demo mode (`--demo`), an in-memory REST API at `/api` (see [`demo`]).
//!
//! The layers, top down: [`http`] (the routes) → [`ws`], [`sse`], [`demo`] (connections and the
//! demo API) → [`state`] (what they share, and the one way to publish or subscribe, where
//! [`auth`] grants are checked) → [`broker`], [`publish`] (validation), [`limits`], [`metrics`],
//! [`error`], [`config`]. Beside them, [`postgres`] (the PostgreSQL feed, `--postgres`) publishes
//! through [`state`] like any publisher.
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

pub mod auth;
pub mod broker;
pub mod config;
pub mod demo;
pub mod error;
pub mod healthcheck;
pub mod history;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod postgres;
pub mod presence;
pub mod publish;
pub mod query;
pub mod sse;
pub mod state;
pub mod tcp;
pub mod test_hooks;
pub mod ws;

pub use broker::{Broker, Settings, Stats};
pub use config::Config;
pub use state::AppState;

/// For the fuzz targets in `fuzz/` only (not an API): the request-body readers the HTTP routes use
/// before they touch the broker. Everything else the targets need is public already.
#[doc(hidden)]
pub mod fuzz_api {
    use live_protocol::frame::{FrameError, Publish};
    use serde_json::value::RawValue;

    /// The event of a `POST /publish` body, before validation.
    pub fn read_publish_body(body: &[u8]) -> Result<Publish<'_>, FrameError> {
        crate::http::read_publish_body(body)
    }

    /// The payload `{"keys": [...]}` of a `POST /revalidate` body's `keys`.
    pub fn revalidate_payload(keys: Option<&RawValue>) -> Result<Box<RawValue>, FrameError> {
        crate::http::revalidate_payload(keys)
    }
}

use auth::Auth;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The API key the demo accepts when none is configured (`--demo` on a loopback address only).
pub const DEMO_API_KEY: &str = "demo-publish-key";

/// The configuration the relay runs with: in demo mode without keys, a random token secret (the
/// demo mints its own tokens) and [`DEMO_API_KEY`].
fn with_demo_credentials(mut config: Config) -> std::io::Result<Config> {
    if config.demo && !config.has_token_key() {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        config.jwt_secret = Some(bytes.iter().map(|b| format!("{b:02x}")).collect());
    }
    if config.demo && config.api_key.is_empty() {
        config.api_key = vec![DEMO_API_KEY.to_owned()];
    }
    Ok(config)
}

/// Checks the whole configuration, as [`serve`] will use it, without starting anything: the
/// listening address's rules ([`Config::check`]), the token keys and API keys, the static
/// directory. `main` calls it before binding, so a relay that prints `listening on` does not
/// then exit for a bad flag. The error names the flag at fault.
pub fn validate(config: &Config) -> Result<(), String> {
    config.check()?;
    if let Some(dir) = &config.static_dir {
        if !dir.is_dir() {
            return Err(format!("--static-dir {}: not a directory", dir.display()));
        }
    }
    postgres::FeedSettings::from_config(config).map_err(|e| e.to_string())?;
    let config = with_demo_credentials(config.clone()).map_err(|e| e.to_string())?;
    Auth::from_config(&config).map(drop)
}

/// With `--postgres`: connects to the database and installs the `live_relay` schema (or finds it
/// installed). `main` calls it before binding, so an unreachable database or a role without
/// rights stops the relay with the reason before it announces its address.
pub async fn prepare_database(config: &Config) -> Result<(), String> {
    match postgres::FeedSettings::from_config(config) {
        Ok(Some(settings)) => postgres::prepare(&settings)
            .await
            .map_err(|e| e.to_string()),
        Ok(None) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Serves the relay on `listener` until `shutdown` resolves, then stops accepting, tells every
/// WebSocket client to reconnect (close code 1001) and ends every SSE stream, waits at most
/// `--shutdown-grace-ms` for them to go, and returns. A configuration error (an unreadable key
/// file, a short secret) is an `InvalidInput` error naming the flag.
pub async fn serve<F>(config: Config, listener: TcpListener, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let config = with_demo_credentials(config)?;
    let auth = Auth::from_config(&config)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let feed_settings =
        postgres::FeedSettings::from_config(&config).map_err(|e| invalid(e.to_string()))?;
    if let Some(feed) = &feed_settings {
        postgres::prepare(feed)
            .await
            .map_err(|e| invalid(e.to_string()))?;
    }
    // After the feed's schema: the demo's tables on PostgreSQL are watched with it.
    let demo = demo::Backend::start(&config)
        .await
        .map_err(|e| invalid(e.to_string()))?;
    let (stop, stopped) = watch::channel(false);
    let settings = Settings::from_config(&config);
    let broker = match &config.redis {
        None => Broker::memory(settings),
        Some(url) => Broker::redis(
            url,
            &config.redis_prefix,
            config.redis_ca.as_deref(),
            settings,
        )
        .await
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::ConnectionRefused, e))?,
    };
    let broker = Arc::new(broker);
    let sweeper = tokio::spawn(sweep(Arc::clone(&broker), sweep_interval(&config)));
    let mut metrics = metrics::Metrics::default();
    let feed_status = feed_settings.as_ref().map(|feed| {
        let status = Arc::new(postgres::status::FeedStatus::new(feed.notify));
        status.register(metrics.registry_mut());
        status
    });
    let presence_settings = presence::settings::Settings::from_config(&config);
    let presence = Arc::new(match &*broker {
        Broker::Redis(redis) => presence::Presence::on_redis(
            presence_settings,
            metrics.presence.clone(),
            redis.presence_link(),
        ),
        Broker::Memory(_) => {
            presence::Presence::in_memory(presence_settings, metrics.presence.clone())
        }
    });
    let presence_ticks = tokio::spawn(Arc::clone(&presence).run());
    let state = Arc::new(AppState {
        presence,
        demo,
        per_ip: limits::PerIp::new(config.max_connections_per_ip, config.max_connections),
        http_publishers: limits::Buckets::new(config.key_publish_rate, config.key_publish_burst),
        ticket_issuers: limits::Buckets::new(state::TICKET_RATE, state::TICKET_BURST),
        metrics,
        auth,
        config,
        broker,
        shutdown: stopped,
        feed: feed_status.clone(),
    });
    let feed = feed_settings
        .zip(feed_status)
        .map(|(settings, status)| postgres::start(settings, Arc::clone(&state), status));
    let app = http::router(Arc::clone(&state));
    let signal = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    let served = serve_http(listener, app, &state, signal).await;
    if served.is_ok() {
        let grace = state.config.shutdown_grace();
        if tokio::time::timeout(grace, state.broker.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!(
                connections = state.broker.stats().connections,
                "connections still open after the shutdown grace period: stopping anyway"
            );
        }
    }
    sweeper.abort();
    presence_ticks.abort();
    drop(feed);
    served
}

/// Serves `app` on every connection `listener` accepts until `shutdown` resolves, then stops
/// accepting, lets each connection finish its request (WebSockets and SSE streams end on the
/// relay's own shutdown signal) and returns once all are done. HTTP/1.1 with upgrades, as
/// `axum::serve` does, plus what it lacks: a request head must arrive within
/// `--request-timeout-ms` (also the next one on a kept-alive connection), so connections that
/// drip their headers or never send any (slowloris) are closed and counted as `request_timeout`
/// limit hits.
async fn serve_http<F>(
    listener: TcpListener,
    app: axum::Router,
    state: &Arc<AppState>,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    let (closing, closing_rx) = watch::channel(false);
    // Each connection task holds a sender; `recv` returns `None` once all are gone.
    let (live, mut all_done) = tokio::sync::mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Small frames must leave at once: no Nagle delay behind an unacknowledged segment.
        let _ = tcp.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone().layer(
            axum::Extension(axum::extract::ConnectInfo::<SocketAddr>(peer)),
        ));
        let state = Arc::clone(state);
        let mut closing = closing_rx.clone();
        let live = live.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(state.config.request_timeout());
            let conn = builder
                .serve_connection(TokioIo::new(tcp::GracefulClose::new(tcp)), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let mut closing_seen = false;
            let result = loop {
                tokio::select! {
                    result = conn.as_mut() => break result,
                    _ = closing.wait_for(|c| *c), if !closing_seen => {
                        closing_seen = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            };
            if let Err(e) = result {
                if e.is_timeout() {
                    state.metrics.limit_hit(metrics::limit::REQUEST_TIMEOUT);
                }
                tracing::debug!(%peer, "connection ended: {e}");
            }
            drop(live);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    drop(live);
    let _ = all_done.recv().await;
    Ok(())
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
        broker.sweep().await;
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
