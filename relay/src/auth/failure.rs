//! Why a token or an API key was refused.

use std::fmt;

/// A refused credential. [`AuthFailure::reason`] is its short name (the `reason` label of the
/// `auth_failures` metric); `Display` is the message sent to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No token (or no `Authorization` header) where one is required.
    Missing,
    /// Not a JWT, or an unreadable one.
    Malformed(String),
    /// Signed with an algorithm the relay's keys do not use (`none`, HS256 against an RSA key…).
    WrongAlgorithm(String),
    /// The signature does not match.
    BadSignature,
    /// Past its `exp`.
    Expired,
    /// Before its `nbf`.
    NotYetValid,
    WrongAudience,
    WrongIssuer,
    /// A claim missing (`exp`) or of the wrong type.
    BadClaims(String),
    /// An `Authorization: Bearer` value that is neither a configured API key nor a valid token.
    UnknownKey,
    /// A refresh whose token names another user than the connection's.
    SubjectChanged,
    /// An SSE ticket that is unknown, used already or expired.
    BadTicket,
}

impl AuthFailure {
    pub fn reason(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed(_) => "malformed",
            AuthFailure::WrongAlgorithm(_) => "wrong_algorithm",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::Expired => "expired",
            AuthFailure::NotYetValid => "not_yet_valid",
            AuthFailure::WrongAudience => "wrong_audience",
            AuthFailure::WrongIssuer => "wrong_issuer",
            AuthFailure::BadClaims(_) => "bad_claims",
            AuthFailure::UnknownKey => "unknown_key",
            AuthFailure::SubjectChanged => "subject_changed",
            AuthFailure::BadTicket => "bad_ticket",
        }
    }

    /// Every reason, for the metric's label values.
    pub const REASONS: [&'static str; 12] = [
        "missing",
        "malformed",
        "wrong_algorithm",
        "bad_signature",
        "expired",
        "not_yet_valid",
        "wrong_audience",
        "wrong_issuer",
        "bad_claims",
        "unknown_key",
        "subject_changed",
        "bad_ticket",
    ];
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::Missing => write!(f, "a token is required"),
            AuthFailure::Malformed(why) => write!(f, "malformed token: {why}"),
            AuthFailure::WrongAlgorithm(why) => write!(f, "token refused: {why}"),
            AuthFailure::BadSignature => write!(f, "the token's signature is invalid"),
            AuthFailure::Expired => write!(f, "the token has expired"),
            AuthFailure::NotYetValid => write!(f, "the token is not valid yet (`nbf`)"),
            AuthFailure::WrongAudience => write!(f, "the token is for another audience (`aud`)"),
            AuthFailure::WrongIssuer => write!(f, "the token is from another issuer (`iss`)"),
            AuthFailure::BadClaims(why) => write!(f, "the token's claims are invalid: {why}"),
            AuthFailure::UnknownKey => {
                write!(
                    f,
                    "the bearer credential is neither an API key nor a valid token"
                )
            }
            AuthFailure::SubjectChanged => {
                write!(
                    f,
                    "a refreshed token must be for the connection's user (`sub`)"
                )
            }
            AuthFailure::BadTicket => {
                write!(f, "the SSE ticket is unknown, already used or expired")
            }
        }
    }
}
