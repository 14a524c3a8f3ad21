//! `POST /demo/cut` (demo mode only): drops every WebSocket and SSE connection of the relay at
//! once, without a close frame or an error, as a network blip would. The clients reconnect and
//! resume with `since`, so the demo shows that nothing is lost across a cut.

use crate::state::AppState;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;

#[derive(Serialize)]
struct Cut {
    /// The connections dropped.
    cut: usize,
}

/// The route, merged at the top level in demo mode.
pub fn cut_router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/demo/cut", post(cut))
        .route_layer(axum::middleware::from_fn(super::loopback::loopback_only))
}

async fn cut(State(state): State<Arc<AppState>>) -> Json<Cut> {
    let cut = state.broker.cut_every_connection();
    tracing::info!(cut, "demo: every connection cut");
    Json(Cut { cut })
}
