//! The HTTP routes: `GET /ws`, `GET /sse`, `POST /sse/ticket`, `POST /publish`,
//! `POST /revalidate`, `GET /healthz`, `GET /metrics`, `GET /stats/channels`, the demo API at
//! `/api`, `GET /demo/token` and `POST /demo/cut` (with `--demo`), and the optional static directory.

use crate::auth::Grant;
use crate::error::{error_response, frame_error_response};
use crate::metrics::limit;
use crate::state::AppState;
use crate::state::Published as Accepted;
use crate::{demo, sse, ws};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use live_protocol::frame::{
    excerpt, DateInput, ErrorCode, FrameError, Publish, REVALIDATE_CHANNEL, REVALIDATE_TYPE,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::services::ServeDir;

/// The most keys one `POST /revalidate` may carry.
pub const MAX_REVALIDATE_KEYS: usize = 100;

/// All routes of the relay.
pub fn router(state: Arc<AppState>) -> Router {
    // Browser pages served from another origin may publish, revalidate, listen over SSE and poll
    // the health check.
    // (With `--allowed-origins`, only those.)
    let origins = if state.config.allowed_origins.is_empty() {
        AllowOrigin::from(Any)
    } else {
        AllowOrigin::list(
            state
                .config
                .allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    let cors = CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(Any);
    let body_limit = DefaultBodyLimit::max(state.config.max_frame_bytes);
    let declared = axum::middleware::from_fn_with_state(Arc::clone(&state), declared_size);
    let api = Router::new()
        .route(
            "/publish",
            post(publish).layer(body_limit).layer(declared.clone()),
        )
        .route(
            "/revalidate",
            post(revalidate).layer(body_limit).layer(declared),
        )
        .route("/sse", get(sse::stream))
        .route("/sse/ticket", post(sse::ticket))
        .route("/healthz", get(healthz))
        .route("/stats/channels", get(channel_stats))
        .layer(cors);
    let mut app = Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/metrics", get(metrics))
        .merge(api);
    if state.demo.is_some() {
        app = app
            .nest("/api", demo::router(state.config.max_frame_bytes))
            .merge(demo::token_router())
            .merge(demo::cut_router());
    }
    if let Some(dir) = &state.config.static_dir {
        app = app.fallback_service(ServeDir::new(dir));
    }
    app.layer(axum::middleware::from_fn_with_state(
        Arc::clone(&state),
        request_deadline,
    ))
    .with_state(state)
}

/// Refuses a `POST /publish` or `/revalidate` whose `Content-Length` is over `--max-frame-bytes`
/// at once (`413`, `too_large`), instead of holding the connection while the body arrives.
async fn declared_size(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let max = state.config.max_frame_bytes;
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > max as u64 => {
            state.metrics.limit_hit(limit::FRAME_SIZE);
            let message = format!("body of {length} bytes is over the limit of {max} bytes");
            let mut response = frame_error_response(&FrameError::new(ErrorCode::TooLarge, message));
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                HeaderValue::from_static("close"),
            );
            response
        }
        _ => next.run(request).await,
    }
}

/// Answers `408` (and closes the connection) when a request's body and its handling take longer
/// than `--request-timeout-ms`: a body dripped a byte at a time (slowloris) cannot hold a
/// connection. The request head has its own timeout in the server (see `crate::serve`). Streams
/// (SSE) and WebSockets are not cut: their handlers answer at once.
async fn request_deadline(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let allowed = state.config.request_timeout();
    match tokio::time::timeout(allowed, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            state.metrics.limit_hit(limit::REQUEST_TIMEOUT);
            let message = format!(
                "the request was not received and answered within {} ms (--request-timeout-ms)",
                allowed.as_millis()
            );
            let mut response = error_response(ErrorCode::BadFrame, &message);
            *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                HeaderValue::from_static("close"),
            );
            response
        }
    }
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
    #[serde(borrow, default)]
    scopes: Option<&'a RawValue>,
}

/// The body of `POST /revalidate`. Both fields stay raw so that a wrong type is a `bad_event`.
#[derive(Deserialize)]
struct RevalidateBody<'a> {
    #[serde(borrow, default)]
    keys: Option<&'a RawValue>,
    #[serde(borrow, default)]
    scopes: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Published<'a> {
    channel: &'a str,
    seq: u64,
}

/// A request body, or why it could not be read (`too_large` over the limit).
fn read_body(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, FrameError> {
    match body {
        Ok(body) => Ok(body),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            state.metrics.limit_hit(limit::FRAME_SIZE);
            let message = format!(
                "body over the limit of {} bytes",
                state.config.max_frame_bytes
            );
            Err(FrameError::new(ErrorCode::TooLarge, message))
        }
        Err(rejection) => Err(FrameError::new(ErrorCode::BadFrame, rejection.body_text())),
    }
}

