//! What a verified connection token says: who the user is, when the token expires, and what it
//! allows.

use super::pattern::Patterns;
use serde::Deserialize;

/// The claims the relay reads from a token (others are ignored). `exp` is required; `aud`,
/// `iss` and `nbf` are checked by the verifier.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    /// The user id.
    #[serde(default)]
    pub sub: Option<String>,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// Channels the connection may subscribe to.
    #[serde(default)]
    pub channels: Patterns,
    /// Channels the bearer may publish to (none by default).
    #[serde(default)]
    pub publish: Patterns,
    /// The connection's scopes: it receives the scoped events of these scopes (and the unscoped
    /// ones). With authentication on, scopes a client declares are ignored.
    #[serde(default)]
    pub scopes: Vec<String>,
}
