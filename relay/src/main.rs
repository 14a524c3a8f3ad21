//! `live-relay`: parse the flags, bind, announce the address on stdout, serve until SIGINT/SIGTERM.

use live_relay::{config, serve, shutdown_signal};

/// The static (musl) build allocates with mimalloc: musl's malloc is slow under many threads.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `live-relay healthcheck [--addr HOST:PORT]` (see `live_relay::healthcheck`).
async fn healthcheck(args: &[String]) -> ExitCode {
    let addr = match live_relay::healthcheck::address(args) {
        Ok(addr) => addr,
        Err(message) => {
            eprintln!("live-relay: {message}");
            return ExitCode::from(2);
        }
    };
    match live_relay::healthcheck::check(addr).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("live-relay healthcheck: {message}");
            ExitCode::FAILURE
        }
    }
}
use std::io::Write;
use std::process::ExitCode;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match args.get(1).map(String::as_str) {
        Some("healthcheck") => return healthcheck(&args[2..]).await,
        Some("postgres") => return live_relay::postgres::command(&args[2..]).await,
        _ => {}
    }
    let config = match config::file::load(std::env::args_os()) {
        Ok(config) => config,
        Err(e) => e.exit(),
    };
    // Everything that can be wrong with the flags is found before the port is bound and
    // `listening on` is printed.
    if let Err(message) = live_relay::validate(&config) {
        eprintln!("live-relay: {message}");
        return ExitCode::from(2);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(message) = live_relay::prepare_database(&config).await {
        eprintln!("live-relay: {message}");
        return ExitCode::from(2);
    }

    if config.history_size >= config.outbound_queue {
        tracing::warn!(
            history_size = config.history_size,
            outbound_queue = config.outbound_queue,
            "a full replay (--history-size events and the `subscribed` answer) does not fit in the \
             outbound queue: a client resuming that far back is closed as a slow consumer"
        );
    }
    let listener = match TcpListener::bind(config.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("live-relay: cannot listen on {}: {e}", config.addr);
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("live-relay: cannot read the bound address: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "live-relay listening on http://{addr}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        tracing::warn!("could not write the listening line to stdout");
    }
    drop(stdout);
    tracing::info!(%addr, static_dir = ?config.static_dir, demo = config.demo, "live-relay started");
    if config.has_token_key() {
        tracing::info!(
            "authentication on: connections need a token, publishing an API key or a token"
        );
    } else if !config.demo {
        tracing::warn!(
            "authentication off: anyone who reaches {addr} may subscribe and publish \
             (give --jwt-secret or --jwt-public-key to turn it on)"
        );
    }
    if config.demo {
        tracing::info!(
            "demo mode: a REST API at http://{addr}/api (posts, categories{}); \
             changes are published on resources/<resource>; tokens for the demo user at \
             http://{addr}/demo/token; publish with `Authorization: Bearer {}`",
            if config.postgres.is_some() {
                ": tables in PostgreSQL, whose triggers publish every change"
            } else {
                ", in memory"
            },
            // Never the operator's own key in a log.
            if config.api_key.is_empty() {
                live_relay::DEMO_API_KEY
            } else {
                "<your --api-key>"
            }
        );
    }

    match serve(config, listener, shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("live-relay stopped");
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            eprintln!("live-relay: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("live-relay: {e}");
            ExitCode::FAILURE
        }
    }
}
