//! Demo mode (`--demo`): an in-memory REST API at `/api` that `@refinedev/simple-rest` can use, so
//! that a Refine app runs against the relay alone, `GET /demo/token` and `POST /demo/cut`.
//!
//! - [`store`]: the records and their limits; answers domain errors ([`store::StoreError`]).
//! - [`query`]: json-server's list query language ([`query::ListQuery`]).
//! - [`routes`]: the HTTP handlers, which publish every change and map the errors to statuses.
//! - `token`: `GET /demo/token`, a short-lived connection token for the demo user.
//! - `cut`: `POST /demo/cut`, which drops every live connection as a network blip would.
//! - `loopback`: both of those answer requests from this machine only.
//!
//! `store` and `query` import nothing of `routes`, of `token` or of this module.

mod cut;
mod loopback;
pub mod query;
pub mod routes;
pub mod store;
mod token;

pub use cut::cut_router;
pub use routes::router;
pub use store::Store;
pub use token::{token_router, DEMO_TOKEN_TTL_SECS, DEMO_USER};
