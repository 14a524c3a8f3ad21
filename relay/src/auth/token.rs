//! Verifying connection tokens (JWT) with the configured keys.
//!
//! Each key fixes its algorithm: an HMAC secret verifies HS256 only, an RSA public key RS256
//! only, an EC (P-256) public key ES256 only. A token is checked with the key of its header's
//! `alg` among those configured, so a token cannot choose a weaker algorithm (`none` does not
//! exist here) or have an RSA public key used as an HMAC secret.

use super::claims::Claims;
use super::failure::AuthFailure;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::path::Path;

/// The shortest HS256 secret accepted, in bytes: shorter ones can be brute-forced offline from
/// any token.
pub const MIN_SECRET_BYTES: usize = 32;

/// The longest `info` claim, serialized, in bytes.
pub const MAX_INFO_BYTES: usize = 1024;

/// What the verifier checks besides the signature.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub audience: Option<String>,
    pub issuer: Option<String>,
}

struct Key {
    algorithm: Algorithm,
    key: DecodingKey,
    validation: Validation,
}

/// Verifies tokens with one HMAC secret and/or one public key.
pub struct Verifier {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.algorithms())
            .finish()
    }
}

impl Verifier {
    /// A verifier from an HS256 secret and/or the path of a PEM public key (RSA: RS256, EC P-256:
    /// ES256). `Ok(None)` when neither is given. The error names the flag at fault.
    pub fn new(
        secret: Option<&str>,
        public_key: Option<&Path>,
        expect: &Expectations,
    ) -> Result<Option<Verifier>, String> {
        let mut keys = Vec::new();
        if let Some(secret) = secret {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(format!(
                    "--jwt-secret is {} bytes long: use at least {MIN_SECRET_BYTES} random bytes \
                     (e.g. `openssl rand -hex 32`)",
                    secret.len()
                ));
            }
            keys.push(Key::new(
                Algorithm::HS256,
                DecodingKey::from_secret(secret.as_bytes()),
                expect,
            ));
        }
        if let Some(path) = public_key {
            let pem = std::fs::read(path)
                .map_err(|e| format!("--jwt-public-key {}: cannot read it: {e}", path.display()))?;
            let key = if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                Key::new(Algorithm::RS256, key, expect)
            } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
                Key::new(Algorithm::ES256, key, expect)
            } else {
                return Err(format!(
                    "--jwt-public-key {}: not a PEM RSA or EC public key \
                     (`-----BEGIN PUBLIC KEY-----`)",
                    path.display()
                ));
            };
            keys.push(key);
        }
        Ok((!keys.is_empty()).then_some(Verifier { keys }))
    }

    /// The algorithms this verifier accepts, e.g. `HS256, RS256`.
    pub fn algorithms(&self) -> String {
        let names: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("{:?}", k.algorithm))
            .collect();
        names.join(", ")
    }

    /// The token's claims, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthFailure> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthFailure::Missing);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            AuthFailure::Malformed(format!(
                "unreadable header ({e}); the relay accepts {}",
                self.algorithms()
            ))
        })?;
        let Some(key) = self.keys.iter().find(|k| k.algorithm == header.alg) else {
            return Err(AuthFailure::WrongAlgorithm(format!(
                "signed with {:?}; the relay accepts {}",
                header.alg,
                self.algorithms()
            )));
        };
        let verified = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &key.validation);
        let claims = match verified {
            Ok(data) => data.claims,
            // These are found after the signature was checked: a claim of the wrong JSON type is
            // the clearer reason (jsonwebtoken skips an `nbf` it cannot read, and calls an `exp`
            // it cannot read missing).
            Err(e) if checked_after_signature(e.kind()) => {
                return Err(unverified_claims(token)
                    .and_then(|claims| check_registered_claims(&claims).err())
                    .map_or_else(
                        || failure(e.kind(), header.alg, self),
                        AuthFailure::BadClaims,
                    ))
            }
            Err(e) => return Err(failure(e.kind(), header.alg, self)),
        };
        check_registered_claims(&claims).map_err(AuthFailure::BadClaims)?;
        check_info(&claims).map_err(AuthFailure::BadClaims)?;
        let mut claims: Claims = serde_json::from_value(Value::Object(claims))
            .map_err(|e| AuthFailure::BadClaims(e.to_string()))?;
        claims.token_digest = super::grant::digest(token.as_bytes());
        Ok(claims)
    }
}

