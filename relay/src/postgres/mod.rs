//! # The PostgreSQL feed (`--postgres <url>`)
//!
//! Publishes what the database says changed, with no publish call in the application: writes
//! to a watched table (`select live_relay.watch('posts')`) or calls of `live_relay.publish` add a
//! row to `live_relay.outbox` in the writer's own transaction; the relay drains the committed rows,
//! in order, and publishes each through [`AppState::publish`] (the one publish path: validation,
//! numbering, history, fan-out) with the idempotency key `pg:<event_id>`. A rolled-back
//! transaction leaves no row; a row is deleted only in the transaction that published it, so
//! nothing is lost across restarts of the relay, the database or Redis. See docs/POSTGRES.md.
//!
//! The parts, each a task: one [`consumer::Consumer`] per partition (`--postgres-partitions`),
//! woken by the [`listener`] (LISTEN, `--postgres-notify`) or every `--postgres-poll-ms`; and
//! [`consumer::watch_backlog`] for the metrics. [`schema`] installs the tables and functions;
//! [`status`] is what `/metrics` and `/healthz` show.

pub mod connect;
pub mod consumer;
pub mod error;
pub mod listener;
pub mod row;
pub mod schema;
pub mod status;

use crate::config::Config;
use crate::state::AppState;
use connect::Target;
pub use error::FeedError;
use status::FeedStatus;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The feed's settings, read from the flags.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    pub target: Target,
    /// `--postgres-listen-url`, else `--postgres`.
    pub listen: Target,
    pub partitions: u16,
    pub poll: Duration,
    pub notify: bool,
}

impl FeedSettings {
    /// The feed's settings, `None` without `--postgres`; the error names the flag at fault.
    pub fn from_config(config: &Config) -> Result<Option<FeedSettings>, FeedError> {
        let Some(url) = &config.postgres else {
            return Ok(None);
        };
        let target = Target::parse("--postgres", url)?;
        let listen = match &config.postgres_listen_url {
            Some(url) => Target::parse("--postgres-listen-url", url)?,
            None => target.clone(),
        };
        Ok(Some(FeedSettings {
            target,
            listen,
            partitions: config.postgres_partitions,
            poll: Duration::from_millis(config.postgres_poll_ms),
            notify: config.postgres_notify,
        }))
    }
}

/// Connects, installs the schema (or finds it installed) and applies the settings that live in
/// the database: what the relay does before it serves, so that a wrong URL, an unreachable
/// database or a role without rights stops it at once with the reason.
pub async fn prepare(settings: &FeedSettings) -> Result<(), FeedError> {
    let mut client = settings.target.connect().await?;
    schema::install(&mut client).await?;
    schema::configure(&client, settings.notify).await?;
    if settings.notify && settings.listen.describe() != settings.target.describe() {
        // Reaching the LISTEN database is checked now too.
        settings.listen.connect().await?;
    }
    Ok(())
}

/// The running feed: its tasks stop when it is dropped (a drain cut short leaves its rows, which
/// the next drain publishes again under the same keys).
#[derive(Debug)]
pub struct Feed {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the consumers, the listener (with `--postgres-notify`) and the backlog reader.
pub fn start(settings: FeedSettings, state: Arc<AppState>, status: Arc<FeedStatus>) -> Feed {
    let wakers: Arc<[Arc<Notify>]> = (0..settings.partitions)
        .map(|_| Arc::new(Notify::new()))
        .collect();
    let mut tasks = Vec::new();
    for partition in 0..settings.partitions {
        let consumer = consumer::Consumer {
            partition,
            partitions: settings.partitions,
            target: settings.target.clone(),
            state: Arc::clone(&state),
            status: Arc::clone(&status),
            wake: Arc::clone(&wakers[usize::from(partition)]),
            poll: settings.poll,
        };
        tasks.push(tokio::spawn(consumer.run()));
    }
    if settings.notify {
        tasks.push(tokio::spawn(listener::run(
            settings.listen.clone(),
            wakers,
            Arc::clone(&status),
        )));
    }
    tasks.push(tokio::spawn(consumer::watch_backlog(
        settings.target.clone(),
        status,
    )));
    Feed { tasks }
}

/// `live-relay postgres install [--print]`: prints the schema's SQL, or installs it on the
/// database of `--postgres` / `LIVE_RELAY_POSTGRES_URL`. Returns the exit code.
pub async fn command(args: &[String]) -> std::process::ExitCode {
    use std::process::ExitCode;
    const USAGE: &str = "usage: live-relay postgres install --print\n       \
                         live-relay postgres install --postgres <url> (or LIVE_RELAY_POSTGRES_URL)";
    let mut print = false;
    let mut url = std::env::var("LIVE_RELAY_POSTGRES_URL").ok();
    let mut rest = args.iter();
    if rest.next().map(String::as_str) != Some("install") {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--print" => print = true,
            "--postgres" => url = rest.next().cloned(),
            other => match other.strip_prefix("--postgres=") {
                Some(value) => url = Some(value.to_owned()),
                None => {
                    eprintln!("live-relay postgres: unknown argument `{other}`\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
        }
    }
    if print {
        print!("{}", schema::SQL);
        return ExitCode::SUCCESS;
    }
    let Some(url) = url else {
        eprintln!("live-relay postgres: give --postgres <url> or --print\n{USAGE}");
        return ExitCode::from(2);
    };
    let installed = async {
        let target = Target::parse("--postgres", &url)?;
        let mut client = target.connect().await?;
        schema::install(&mut client).await?;
        Ok::<_, FeedError>(target.describe())
    };
    match installed.await {
        Ok(target) => {
            println!(
                "the live_relay schema (version {}) is installed on {target}",
                schema::VERSION
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("live-relay postgres: {e}");
            ExitCode::from(2)
        }
    }
}
