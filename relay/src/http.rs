//! The HTTP routes: `GET /ws`, `POST /publish`, `GET /healthz`, `GET /stats/channels`, the demo
//! API at `/api` (with `--demo`), and the optional static directory.

use crate::broker;
use crate::publish::validate;
use crate::{demo, ws, AppState};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::Arc;
use tower_http::cors::{Any, CorsLayer};
use tower_http::services::ServeDir;
use wasm_live_provider::engine::frame::{DateInput, ErrorCode, FrameError, Publish};

/// All routes of the relay.
pub fn router(state: Arc<AppState>) -> Router {
    // Browser pages served from another origin may publish and poll the health check.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(Any);
    let api = Router::new()
        .route(
            "/publish",
            post(publish).layer(DefaultBodyLimit::max(state.config.max_frame_bytes)),
        )
        .route("/healthz", get(healthz))
        .route("/stats/channels", get(channel_stats))
        .layer(cors);
    let mut app = Router::new().route("/ws", get(ws::upgrade)).merge(api);
    if state.demo.is_some() {
        app = app.nest("/api", demo::router(state.config.max_frame_bytes));
    }
    if let Some(dir) = &state.config.static_dir {
        app = app.fallback_service(ServeDir::new(dir));
    }
    app.with_state(state)
}

/// The body of `POST /publish`: a `LiveEvent`. `date` stays raw so that a date of the wrong type
/// is a `bad_event` like an unparseable one.
#[derive(Deserialize)]
struct LiveEvent<'a> {
    /// Idempotency key: a body posted again with the same key is answered with the first seq.
    #[serde(borrow, default)]
    key: Option<Cow<'a, str>>,
    #[serde(borrow)]
    channel: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
    #[serde(borrow, default)]
    date: Option<&'a RawValue>,
    #[serde(borrow, default)]
    meta: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Published<'a> {
    channel: &'a str,
    seq: u64,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'static str,
    message: &'a str,
}

fn error_response(code: ErrorCode, message: &str) -> Response {
    let status = match code {
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.as_str(),
            message,
        },
    };
    (status, Json(body)).into_response()
}

async fn publish(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let message = format!(
                "body over the limit of {} bytes",
                state.config.max_frame_bytes
            );
            return error_response(ErrorCode::TooLarge, &message);
        }
        Err(rejection) => return error_response(ErrorCode::BadFrame, &rejection.body_text()),
    };
    match publish_body(&state, &body) {
        Ok((channel, seq)) => Json(Published {
            channel: &channel,
            seq,
        })
        .into_response(),
        Err(e) => error_response(e.code, &e.message),
    }
}

/// Validates and publishes one body; returns the channel and the event's seq.
fn publish_body<'b>(state: &AppState, body: &'b [u8]) -> Result<(Cow<'b, str>, u64), FrameError> {
    let event: LiveEvent<'b> = serde_json::from_slice(body)
        .map_err(|e| FrameError::new(ErrorCode::BadFrame, format!("not a valid LiveEvent: {e}")))?;
    let date = event.date.map(DateInput::read).transpose()?;
    let publish = Publish {
        key: event.key,
        channel: event.channel,
        kind: event.kind,
        payload: event.payload,
        date,
        meta: event.meta,
        scopes: None,
    };
    publish_event(state, publish)
}

/// Validates one event and publishes it through the broker: what `POST /publish` does with a body
/// once it is read, and what the demo API does after each change. Returns the channel and the
/// event's seq.
pub fn publish_event<'a>(
    state: &AppState,
    publish: Publish<'a>,
) -> Result<(Cow<'a, str>, u64), FrameError> {
    let event = validate(publish, &state.limits())?;
    match state.broker.publish(&event) {
        broker::Published::New(seq) => Ok((event.channel, seq)),
        // Its key was seen: the answer of the first publish.
        broker::Published::Repeat { channel, seq } => Ok((Cow::Owned(channel.into()), seq)),
    }
}

#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    /// The epoch announced in `hello`.
    epoch: &'a str,
    #[serde(flatten)]
    stats: crate::broker::Stats,
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    Json(Health {
        status: "ok",
        epoch: &state.epoch,
        stats: state.broker.stats(),
    })
    .into_response()
}

/// `GET /stats/channels`: the channels with at least one subscriber, with their subscriber count
/// and last seq.
async fn channel_stats(State(state): State<Arc<AppState>>) -> Response {
    Json(state.broker.channel_stats()).into_response()
}