/// The answer to a publish: `200 {"channel", "seq"}` or the error.
fn published(result: Result<Accepted<'_>, FrameError>) -> Response {
    match result {
        Ok((channel, seq)) => Json(Published {
            channel: &channel,
            seq,
        })
        .into_response(),
        Err(e) => frame_error_response(&e),
    }
}

async fn publish(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let grant = match state.http_publisher(&headers) {
        Ok(grant) => grant,
        Err(e) => return frame_error_response(&e),
    };
    match read_body(&state, body) {
        Ok(body) => published(publish_body(&state, &grant, &body).await),
        Err(e) => frame_error_response(&e),
    }
}

/// `POST /revalidate`: publishes `{"keys": [...]}` on `$revalidate`.
async fn revalidate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let grant = match state.http_publisher(&headers) {
        Ok(grant) => grant,
        Err(e) => return frame_error_response(&e),
    };
    match read_body(&state, body) {
        Ok(body) => published(revalidate_body(&state, &grant, &body).await),
        Err(e) => frame_error_response(&e),
    }
}

/// Reads an optional raw `scopes` field: an array of strings (`bad_event` otherwise). Their
/// lengths and count are checked with the rest of the event.
fn read_scopes<'a>(raw: Option<&'a RawValue>) -> Result<Option<Vec<Cow<'a, str>>>, FrameError> {
    raw.map(|raw| {
        serde_json::from_str::<Vec<Cow<'a, str>>>(raw.get()).map_err(|_| {
            FrameError::new(
                ErrorCode::BadEvent,
                format!(
                    "`scopes` must be an array of strings, not `{}`",
                    excerpt(raw.get())
                ),
            )
        })
    })
    .transpose()
}

/// Reads the keys of a revalidation into the payload `{"keys": [[...], ...]}`: a non-empty array
/// (at most [`MAX_REVALIDATE_KEYS`]) of arrays and strings, a string `"k"` becoming `["k"]`.
/// The keys' JSON is kept as it was sent.
pub(crate) fn revalidate_payload(keys: Option<&RawValue>) -> Result<Box<RawValue>, FrameError> {
    let bad = |message: String| FrameError::new(ErrorCode::BadEvent, message);
    let keys = keys.ok_or_else(|| bad("`keys` is missing: give an array of query keys".into()))?;
    let items: Vec<&RawValue> = serde_json::from_str(keys.get()).map_err(|_| {
        bad(format!(
            "`keys` must be an array of query keys, not `{}`",
            excerpt(keys.get())
        ))
    })?;
    if items.is_empty() {
        return Err(bad("`keys` is empty: give at least one query key".into()));
    }
    if items.len() > MAX_REVALIDATE_KEYS {
        return Err(bad(format!(
            "`keys` has {} keys, over the limit of {MAX_REVALIDATE_KEYS}",
            items.len()
        )));
    }
    let mut payload = String::with_capacity(keys.get().len() + 16);
    payload.push_str(r#"{"keys":["#);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            payload.push(',');
        }
        let text = item.get();
        match text.as_bytes().first() {
            Some(b'[') => {
                // Kept as sent, so it must read the same in every parser: no number out of
                // range (`1e400` is Infinity to some, an error to others; found by the
                // `relay_publish` fuzz target).
                if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
                    return Err(bad(format!("`keys[{i}]` is not plain JSON: {e}")));
                }
                payload.push_str(text)
            }
            Some(b'"') => {
                payload.push('[');
                payload.push_str(text);
                payload.push(']');
            }
            _ => {
                return Err(bad(format!(
                    "`keys[{i}]` must be an array or a string, not `{}`",
                    excerpt(text)
                )))
            }
        }
    }
    payload.push_str("]}");
    RawValue::from_string(payload)
        .map_err(|e| FrameError::new(ErrorCode::BadFrame, format!("`keys`: {e}")))
}

