//! What one connection or one HTTP request may do, and who it is as a publisher.

use super::claims::Claims;
use std::sync::Arc;

/// The rights of a connection or request.
#[derive(Debug, Clone)]
pub enum Grant {
    /// Authentication is off: everything is allowed, scopes are what the client declares.
    Open,
    /// A configured API key (backends): may publish and revalidate on every channel.
    ApiKey {
        /// A digest of the key (not the key): its publisher namespace and its rate limit.
        digest: Arc<str>,
    },
    /// A verified token: its claims say what is allowed.
    Token(Arc<Claims>),
    /// The relay's PostgreSQL feed (`--postgres`): publishes the outbox's rows on any channel.
    /// Never a connection's or a request's.
    Feed,
}

impl Grant {
    pub fn may_subscribe(&self, channel: &str) -> bool {
        match self {
            Grant::Open | Grant::ApiKey { .. } => true,
            Grant::Token(claims) => claims.channels.allows(channel),
            Grant::Feed => false,
        }
    }

    pub fn may_publish(&self, channel: &str) -> bool {
        match self {
            Grant::Open | Grant::ApiKey { .. } | Grant::Feed => true,
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

    /// Who publishes, as a name no other publisher can have: the namespace of its publish keys
    /// and the name of its HTTP rate bucket. The kind comes first and a `sub` is length-prefixed,
    /// so no `sub` (`"key"`, `"token"`, one with separators in it) can take another's name:
    /// - `open`: everyone, with authentication off;
    /// - `key:<digest>`: one API key (each key its own);
    /// - `user:<length>:<sub>`: every token of one user;
    /// - `anon:<digest>`: a token without `sub`, on its own (a refreshed token is another one);
    /// - `postgres`: the PostgreSQL feed.
    pub fn publisher(&self) -> String {
        match self {
            Grant::Open => "open".to_owned(),
            Grant::ApiKey { digest } => format!("key:{digest}"),
            Grant::Token(claims) => claims.holder(),
            Grant::Feed => "postgres".to_owned(),
        }
    }
}

/// The first 128 bits of the SHA-256 of `bytes`, in hex: names a secret without revealing it.
pub fn digest(bytes: &[u8]) -> String {
    let hash = ring::digest::digest(&ring::digest::SHA256, bytes);
    hash.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(sub: Option<&str>, digest: &str) -> Grant {
        Grant::Token(Arc::new(Claims {
            sub: sub.map(str::to_owned),
            exp: 0,
            channels: Default::default(),
            publish: Default::default(),
            scopes: Vec::new(),
            info: None,
            token_digest: digest.to_owned(),
        }))
    }

    #[test]
    fn publishers_never_share_a_name() {
        let key = Grant::ApiKey {
            digest: Arc::from(digest(b"backend-key-0123456789").as_str()),
        };
        let other_key = Grant::ApiKey {
            digest: Arc::from(digest(b"backend-key-9876543210").as_str()),
        };
        let names = [
            Grant::Open.publisher(),
            key.publisher(),
            other_key.publisher(),
            token(Some("key"), "d1").publisher(),
            token(Some("token"), "d1").publisher(),
            token(Some("open"), "d1").publisher(),
            token(Some(""), "d1").publisher(),
            token(Some(&key.publisher()), "d1").publisher(),
            token(Some("anon:d1"), "d1").publisher(),
            token(None, "d1").publisher(),
            token(None, "d2").publisher(),
        ];
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(
            token(Some("alice"), "d1").publisher(),
            token(Some("alice"), "d2").publisher(),
            "every token of one user is one publisher"
        );
    }
}
