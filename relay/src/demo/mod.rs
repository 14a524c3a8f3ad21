//! Demo mode (`--demo`): an in-memory REST API at `/api` that `@refinedev/simple-rest` can use, so
//! that a Refine app runs against the relay alone, `GET /demo/token` and `POST /demo/cut`.
//!
//! - [`store`]: the records and their limits; answers domain errors ([`store::StoreError`]).
//! - [`pg_store`]: the records in PostgreSQL instead (`--demo --postgres <url>`): tables `posts`
//!   and `categories` whose triggers publish every change, whoever makes it.
//! - [`query`]: json-server's list query language ([`query::ListQuery`]).
//! - [`routes`]: the HTTP handlers, which publish every change and map the errors to statuses.
//! - `token`: `GET /demo/token`, a short-lived connection token for the demo user.
//! - `cut`: `POST /demo/cut`, which drops every live connection as a network blip would.
//! - `loopback`: both of those answer requests from this machine only.
//!
//! `store` and `query` import nothing of `routes`, of `token` or of this module; `pg_store` only
//! `store` (for the seed) and the feed's connections.

mod cut;
mod loopback;
pub mod pg_store;
pub mod query;
pub mod routes;
pub mod store;
mod token;

pub use cut::cut_router;
pub use routes::router;
pub use store::Store;
pub use token::{token_router, DEMO_TOKEN_TTL_SECS, DEMO_USER};

use crate::config::Config;
use pg_store::{PgStore, PgStoreError};

/// Where the demo API keeps its records.
#[derive(Debug)]
pub enum Backend {
    /// In this process (`--demo`): the routes publish every change.
    Memory(Store),
    /// In PostgreSQL (`--demo --postgres <url>`): the tables' triggers publish every change.
    Postgres(Box<PgStore>),
}

impl Backend {
    /// The demo API's records for `config`: none without `--demo`; with `--postgres`, the tables
    /// created, seeded and watched (the feed's schema must be installed first).
    pub async fn start(config: &Config) -> Result<Option<Backend>, PgStoreError> {
        if !config.demo {
            return Ok(None);
        }
        Ok(Some(match &config.postgres {
            Some(url) => Backend::Postgres(Box::new(PgStore::open(url).await?)),
            None => Backend::Memory(Store::seeded()),
        }))
    }
}
