//! Connections to PostgreSQL: the URL read once, keepalives so that a dead peer is noticed, and
//! a session that gives its locks back when this relay stops answering.

use super::error::{describe, FeedError};
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::{Client, Config, NoTls};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The session settings of the consumer's connections: a relay that hangs inside a drain (or
/// whose link died silently) gives its partition lock back within seconds, and no statement waits
/// for long on a lock.
const SESSION: &str = "set idle_in_transaction_session_timeout = '30s'; \
                       set statement_timeout = '30s'; set lock_timeout = '10s'";

/// A checked connection URL (`postgres://…` or `key=value …`).
#[derive(Debug, Clone)]
pub struct Target {
    config: Config,
}

impl Target {
    /// Reads `url` (given as `flag`); the error names the flag and what is wrong, never the
    /// password.
    pub fn parse(flag: &'static str, url: &str) -> Result<Target, FeedError> {
        let mut config = Config::from_str(url).map_err(|e| FeedError::BadUrl {
            flag,
            reason: e.to_string(),
        })?;
        if config.get_hosts().is_empty() {
            return Err(FeedError::BadUrl {
                flag,
                reason: "no host".to_owned(),
            });
        }
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(FeedError::BadUrl {
                flag,
                reason: "sslmode=require: this relay does not speak TLS to PostgreSQL yet; use a \
                         private network or a local TLS proxy, and sslmode=disable or prefer"
                    .to_owned(),
            });
        }
        if config.get_application_name().is_none() {
            config.application_name("live-relay");
        }
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        #[cfg(target_os = "linux")]
        config.tcp_user_timeout(Duration::from_secs(20));
        Ok(Target { config })
    }

    /// `host:port/database as user`, for messages (no password).
    pub fn describe(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "?".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{host}:{port}/{} as {}",
            self.config.get_dbname().unwrap_or("(the user's database)"),
            self.config.get_user().unwrap_or("(the current user)")
        )
    }

    /// The user the connection logs in as, if the URL names one.
    pub fn user(&self) -> Option<&str> {
        self.config.get_user()
    }

    /// A connection whose driver runs in a task of its own (for queries, not for LISTEN).
    pub async fn connect(&self) -> Result<Client, FeedError> {
        let (client, connection) = self.connect_raw().await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(
                    "a PostgreSQL connection of the feed ended: {}",
                    describe(&e)
                );
            }
        });
        Ok(client)
    }

    /// A connection of the consumer: [`Target::connect`] with the session settings of [`SESSION`].
    pub async fn connect_consumer(&self) -> Result<Client, FeedError> {
        let client = self.connect().await?;
        client.batch_execute(SESSION).await?;
        Ok(client)
    }

    /// A connection and its driver, which the caller polls (LISTEN reads its notifications there).
    pub async fn connect_raw(
        &self,
    ) -> Result<
        (
            Client,
            tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
        ),
        FeedError,
    > {
        self.config
            .connect(NoTls)
            .await
            .map_err(|e| FeedError::Connect {
                target: self.describe(),
                reason: describe(&e),
            })
    }
}
