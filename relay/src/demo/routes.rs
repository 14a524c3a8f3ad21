//! The HTTP side of the demo API at `/api` (`--demo`), so that a Refine app using
//! `@refinedev/simple-rest` can run against the relay alone: the handlers read and change the
//! [`Store`], publish every change, and turn [`StoreError`]s and [`QueryError`]s into statuses.
//!
//! It follows the json-server conventions that data provider uses:
//!
//! - `GET /api/{resource}`: the records as a JSON array, with the number of matching records in
//!   the `x-total-count` header. Query parameters: `_start`, `_end` (or `_limit`, or `_page` and
//!   `_limit`), `_sort=a,b` with `_order=asc,desc`, filters `field=value` (repeat a field to accept
//!   any of several values: `id=1&id=2` is getMany), `field_ne`, `field_gte`, `field_lte`,
//!   `field_like` (case-insensitive substring), and `q` (full text). A field may be a dotted path
//!   (`category.id=2`). Other parameters starting with `_` are ignored.
//! - `GET /api/{resource}/{id}`: one record.
//! - `POST /api/{resource}`: creates a record from a JSON object; it gets the next integer `id`
//!   (201).
//! - `PATCH` / `PUT /api/{resource}/{id}`: merges the object into the record / replaces it.
//! - `DELETE /api/{resource}/{id}`: removes the record and answers it.
//!
//! Every change is then published on channel `resources/{resource}` as `created`, `updated` or
//! `deleted` with payload `{"ids":[id]}` and meta `{"source":"demo-api"}`, through the same
//! function as `POST /publish` ([`crate::state::AppState::publish`]).
//!
//! On PostgreSQL (`--demo --postgres <url>`, [`PgStore`]) only `posts` and `categories` exist
//! (another resource is `404 not_found`), and the routes publish nothing: the tables' triggers do,
//! for a change through this API or from `psql` alike (without the meta). A database that cannot
//! be reached or fails is `503 unavailable` with the reason; a value a column cannot take is `400
//! bad_request`.
//!
//! Errors are `{"error":{"code","message"},"message"}`: the top-level `message` is what the axios
//! interceptor of simple-rest shows. A missing record is `404 not_found`, a full store `413
//! store_full`, a body over the limit `413 too_large`, anything else malformed `400 bad_request`.

use super::pg_store::{PgStore, PgStoreError};
use super::query::{ListQuery, QueryError};
use super::store::{check_resource, Store, StoreError};
use super::Backend;
use crate::auth::Grant;
use crate::publish::check_channel;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use live_protocol::frame::Publish;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::sync::Arc;
use tower_http::cors::{Any, CorsLayer};

/// The header with the number of records matching a list request (before pagination).
pub const TOTAL_COUNT: &str = "x-total-count";
/// The `meta` of the events the demo API publishes.
pub const EVENT_META: &str = r#"{"source":"demo-api"}"#;

/// The routes, to be nested at `/api`. Bodies are limited to `max_body_bytes`.
pub fn router(max_body_bytes: usize) -> Router<Arc<AppState>> {
    // The demo app may be served from another origin (a Vite dev server); it reads the total
    // count from a header, which must be exposed.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(Any)
        .expose_headers([HeaderName::from_static(TOTAL_COUNT)]);
    Router::new()
        .route("/{resource}", get(list).post(create))
        .route(
            "/{resource}/{id}",
            get(get_one).put(replace).patch(update).delete(remove),
        )
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(cors)
}

/// An error answer of the demo API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn too_large(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": { "code": self.code, "message": self.message },
            "message": self.message,
        });
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    /// `404 not_found` for a missing record, `413 store_full` when the store is full, `400
    /// bad_request` for a bad resource name.
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        match e {
            StoreError::NoRecord { .. } => ApiError::not_found(message),
            StoreError::BadResourceName { .. } => ApiError::bad_request(message),
            StoreError::TooManyResources { .. }
            | StoreError::TooManyRecords { .. }
            | StoreError::TooManyBytes => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "store_full", message)
            }
        }
    }
}