/// Validates and publishes one `POST /revalidate` body.
async fn revalidate_body<'b>(
    state: &AppState,
    grant: &Grant,
    body: &'b [u8],
) -> Result<Accepted<'b>, FrameError> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(FrameError::new(
            ErrorCode::BadFrame,
            "not a valid revalidation: the body must be a JSON object `{\"keys\": [...]}`",
        ));
    }
    let request: RevalidateBody<'b> = serde_json::from_slice(body).map_err(|e| {
        FrameError::new(
            ErrorCode::BadFrame,
            format!("not a valid revalidation (`{{\"keys\": [...]}}`): {e}"),
        )
    })?;
    let payload = revalidate_payload(request.keys)?;
    let publish = Publish {
        key: None,
        channel: Cow::Borrowed(REVALIDATE_CHANNEL),
        kind: Cow::Borrowed(REVALIDATE_TYPE),
        payload: Some(&payload),
        date: None,
        meta: None,
        scopes: read_scopes(request.scopes)?,
    };
    let (_, seq) = state.revalidate(grant, publish).await?;
    Ok((Cow::Borrowed(REVALIDATE_CHANNEL), seq))
}

/// Validates and publishes one body; returns the channel and the event's seq.
async fn publish_body<'b>(
    state: &AppState,
    grant: &Grant,
    body: &'b [u8],
) -> Result<Accepted<'b>, FrameError> {
    state.publish(grant, read_publish_body(body)?).await
}

/// Reads a `POST /publish` body into the event to validate (`bad_frame`, `bad_event`).
pub(crate) fn read_publish_body(body: &[u8]) -> Result<Publish<'_>, FrameError> {
    let event: LiveEvent<'_> = serde_json::from_slice(body)
        .map_err(|e| FrameError::new(ErrorCode::BadFrame, format!("not a valid LiveEvent: {e}")))?;
    let date = event.date.map(DateInput::read).transpose()?;
    Ok(Publish {
        key: event.key,
        channel: event.channel,
        kind: event.kind,
        payload: event.payload,
        date,
        meta: event.meta,
        scopes: read_scopes(event.scopes)?,
    })
}

#[derive(Serialize)]
struct Health<'a> {
    /// `ok`, or `unavailable` (with `503`) while the broker cannot serve.
    status: &'static str,
    /// Why not, when unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The epoch announced in `hello`.
    epoch: &'a str,
    /// `memory` or `redis`.
    broker: &'static str,
    #[serde(flatten)]
    stats: crate::broker::Stats,
    /// The PostgreSQL feed's state, with `--postgres`.
    #[serde(skip_serializing_if = "Option::is_none")]
    postgres: Option<crate::postgres::status::FeedHealth>,
}

/// `GET /healthz`: `200` with this node's counts, or `503` while its broker (Redis) is
/// unreachable, so that a load balancer sends clients to another node.
async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let health = state.broker.health();
    let epoch = state.broker.epoch();
    let body = Json(Health {
        status: if health.is_ok() { "ok" } else { "unavailable" },
        reason: health.as_ref().err().map(ToString::to_string),
        epoch: &epoch,
        broker: state.broker.kind(),
        stats: state.broker.stats(),
        postgres: state.feed.as_ref().map(|feed| feed.health()),
    });
    let status = if health.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body).into_response()
}

/// `GET /stats/channels`: the channels with at least one subscriber, with their subscriber count
/// and last seq. Channel names can be private (`users/42/…`): with authentication on, only a
/// backend holding an API key may read them.
async fn channel_stats(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match state.auth.bearer(&headers) {
        Ok(Grant::Open | Grant::ApiKey { .. }) => match state.broker.channel_stats().await {
            Ok(stats) => Json(stats).into_response(),
            Err(e) => error_response(ErrorCode::Unavailable, &e.to_string()),
        },
        Ok(Grant::Token(_) | Grant::Feed) => frame_error_response(&FrameError::new(
            ErrorCode::Forbidden,
            "`GET /stats/channels` needs an API key, not a token",
        )),
        Err(failure) => frame_error_response(&state.refuse(&failure)),
    }
}

/// `GET /metrics`: Prometheus text exposition.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let text = state.metrics.render(&state.broker.stats());
    (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(json: &str) -> Result<Box<RawValue>, FrameError> {
        let raw: &RawValue = serde_json::from_str(json).expect("test JSON");
        revalidate_payload(Some(raw))
    }

    /// Regression (fuzz target `relay_publish`): a key holding a number out of range
    /// (`[48200004e+20000000000000000000003]`) was published as is; the payload could not be
    /// read back by a strict parser.
    #[test]
    fn revalidation_keys_are_plain_json() {
        let e = keys(r#"[[""],[48200004e+20000000000000000000003 ]]"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadEvent);
        assert!(e.message.contains("`keys[1]`"), "{e}");
        let payload = keys(r#"[["posts", {"page": 1.5e3}], "users"]"#).expect("valid keys");
        let value: serde_json::Value = serde_json::from_str(payload.get()).expect("JSON");
        assert_eq!(
            value,
            serde_json::json!({ "keys": [["posts", { "page": 1500.0 }], ["users"]] })
        );
    }
}
