//! HTTP error answers: the JSON body `{"error": {"code", "message"}}` every route uses, and the
//! status each protocol error code maps to.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use live_protocol::frame::{ErrorCode, FrameError};
use serde::Serialize;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'static str,
    message: &'a str,
}

/// The HTTP status of an error code: `401 unauthorized`, `403 forbidden`, `413 too_large`,
/// `429 rate_limited` / `too_many_connections`, `503 unavailable` (with `Retry-After: 1`: not
/// published, safe to retry), `504 outcome_unknown` (maybe published: retry only with the same
/// `key`), `400` for the rest.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::RateLimited | ErrorCode::TooManyConnections => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::OutcomeUnknown => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// An HTTP error with the JSON body `{"error": {"code", "message"}}`.
pub fn error_response(code: ErrorCode, message: &str) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.as_str(),
            message,
        },
    };
    let mut response = (status_of(code), Json(body)).into_response();
    if code == ErrorCode::Unauthorized {
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
    }
    if code == ErrorCode::Unavailable {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
    }
    response
}

/// [`error_response`] of a [`FrameError`].
pub fn frame_error_response(e: &FrameError) -> Response {
    error_response(e.code, &e.message)
}