impl From<PgStoreError> for ApiError {
    /// `404 not_found` for a missing record or table, `400 bad_request` for a value PostgreSQL
    /// refused, `503 unavailable` when it cannot be reached or fails.
    fn from(e: PgStoreError) -> Self {
        let message = e.to_string();
        match e {
            PgStoreError::NoTable { .. } | PgStoreError::NoRecord { .. } => {
                ApiError::not_found(message)
            }
            PgStoreError::BadValue { .. } => ApiError::bad_request(message),
            PgStoreError::Unavailable { .. } | PgStoreError::Setup { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
        }
    }
}

impl From<QueryError> for ApiError {
    /// `400 bad_request`.
    fn from(e: QueryError) -> Self {
        ApiError::bad_request(e.message)
    }
}

/// The channel a resource's changes are published on.
pub fn channel_of(resource: &str) -> String {
    format!("resources/{resource}")
}

/// Where the records are.
enum Records<'a> {
    Memory(&'a Store),
    Postgres(&'a PgStore),
}

fn records(state: &AppState) -> Result<Records<'_>, ApiError> {
    match state.demo.as_ref() {
        Some(Backend::Memory(store)) => Ok(Records::Memory(store)),
        Some(Backend::Postgres(store)) => Ok(Records::Postgres(store)),
        None => Err(ApiError::not_found(
            "the demo API is off: start the relay with --demo",
        )),
    }
}

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::bad_request(format!("bad path: {}", rejection.body_text()))
}

/// The resource of the path, checked.
fn resource_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(resource) = path.map_err(path_error)?;
    check_resource(&resource)?;
    Ok(resource)
}

/// The resource and id of the path, checked.
fn record_of(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(String, String), ApiError> {
    let Path((resource, id)) = path.map_err(path_error)?;
    check_resource(&resource)?;
    Ok((resource, id))
}

/// Refuses a change to a resource whose channel the relay would refuse.
fn check_channel_of(state: &AppState, resource: &str) -> Result<(), ApiError> {
    check_channel(&channel_of(resource), &state.limits()).map_err(|e| {
        ApiError::bad_request(format!(
            "changes to {resource} are published on {}, which the relay refuses: {}",
            channel_of(resource),
            e.message
        ))
    })
}

/// The body of a create or update: a JSON object.
fn object_body(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, ApiError> {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ApiError::too_large(format!(
                "body over the limit of {} bytes",
                state.config.max_frame_bytes
            )))
        }
        Err(rejection) => return Err(ApiError::bad_request(rejection.body_text())),
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the body is empty: send a JSON object",
        ));
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    match value {
        Value::Object(fields) => Ok(fields),
        other => {
            let kind = match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            };
            Err(ApiError::bad_request(format!(
                "the body must be a JSON object, not {kind}"
            )))
        }
    }
}

/// Publishes a change, as `POST /publish` would.
async fn announce(state: &AppState, resource: &str, kind: &'static str, id: u64) {
    let payload = match serde_json::value::to_raw_value(&json!({ "ids": [id] })) {
        Ok(payload) => payload,
        Err(e) => {
            tracing::warn!(
                resource,
                kind,
                id,
                "demo API: no payload for the event: {e}"
            );
            return;
        }
    };
    let meta: Option<&RawValue> = serde_json::from_str(EVENT_META).ok();
    let event = Publish {
        key: None,
        channel: Cow::Owned(channel_of(resource)),
        kind: Cow::Borrowed(kind),
        payload: Some(&payload),
        date: None,
        meta,
        scopes: None,
    };
    // The demo API is the backend here: it publishes with a backend's rights (it sends no key, so
    // its publisher name is never used).
    let backend = Grant::ApiKey {
        digest: Arc::from("demo-api"),
    };
    if let Err(e) = state.publish(&backend, event).await {
        tracing::warn!(resource, kind, id, "demo API: the event was refused: {e}");
    }
}

/// `GET /api/{resource}`.
async fn list(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let records = records(&state)?;
    let resource = resource_of(path)?;
    let Query(pairs) =
        query.map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))?;
    let query = ListQuery::parse(&pairs)?;
    let (page, total) = match records {
        Records::Memory(store) => query.select(store.lock().records(&resource)),
        Records::Postgres(store) => query.select(store.list(&resource).await?.iter()),
    };
    let mut response = Json(page).into_response();
    response
        .headers_mut()
        .insert(TOTAL_COUNT, HeaderValue::from(total));
    Ok(response)
}

