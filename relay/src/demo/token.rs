//! `GET /demo/token` (demo mode only): a short-lived connection token for the demo user, signed
//! with the relay's own secret, so the demo app shows the real flow (`getToken` → `auth` frame →
//! in-band refresh). A real app gets its tokens from its own backend (see the README).

use crate::error::error_response;
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::{encode, EncodingKey, Header};
use live_protocol::frame::ErrorCode;
use serde::Serialize;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The demo user's id (`sub`).
pub const DEMO_USER: &str = "demo-user";
/// How long a demo token lives: short, so the demo refreshes it in-band every few seconds.
pub const DEMO_TOKEN_TTL_SECS: u64 = 60;

#[derive(Serialize)]
struct DemoClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    channels: [&'a str; 3],
    publish: [&'a str; 1],
    scopes: [&'a str; 1],
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

async fn mint(State(state): State<Arc<AppState>>) -> Response {
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
        sub: DEMO_USER,
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
