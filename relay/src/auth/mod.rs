//! Authentication and authorisation: who is connecting or publishing, and what they may do.
//!
//! - [`token`]: verifying connection tokens (JWT) with the configured keys;
//! - [`claims`] and [`pattern`]: what a token allows (channels to subscribe and publish to,
//!   scopes);
//! - [`grant`]: the rights of one connection or request ([`Grant`]);
//! - [`ticket`]: single-use tickets that open an SSE stream without a token in the URL;
//! - [`failure`]: why a credential was refused.
//!
//! [`Auth`] puts them together from the configuration. With no key configured, everything is
//! open (the embedded default, allowed on a loopback address only: see `Config::check`).

pub mod claims;
pub mod failure;
pub mod grant;
pub mod pattern;
pub mod ticket;
pub mod token;

pub use claims::Claims;
pub use failure::AuthFailure;
pub use grant::Grant;

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use token::{Expectations, Verifier};

/// The relay's credentials: its token verifier and API keys.
#[derive(Debug)]
pub struct Auth {
    verifier: Option<Verifier>,
    /// Each configured API key with its digest (its publisher name: see [`Grant::publisher`]).
    api_keys: Vec<(String, Arc<str>)>,
}

impl Auth {
    /// Nothing configured: every connection and publish is allowed.
    pub fn open() -> Auth {
        Auth {
            verifier: None,
            api_keys: Vec::new(),
        }
    }

    /// From the configuration; the error names the flag at fault.
    pub fn from_config(config: &crate::config::Config) -> Result<Auth, String> {
        let expect = Expectations {
            audience: config.jwt_audience.clone(),
            issuer: config.jwt_issuer.clone(),
        };
        let verifier = Verifier::new(
            config.jwt_secret.as_deref(),
            config.jwt_public_key.as_deref(),
            &expect,
        )?;
        if let Some(short) = config.api_key.iter().find(|k| k.len() < 16) {
            return Err(format!(
                "--api-key: a key of {} characters is too easy to guess: use at least 16",
                short.len()
            ));
        }
        let api_keys = config
            .api_key
            .iter()
            .map(|key| {
                (
                    key.clone(),
                    Arc::from(grant::digest(key.as_bytes()).as_str()),
                )
            })
            .collect();
        Ok(Auth { verifier, api_keys })
    }

    /// Whether WebSocket and SSE connections must present a token.
    pub fn connections_need_token(&self) -> bool {
        self.verifier.is_some()
    }

    /// Whether `POST /publish` and `POST /revalidate` need credentials.
    pub fn publishing_needs_credentials(&self) -> bool {
        self.verifier.is_some() || !self.api_keys.is_empty()
    }

    /// The grant of a token (for a connection's `auth` frame or a ticket).
    pub fn verify(&self, token: &str) -> Result<Arc<Claims>, AuthFailure> {
        match &self.verifier {
            Some(verifier) => verifier.verify(token).map(Arc::new),
            None => Err(AuthFailure::WrongAlgorithm(
                "the relay has no key to verify tokens with".into(),
            )),
        }
    }

    /// The grant of an HTTP request from its `Authorization: Bearer …` header: an API key or a
    /// token. Open when publishing needs no credentials.
    pub fn bearer(&self, headers: &HeaderMap) -> Result<Grant, AuthFailure> {
        if !self.publishing_needs_credentials() {
            return Ok(Grant::Open);
        }
        let credential = bearer_credential(headers)?;
        if let Some((_, digest)) = self
            .api_keys
            .iter()
            .find(|(key, _)| same_bytes(key.as_bytes(), credential.as_bytes()))
        {
            return Ok(Grant::ApiKey {
                digest: Arc::clone(digest),
            });
        }
        match &self.verifier {
            // Three dot-separated parts: a JWT, so its own refusal is the clearer one.
            Some(verifier) if credential.split('.').count() == 3 => verifier
                .verify(credential)
                .map(|c| Grant::Token(Arc::new(c))),
            _ => Err(AuthFailure::UnknownKey),
        }
    }
}

/// The credential of an `Authorization: Bearer <credential>` header. The scheme is
/// case-insensitive (RFC 7235); a request with two `Authorization` headers is refused, since
/// which one counts would depend on who reads it (a proxy may read the other).
pub fn bearer_credential(headers: &HeaderMap) -> Result<&str, AuthFailure> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthFailure::Missing)?;
    if values.next().is_some() {
        return Err(AuthFailure::Malformed(
            "two `Authorization` headers: send one".into(),
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthFailure::Malformed("the Authorization header is not ASCII".into()))?;
    bearer(value).ok_or_else(|| {
        AuthFailure::Malformed("the Authorization header must be `Bearer <key or token>`".into())
    })
}

/// The credential of `Bearer <credential>`, the scheme in any case.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, credential) = value.split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential)
}

/// Compares two secrets in time independent of where they differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How long until a token's `exp` (zero when past).
pub fn time_left(claims: &Claims) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(claims.exp).saturating_sub(now)
}

/// The `ttl_ms` of an `authed` frame: how long the token has left, in milliseconds, at most
/// 2^53 − 1 (the protocol's integers stay exact in JavaScript).
pub fn ttl_ms(claims: &Claims) -> u64 {
    const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
    u64::try_from(time_left(claims).as_millis())
        .unwrap_or(u64::MAX)
        .min(MAX_SAFE_INTEGER)
}

/// When a token expires, as a deadline (a far-off `exp` is capped at a year, so no overflow).
pub fn deadline(claims: &Claims) -> tokio::time::Instant {
    const YEAR: Duration = Duration::from_secs(365 * 86_400);
    tokio::time::Instant::now() + time_left(claims).min(YEAR)
}

#[cfg(test)]
mod tests {
    use super::{bearer_credential, same_bytes, AuthFailure};
    use axum::http::header::AUTHORIZATION;
    use axum::http::{HeaderMap, HeaderValue};

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(AUTHORIZATION, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_one_header_only() {
        for value in ["Bearer k1", "bearer k1", "BEARER k1", "bEaReR   k1  "] {
            assert_eq!(bearer_credential(&headers(&[value])), Ok("k1"), "{value}");
        }
        for value in ["Basic k1", "Bearer", "Bearer ", "Bearerk1", "k1"] {
            assert!(
                matches!(
                    bearer_credential(&headers(&[value])),
                    Err(AuthFailure::Malformed(_))
                ),
                "{value}"
            );
        }
        assert_eq!(bearer_credential(&headers(&[])), Err(AuthFailure::Missing));
        assert!(matches!(
            bearer_credential(&headers(&["Bearer k1", "Bearer k2"])),
            Err(AuthFailure::Malformed(m)) if m.contains("two")
        ));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_bytes(b"abcdef", b"abcdef"));
        assert!(!same_bytes(b"abcdef", b"abcdeg"));
        assert!(!same_bytes(b"abc", b"abcdef"));
    }
}