/// Whether jsonwebtoken found this after checking the signature (the claims are the issuer's).
/// A JSON error is one of the claims': the header was read already (`decode_header`).
fn checked_after_signature(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Json(_)
            | ErrorKind::ExpiredSignature
            | ErrorKind::ImmatureSignature
            | ErrorKind::InvalidAudience
            | ErrorKind::InvalidIssuer
            | ErrorKind::MissingRequiredClaim(_)
    )
}

/// The claims of a token whose signature was verified already, read without checking anything
/// (jsonwebtoken's own reading gave up on them).
fn unverified_claims(token: &str) -> Option<Map<String, Value>> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&json).ok()
}

/// The refusal for an error of jsonwebtoken.
fn failure(kind: &ErrorKind, algorithm: Algorithm, verifier: &Verifier) -> AuthFailure {
    match kind {
        ErrorKind::ExpiredSignature => AuthFailure::Expired,
        ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
        ErrorKind::InvalidAudience => AuthFailure::WrongAudience,
        ErrorKind::InvalidIssuer => AuthFailure::WrongIssuer,
        ErrorKind::InvalidSignature => AuthFailure::BadSignature,
        ErrorKind::InvalidAlgorithm => AuthFailure::WrongAlgorithm(format!(
            "signed with {algorithm:?}; the relay accepts {}",
            verifier.algorithms()
        )),
        ErrorKind::MissingRequiredClaim(claim) => {
            AuthFailure::BadClaims(format!("the `{claim}` claim is required"))
        }
        ErrorKind::Json(e) => AuthFailure::BadClaims(e.to_string()),
        other => AuthFailure::Malformed(format!("{other:?}")),
    }
}

/// Refuses a token whose registered claims (RFC 7519 §4.1) do not have their JSON type: `exp`,
/// `nbf` and `iat` whole numbers of seconds, `sub` and `iss` strings, `aud` a string or an array
/// of strings. (A claim of the wrong type is not skipped: a string `nbf` would otherwise let the
/// token work before its time.) The error names the claim.
pub fn check_registered_claims(claims: &Map<String, Value>) -> Result<(), String> {
    let kind = |value: &Value| match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    for name in ["exp", "nbf", "iat"] {
        match claims.get(name) {
            None => {}
            Some(Value::Number(n)) if n.as_u64().is_some() => {}
            Some(other) => {
                return Err(format!(
                    "`{name}` must be a whole number of seconds since 1970 (a JSON number, at \
                     least 0), not {} ({})",
                    kind(other),
                    live_protocol::frame::excerpt(&other.to_string())
                ))
            }
        }
    }
    for name in ["sub", "iss"] {
        match claims.get(name) {
            None | Some(Value::String(_)) => {}
            Some(other) => return Err(format!("`{name}` must be a string, not {}", kind(other))),
        }
    }
    match claims.get("aud") {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => Ok(()),
        Some(other) => Err(format!(
            "`aud` must be a string or an array of strings, not {}",
            kind(other)
        )),
    }
}

/// Refuses a token whose `info` claim (what presence shows of the user) is not an object of at
/// most [`MAX_INFO_BYTES`] serialized. The error names the claim.
pub fn check_info(claims: &Map<String, Value>) -> Result<(), String> {
    match claims.get("info") {
        None => Ok(()),
        Some(Value::Object(info)) => {
            let len = serde_json::to_string(info).map_or(usize::MAX, |s| s.len());
            if len > MAX_INFO_BYTES {
                return Err(format!(
                    "`info` is {len} bytes serialized: at most {MAX_INFO_BYTES} (what presence \
                     shows of the user: name, avatar, colour)"
                ));
            }
            Ok(())
        }
        Some(other) => Err(format!(
            "`info` must be an object (what presence shows of the user), not {}",
            live_protocol::frame::excerpt(&other.to_string())
        )),
    }
}

impl Key {
    fn new(algorithm: Algorithm, key: DecodingKey, expect: &Expectations) -> Key {
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        match &expect.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &expect.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".into());
        }
        if expect.audience.is_some() {
            validation.required_spec_claims.insert("aud".into());
        }
        Key {
            algorithm,
            key,
            validation,
        }
    }
}