/// `GET /api/{resource}/{id}`.
async fn get_one(
    State(state): State<Arc<AppState>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let records = records(&state)?;
    let (resource, id) = record_of(path)?;
    let record = match records {
        Records::Memory(store) => store.lock().get(&resource, &id)?,
        Records::Postgres(store) => store.get(&resource, &id).await?,
    };
    Ok(Json(record))
}

/// `POST /api/{resource}`.
async fn create(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let records = records(&state)?;
    let resource = resource_of(path)?;
    check_channel_of(&state, &resource)?;
    let fields = object_body(&state, body)?;
    let store = match records {
        Records::Memory(store) => store,
        Records::Postgres(store) => {
            // The trigger publishes it.
            let record = store.create(&resource, fields).await?;
            return Ok((StatusCode::CREATED, Json(record)));
        }
    };
    let changing = store.changes.lock().await;
    let record = store.lock().create(&resource, fields)?;
    let id = record.get("id").and_then(Value::as_u64).unwrap_or_default();
    // Published before the next change is made: events come in the order of the changes.
    announce(&state, &resource, "created", id).await;
    drop(changing);
    Ok((StatusCode::CREATED, Json(record)))
}

async fn change(
    state: &AppState,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
    replace: bool,
) -> Result<Json<Value>, ApiError> {
    let records = records(state)?;
    let (resource, id) = record_of(path)?;
    check_channel_of(state, &resource)?;
    let fields = object_body(state, body)?;
    let store = match records {
        Records::Memory(store) => store,
        Records::Postgres(store) => {
            return Ok(Json(store.update(&resource, &id, fields, replace).await?));
        }
    };
    let changing = store.changes.lock().await;
    let (id, record) = store.lock().update(&resource, &id, fields, replace)?;
    announce(state, &resource, "updated", id).await;
    drop(changing);
    Ok(Json(record))
}

/// `PATCH /api/{resource}/{id}`: merges the body into the record.
async fn update(
    State(state): State<Arc<AppState>>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    change(&state, path, body, false).await
}

/// `PUT /api/{resource}/{id}`: replaces the record with the body.
async fn replace(
    State(state): State<Arc<AppState>>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    change(&state, path, body, true).await
}

/// `DELETE /api/{resource}/{id}`: answers the deleted record.
async fn remove(
    State(state): State<Arc<AppState>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let records = records(&state)?;
    let (resource, id) = record_of(path)?;
    check_channel_of(&state, &resource)?;
    let store = match records {
        Records::Memory(store) => store,
        Records::Postgres(store) => return Ok(Json(store.remove(&resource, &id).await?)),
    };
    let changing = store.changes.lock().await;
    let (id, record) = store.lock().remove(&resource, &id)?;
    announce(&state, &resource, "deleted", id).await;
    drop(changing);
    Ok(Json(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_get_their_status_and_code() {
        let cases = [
            (
                StoreError::NoRecord {
                    resource: "posts".into(),
                    id: "99".into(),
                },
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                StoreError::BadResourceName { name: "a.b".into() },
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                StoreError::TooManyRecords {
                    resource: "posts".into(),
                },
                StatusCode::PAYLOAD_TOO_LARGE,
                "store_full",
            ),
            (
                StoreError::TooManyResources {
                    resource: "tags".into(),
                },
                StatusCode::PAYLOAD_TOO_LARGE,
                "store_full",
            ),
            (
                StoreError::TooManyBytes,
                StatusCode::PAYLOAD_TOO_LARGE,
                "store_full",
            ),
        ];
        for (e, status, code) in cases {
            let message = e.to_string();
            assert_eq!(
                ApiError::from(e),
                ApiError {
                    status,
                    code,
                    message
                }
            );
        }
    }

    #[test]
    fn query_errors_are_bad_requests_with_their_message() {
        let e = ListQuery::parse(&[("_start".into(), "x".into())]).unwrap_err();
        let api = ApiError::from(e.clone());
        assert_eq!(
            (api.status, api.code, api.message),
            (StatusCode::BAD_REQUEST, "bad_request", e.message)
        );
    }

    #[test]
    fn channels_are_named_after_resources() {
        assert_eq!(channel_of("posts"), "resources/posts");
    }
}
