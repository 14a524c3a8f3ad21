//! `GET /demo/token` (demo mode only): a short-lived connection token for the demo user, signed
//! with the relay's own secret, so the demo app shows the real flow (`getToken` → `auth` frame →
//! in-band refresh). A real app gets its tokens from its own backend (see the README).
//!
//! `GET /demo/token?name=Alice` mints the token of a demo user of that name instead (`sub` is the
//! name, the `info` claim `{"name": …}`): each window of the demo names itself, so presence shows
//! who else is on a post. The name is 1–32 letters, digits, spaces, `-`, `_` or `.`.

use crate::error::error_response;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::{encode, EncodingKey, Header};
use live_protocol::frame::ErrorCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The demo user's id (`sub`).
pub const DEMO_USER: &str = "demo-user";
/// How long a demo token lives: short, so the demo refreshes it in-band every few seconds.
pub const DEMO_TOKEN_TTL_SECS: u64 = 60;

#[derive(Serialize)]
struct DemoClaims<'a> {
    sub: &'a str,
    /// The display info presence shows (`{"name": …}`), for a named demo user only.
    #[serde(skip_serializing_if = "Option::is_none")]
    info: Option<DemoInfo<'a>>,
    iat: u64,
    exp: u64,
    channels: [&'a str; 3],
    publish: [&'a str; 1],
    scopes: [&'a str; 1],
}

#[derive(Serialize)]
struct DemoInfo<'a> {
    name: &'a str,
}

/// The query of `GET /demo/token`.
#[derive(Deserialize)]
struct MintQuery {
    name: Option<String>,
}

/// Whether `name` may name a demo user: 1–32 ASCII letters, digits, spaces, `-`, `_` or `.`.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'-' | b'_' | b'.'))
}

#[derive(Serialize)]
struct Minted {
    token: String,
    expires_in: u64,
}

/// The route, merged at the top level in demo mode.
pub fn token_router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/demo/token", get(mint))
        .route_layer(axum::middleware::from_fn(super::loopback::loopback_only))
}

async fn mint(State(state): State<Arc<AppState>>, Query(query): Query<MintQuery>) -> Response {
    if let Some(name) = query.name.as_deref().filter(|n| !valid_name(n)) {
        return error_response(
            ErrorCode::BadFrame,
            &format!(
                "name must be 1 to 32 letters, digits, spaces, '-', '_' or '.', got {} bytes: {:?}",
                name.len(),
                name.chars().take(40).collect::<String>()
            ),
        );
    }
    let Some(secret) = state.config.jwt_secret.as_deref() else {
        return error_response(
            ErrorCode::Unauthorized,
            "the demo mints tokens with --jwt-secret; this relay verifies with a public key only",
        );
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let claims = DemoClaims {
        sub: query.name.as_deref().unwrap_or(DEMO_USER),
        info: query.name.as_deref().map(|name| DemoInfo { name }),
        iat: now,
        exp: now + DEMO_TOKEN_TTL_SECS,
        channels: ["resources/*", "demo/*", "$revalidate"],
        publish: ["demo/*"],
        scopes: ["user:demo-user"],
    };
    match encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    ) {
        Ok(token) => Json(Minted {
            token,
            expires_in: DEMO_TOKEN_TTL_SECS,
        })
        .into_response(),
        Err(e) => error_response(ErrorCode::BadFrame, &format!("could not sign a token: {e}")),
    }
}
