//! Authentication: when to refresh the token, and where a refresh stands.
//!
//! What the session does with tokens is in `auth.rs`.

use super::config::Millis;

/// A token is refreshed when about three quarters of its lifetime have passed, but at least this
/// long before it expires (half its lifetime for tokens shorter than twice this).
pub const MIN_REFRESH_MARGIN_MS: Millis = 1_000;

/// When to refresh a token that expires in `ttl_ms`, counted from its `authed` answer.
pub fn refresh_delay(ttl_ms: Millis) -> Millis {
    let margin = (ttl_ms / 4).max(MIN_REFRESH_MARGIN_MS.min(ttl_ms / 2));
    ttl_ms - margin
}

/// Where the refresh of the connection's token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refresh {
    /// Nothing to refresh (no connection, or a token without expiry).
    None,
    /// Ask for a new token at this time.
    At(Millis),
    /// The shell is getting a new token.
    Fetching,
    /// The new token was sent in an `auth` frame; waiting for `authed`.
    Sent,
}
