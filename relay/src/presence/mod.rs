//! # Presence (issue 26)
//!
//! Who else is on a channel ("Alice is editing post 3"), beside the event stream: no `seq`, no
//! history, over WebSocket only (docs/PROTOCOL.md, *Presence*). The parts:
//!
//! - [`set`]: one channel's set, without I/O: joins and resumes, updates, explicit leaves, the
//!   grace period after a socket ends, the sweep, the limits.
//! - [`contract`]: what a store is asked and answers ([`contract::JoinRequest`],
//!   [`contract::JoinOutcome`], [`contract::Snapshot`], [`contract::StoreError`]), below the stores.
//! - [`store`]: where the sets live, [`store::Store`], one variant per broker: [`memory`] (one
//!   relay) and [`redis::store`] (a cluster: the sets in Redis, changed by atomic scripts, each node
//!   refreshing its sockets' members and sweeping; docs/SCALING.md, *Presence on a cluster*).
//! - [`watchers`]: this node's watchers of each channel, with their outbound queues; every store
//!   announces its diffs there.
//! - [`service`]: [`service::Presence`] (in `AppState`): the store, the watchers, the 250 ms tick
//!   that sweeps expired members and sends full sets' counts.
//! - [`connection`]: one connection's memberships and watches; dropping it starts the grace
//!   period of its members. `ws::presence` checks the frames (rights, identity, limits).
//! - [`settings`], [`metrics`]: the `--presence*` flags and the `live_relay_presence_*` metrics.
//!
//! ## The store interface
//!
//! A store implements, each `async` and keyed by channel (and member key), on its own clock
//! (`since` in milliseconds since the epoch; the Redis store uses Redis `TIME`):
//!
//! - `join(channel, JoinRequest { key, user, info, data, conn })` → [`contract::JoinOutcome`]
//!   (`New`, announced `join`; `Resumed { changed }`, announced `update` only when `data`
//!   changed) or [`contract::StoreError`]: `Refused(Refusal)` (the key is another user's: `NotYours`;
//!   the set is full: `Full`; `data` too large: `TooLarge`; over the rate: `TooFast`, also for a
//!   resume that changes `data`) or `Unavailable`.
//! - `update(channel, key, conn, data)` → changed (announced `update`), `Refused(NotJoined)` when
//!   `conn` does not hold `key` (or it is in its grace period), `TooLarge`, `TooFast`.
//! - `leave(channel, key, conn)` → whether it was there (announced `leave` at once).
//! - `disconnected(channel, key, conn)`: the member leaves `grace_ms` later unless a `join` with
//!   its key resumes it first (on any node). Announces nothing now.
//! - `snapshot(channel)` → [`contract::Snapshot`] `{ version, members, users }`, members in their
//!   grace period included.
//! - `sweep()` → how many members whose grace ended were removed, each announced `leave`
//!   exactly once (also when several nodes sweep).
//! - `follow(channel)` / `unfollow(channel)`: the first watcher on this node came / the last one
//!   went (a cluster's store subscribes to the channel's diffs; `follow` comes before the
//!   snapshot of a `sync`). `members()`: the gauge.
//!
//! Every diff it makes or receives, a store announces to the node's
//! [`watchers::Watchers`] (`announce(channel, version, Announcement)`), in version order per
//! channel; `version` counts the channel's diffs (one counter per channel, in Redis on a cluster).
//! The limits it applies are [`set::Limits`] (from [`settings::Settings`]).

pub mod connection;
pub mod contract;
pub mod memory;
pub mod metrics;
pub mod redis;
pub mod service;
pub mod set;
pub mod settings;
pub mod store;
pub mod watchers;

pub use service::Presence;
