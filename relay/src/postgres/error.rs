//! What can go wrong with the PostgreSQL feed, each naming what to do about it.

use std::fmt;

/// Why the feed could not start or a step of it failed.
#[derive(Debug)]
pub enum FeedError {
    /// `--postgres` (or `--postgres-listen-url`) is not a connection URL the driver reads.
    BadUrl { flag: &'static str, reason: String },
    /// The database could not be reached or refused the login.
    Connect { target: String, reason: String },
    /// The role may not create the `live_relay` schema.
    NoPrivilege { role: String, reason: String },
    /// The database holds a newer schema (`found`) than this relay knows (`known`).
    NewerSchema { found: i32, known: i32 },
    /// Any other error of the database or the link to it.
    Sql(tokio_postgres::Error),
    /// A row of the outbox that could not be read at all (not even its id).
    Row(String),
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedError::BadUrl { flag, reason } => write!(
                f,
                "{flag}: not a PostgreSQL connection URL ({reason}); expected \
                 postgres://user:password@host:5432/database"
            ),
            FeedError::Connect { target, reason } => {
                write!(f, "cannot connect to PostgreSQL at {target}: {reason}")
            }
            FeedError::NoPrivilege { role, reason } => write!(
                f,
                "the role `{role}` may not create the live_relay schema ({reason}): have a \
                 database owner run the SQL that `live-relay postgres install --print` prints, \
                 then start the relay again"
            ),
            FeedError::NewerSchema { found, known } => write!(
                f,
                "the database holds version {found} of the live_relay schema, newer than this \
                 relay knows ({known}): run a newer live-relay"
            ),
            FeedError::Sql(e) => write!(f, "{}", describe(e)),
            FeedError::Row(reason) => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for FeedError {}

impl From<tokio_postgres::Error> for FeedError {
    fn from(e: tokio_postgres::Error) -> Self {
        FeedError::Sql(e)
    }
}

/// A driver error with the server's message, its detail and hint when there are some (the
/// driver's own `Display` says only "db error").
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{} ({})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(&format!("; {detail}"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; hint: {hint}"));
            }
            text
        }
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

impl FeedError {
    /// Whether the link to the database is gone (the connection must be made again).
    pub fn is_closed(&self) -> bool {
        match self {
            FeedError::Sql(e) => e.is_closed() || e.as_db_error().is_none(),
            FeedError::Connect { .. } => true,
            _ => false,
        }
    }
}
