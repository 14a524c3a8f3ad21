//! `live-relay`: parse the flags, bind, announce the address on stdout, serve until SIGINT/SIGTERM.

use clap::Parser;
use live_relay::{serve, shutdown_signal, Config};
use std::io::Write;
use std::process::ExitCode;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    if let Some(dir) = &config.static_dir {
        if !dir.is_dir() {
            eprintln!(
                "live-relay: --static-dir {}: not a directory",
                dir.display()
            );
            return ExitCode::from(2);
        }
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
    if config.demo {
        tracing::info!(
            "demo mode: an in-memory REST API at http://{addr}/api (posts, categories); \
             changes are published on resources/<resource>"
        );
    }

    match serve(config, listener, shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("live-relay stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("live-relay: {e}");
            ExitCode::FAILURE
        }
    }
}
