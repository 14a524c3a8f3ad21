//! What one connection or one HTTP request may do.

use super::claims::Claims;
use std::sync::Arc;

/// The rights of a connection or request.
#[derive(Debug, Clone)]
pub enum Grant {
    /// Authentication is off: everything is allowed, scopes are what the client declares.
    Open,
    /// A configured API key (backends): may publish and revalidate on every channel.
    ApiKey {
        /// Which of the configured keys (its place in `--api-key`), for its rate limit.
        index: usize,
    },
    /// A verified token: its claims say what is allowed.
    Token(Arc<Claims>),
}

impl Grant {
    pub fn may_subscribe(&self, channel: &str) -> bool {
        match self {
            Grant::Open | Grant::ApiKey { .. } => true,
            Grant::Token(claims) => claims.channels.allows(channel),
        }
    }

    pub fn may_publish(&self, channel: &str) -> bool {
        match self {
            Grant::Open | Grant::ApiKey { .. } => true,
            Grant::Token(claims) => claims.publish.allows(channel),
        }
    }

    /// The user the grant belongs to, when a token named one.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Grant::Token(claims) => claims.sub.as_deref(),
            _ => None,
        }
    }
}
