//! What a verified connection token says: who the user is, when the token expires, and what it
//! allows.

use super::pattern::Patterns;
use serde::Deserialize;

/// The claims the relay reads from a token (others are ignored). `exp` is required; `aud`,
/// `iss` and `nbf` are checked by the verifier, and every registered claim must have its JSON
/// type (see [`super::token::check_registered_claims`]).
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
    /// Display information of the user (name, avatar, colour), shown beside its presence: an
    /// object of at most [`super::token::MAX_INFO_BYTES`] (checked by the verifier).
    #[serde(default)]
    pub info: Option<serde_json::Value>,
    /// A digest of the token itself (set by the verifier, never read from the token): who a
    /// token without `sub` is, for its publish keys and its rate limit.
    #[serde(skip)]
    pub token_digest: String,
}

impl Claims {
    /// Who holds the token, as a name no other holder can have: `user:<length>:<sub>` for every
    /// token of one user, `anon:<digest>` for a token without `sub` (on its own).
    pub fn holder(&self) -> String {
        match &self.sub {
            Some(sub) => format!("user:{}:{sub}", sub.len()),
            None => format!("anon:{}", self.token_digest),
        }
    }
}
