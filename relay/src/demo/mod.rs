//! Demo mode (`--demo`): an in-memory REST API at `/api`, so that a Refine app using
//! `@refinedev/simple-rest` can run against the relay alone.
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
//! function as `POST /publish` ([`crate::AppState::publish`]).
//!
//! Errors are `{"error":{"code","message"},"message"}`: the top-level `message` is what the axios
//! interceptor of simple-rest shows.

use crate::auth::Grant;
use crate::publish::check_channel;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tower_http::cors::{Any, CorsLayer};
use wasm_live_provider::engine::frame::{excerpt, Publish};

mod token;
pub use token::{token_router, DEMO_TOKEN_TTL_SECS, DEMO_USER};

/// The header with the number of records matching a list request (before pagination).
pub const TOTAL_COUNT: &str = "x-total-count";
/// The most records one resource holds.
pub const MAX_RECORDS_PER_RESOURCE: usize = 10_000;
/// The most resources the store holds.
pub const MAX_RESOURCES: usize = 100;
/// The most bytes of JSON the store holds, over all records.
pub const MAX_STORE_BYTES: usize = 64 << 20;
/// The longest resource name, in bytes.
pub const MAX_RESOURCE_NAME_LEN: usize = 64;
/// The `meta` of the events the demo API publishes.
pub const EVENT_META: &str = r#"{"source":"demo-api"}"#;
/// How many records a `_page` holds without `_limit` (json-server's default).
const DEFAULT_PAGE_SIZE: usize = 10;

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

    fn store_full(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "store_full", message)
    }

    fn no_record(resource: &str, id: &str) -> Self {
        ApiError::not_found(format!(
            "{resource} has no record with id \"{}\"",
            excerpt(id)
        ))
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

/// The demo API's records.
#[derive(Debug, Default)]
pub struct Store {
    tables: Mutex<Tables>,
}

#[derive(Debug, Default)]
struct Tables {
    resources: BTreeMap<String, Resource>,
    /// The size of all records, serialized.
    bytes: usize,
}

#[derive(Debug, Default)]
struct Resource {
    records: BTreeMap<u64, Value>,
    /// The id of the next record: one more than the largest ever given, so that a deleted id is
    /// never given again.
    next_id: u64,
}

impl Store {
    /// The store of a fresh demo: 12 `posts` and 4 `categories`.
    pub fn seeded() -> Store {
        let mut tables = Tables::default();
        for (id, title) in CATEGORIES.iter().enumerate() {
            tables.seed("categories", json!({ "id": id + 1, "title": title }));
        }
        for (i, (title, content, status, category, created_at)) in POSTS.iter().enumerate() {
            let post = json!({
                "id": i + 1,
                "title": title,
                "content": content,
                "status": status,
                "category": { "id": category },
                "createdAt": created_at,
            });
            tables.seed("posts", post);
        }
        Store {
            tables: Mutex::new(tables),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // Every change is checked before it is made: a panic cannot leave a half-made change.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many records a resource holds (0 for an unknown one).
    pub fn len(&self, resource: &str) -> usize {
        self.lock()
            .resources
            .get(resource)
            .map_or(0, |r| r.records.len())
    }

    /// Whether the store holds no record at all.
    pub fn is_empty(&self) -> bool {
        self.lock().resources.values().all(|r| r.records.is_empty())
    }
}

const CATEGORIES: [&str; 4] = ["Technology", "Engineering", "Travel", "Food"];

/// `(title, content, status, category id, createdAt)`.
const POSTS: [(&str, &str, &str, u64, &str); 12] = [
    (
        "Welcome to the live demo",
        "Open this page in two windows: what you change in one shows up in the other.",
        "published",
        1,
        "2025-01-06T09:00:00Z",
    ),
    (
        "Two windows, one list",
        "Every create, edit and delete is published on resources/posts and refetched elsewhere.",
        "published",
        1,
        "2025-01-13T10:30:00Z",
    ),
    (
        "How the relay numbers events",
        "Each channel counts its events, so a client knows exactly what it missed.",
        "published",
        2,
        "2025-01-20T14:15:00Z",
    ),
    (
        "Resuming after a dropped connection",
        "A client coming back asks for the events after the last seq it saw.",
        "draft",
        2,
        "2025-02-03T08:45:00Z",
    ),
    (
        "A week of hiking in the Dolomites",
        "Seven huts, two thunderstorms and far too much polenta.",
        "published",
        3,
        "2025-02-17T16:00:00Z",
    ),
    (
        "Night trains across Europe",
        "From Vienna to Brussels while asleep: a guide to couchettes.",
        "rejected",
        3,
        "2025-03-02T21:20:00Z",
    ),
    (
        "Sourdough for the impatient",
        "A loaf in one day, starting from a starter you already have.",
        "published",
        4,
        "2025-03-16T07:10:00Z",
    ),
    (
        "Ten-minute tomato soup",
        "Tinned tomatoes, an onion, butter, and a blender.",
        "draft",
        4,
        "2025-04-01T12:00:00Z",
    ),
    (
        "Why WebAssembly for a live provider",
        "One engine in Rust, the same in the browser and in the tests.",
        "published",
        1,
        "2025-04-14T09:40:00Z",
    ),
    (
        "Measuring what a browser tab costs",
        "Memory, wake-ups and bytes on the wire of a page left open all day.",
        "draft",
        2,
        "2025-05-05T11:25:00Z",
    ),
    (
        "Packing light for a city break",
        "Everything you need for four days fits under the seat in front of you.",
        "published",
        3,
        "2025-05-19T18:05:00Z",
    ),
    (
        "The perfect cup of filter coffee",
        "Fresh beans, a scale and water just off the boil.",
        "rejected",
        4,
        "2025-06-02T06:50:00Z",
    ),
];

impl Tables {
    /// Adds a record with its id (seed data only).
    fn seed(&mut self, resource: &str, record: Value) {
        let Some(id) = record.get("id").and_then(Value::as_u64) else {
            return;
        };
        let table = self.resources.entry(resource.to_owned()).or_default();
        self.bytes += size_of(&record);
        table.records.insert(id, record);
        table.next_id = table.next_id.max(id + 1);
    }

    /// The page of matching records and how many match.
    fn list(&self, resource: &str, query: &ListQuery) -> (Vec<Value>, usize) {
        let Some(table) = self.resources.get(resource) else {
            return (Vec::new(), 0);
        };
        let mut found: Vec<&Value> = table
            .records
            .values()
            .filter(|record| query.matches(record))
            .collect();
        if !query.sort.is_empty() {
            // Stable: records that compare equal stay in id order.
            found.sort_by(|a, b| query.compare(a, b));
        }
        let total = found.len();
        let start = query.start.min(total);
        let end = query.end.unwrap_or(total).clamp(start, total);
        let page = found[start..end].iter().map(|&r| r.clone()).collect();
        (page, total)
    }

    fn get(&self, resource: &str, id: &str) -> Result<Value, ApiError> {
        parse_id(id)
            .and_then(|id| self.resources.get(resource)?.records.get(&id))
            .cloned()
            .ok_or_else(|| ApiError::no_record(resource, id))
    }

    /// Creates a record with the next id; returns it.
    fn create(
        &mut self,
        resource: &str,
        mut fields: Map<String, Value>,
    ) -> Result<Value, ApiError> {
        let (records, next_id) = match self.resources.get(resource) {
            Some(table) => (table.records.len(), table.next_id),
            None if self.resources.len() >= MAX_RESOURCES => {
                return Err(ApiError::store_full(format!(
                    "cannot create resource {resource}: the demo store already holds \
                     {MAX_RESOURCES} resources"
                )))
            }
            None => (0, 1),
        };
        if records >= MAX_RECORDS_PER_RESOURCE {
            return Err(ApiError::store_full(format!(
                "{resource} already holds {MAX_RECORDS_PER_RESOURCE} records, the most a demo \
                 resource may hold: delete some first"
            )));
        }
        let id = next_id.max(1);
        fields.insert("id".to_owned(), Value::from(id));
        let record = Value::Object(fields);
        let size = size_of(&record);
        self.check_bytes(0, size)?;
        let table = self.resources.entry(resource.to_owned()).or_default();
        table.records.insert(id, record.clone());
        table.next_id = id + 1;
        self.bytes += size;
        Ok(record)
    }

    /// Merges `fields` into a record, or replaces it with them; the `id` stays. Returns the new
    /// record.
    fn update(
        &mut self,
        resource: &str,
        id: &str,
        fields: Map<String, Value>,
        replace: bool,
    ) -> Result<(u64, Value), ApiError> {
        let Some((key, record)) = parse_id(id).and_then(|key| {
            let record = self.resources.get(resource)?.records.get(&key)?;
            Some((key, record))
        }) else {
            return Err(ApiError::no_record(resource, id));
        };
        let mut merged = match (replace, record) {
            (false, Value::Object(old)) => old.clone(),
            _ => Map::new(),
        };
        merged.extend(fields.into_iter().filter(|(k, _)| k != "id"));
        merged.insert("id".to_owned(), Value::from(key));
        let updated = Value::Object(merged);
        let (before, after) = (size_of(record), size_of(&updated));
        self.check_bytes(before, after)?;
        if let Some(slot) = self
            .resources
            .get_mut(resource)
            .and_then(|t| t.records.get_mut(&key))
        {
            *slot = updated.clone();
            self.bytes = self.bytes - before + after;
        }
        Ok((key, updated))
    }

    /// Removes a record; returns it.
    fn remove(&mut self, resource: &str, id: &str) -> Result<(u64, Value), ApiError> {
        let removed = parse_id(id).and_then(|key| {
            let record = self.resources.get_mut(resource)?.records.remove(&key)?;
            Some((key, record))
        });
        let Some((key, record)) = removed else {
            return Err(ApiError::no_record(resource, id));
        };
        self.bytes = self.bytes.saturating_sub(size_of(&record));
        Ok((key, record))
    }

    /// Refuses a change that would take the store over [`MAX_STORE_BYTES`].
    fn check_bytes(&self, removed: usize, added: usize) -> Result<(), ApiError> {
        if self.bytes.saturating_sub(removed).saturating_add(added) > MAX_STORE_BYTES {
            return Err(ApiError::store_full(format!(
                "the demo store is full: its records may take {MAX_STORE_BYTES} bytes of JSON in \
                 all: delete some first"
            )));
        }
        Ok(())
    }
}

/// The size of a record, serialized.
fn size_of(record: &Value) -> usize {
    serde_json::to_vec(record).map_or(0, |bytes| bytes.len())
}

/// A record id as the path gives it: a whole number.
fn parse_id(id: &str) -> Option<u64> {
    id.parse().ok()
}

/// The channel a resource's changes are published on.
pub fn channel_of(resource: &str) -> String {
    format!("resources/{resource}")
}

/// A resource name: letters, digits, `-` and `_`.
fn check_resource(resource: &str) -> Result<(), ApiError> {
    let valid = !resource.is_empty()
        && resource.len() <= MAX_RESOURCE_NAME_LEN
        && resource
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "resource name \"{}\" is not valid: use 1 to {MAX_RESOURCE_NAME_LEN} letters, digits, \
             `-` or `_`",
            excerpt(resource)
        )))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gte,
    Lte,
    Like,
}

/// One filter of a list request: a field, an operator and the values it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Filter {
    field: String,
    op: Op,
    values: Vec<String>,
}

/// The query of `GET /api/{resource}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ListQuery {
    start: usize,
    end: Option<usize>,
    /// Fields to sort by, each with `true` for descending.
    sort: Vec<(String, bool)>,
    filters: Vec<Filter>,
    /// Full-text search, lowercased.
    q: Option<String>,
}

fn whole_number(name: &str, value: &str) -> Result<usize, ApiError> {
    value.trim().parse().map_err(|_| {
        ApiError::bad_request(format!(
            "`{name}` must be a whole number, not \"{}\"",
            excerpt(value)
        ))
    })
}

impl ListQuery {
    fn parse(pairs: &[(String, String)]) -> Result<ListQuery, ApiError> {
        let (mut start, mut end, mut limit, mut page) = (None, None, None, None);
        let (mut sort, mut order) = (None, None);
        let mut query = ListQuery::default();
        for (key, value) in pairs {
            match key.as_str() {
                "_start" => start = Some(whole_number(key, value)?),
                "_end" => end = Some(whole_number(key, value)?),
                "_limit" => limit = Some(whole_number(key, value)?),
                "_page" => page = Some(whole_number(key, value)?),
                "_sort" => sort = Some(value.as_str()),
                "_order" => order = Some(value.as_str()),
                "q" => query.q = Some(value.trim().to_lowercase()).filter(|q| !q.is_empty()),
                // json-server's _embed, _expand, ... and cache busters: not supported, ignored.
                _ if key.starts_with('_') => {}
                _ => query.add_filter(key, value),
            }
        }
        if let Some(page) = page {
            let size = limit.unwrap_or(DEFAULT_PAGE_SIZE);
            query.start = page.saturating_sub(1).saturating_mul(size);
            query.end = Some(query.start.saturating_add(size));
        } else {
            query.start = start.unwrap_or(0);
            query.end = end.or(limit.map(|l| query.start.saturating_add(l)));
        }
        let fields = sort.into_iter().flat_map(|s| s.split(','));
        let mut orders = order.into_iter().flat_map(|o| o.split(','));
        for field in fields {
            let descending = match orders.next().map(str::trim) {
                None | Some("") => false,
                Some(o) if o.eq_ignore_ascii_case("asc") => false,
                Some(o) if o.eq_ignore_ascii_case("desc") => true,
                Some(o) => {
                    return Err(ApiError::bad_request(format!(
                        "`_order` must be `asc` or `desc` for each `_sort` field, not \"{}\"",
                        excerpt(o)
                    )))
                }
            };
            let field = field.trim();
            if !field.is_empty() {
                query.sort.push((field.to_owned(), descending));
            }
        }
        Ok(query)
    }

    fn add_filter(&mut self, key: &str, value: &str) {
        let (field, op) = [
            ("_like", Op::Like),
            ("_ne", Op::Ne),
            ("_gte", Op::Gte),
            ("_lte", Op::Lte),
        ]
        .into_iter()
        .find_map(|(suffix, op)| Some((key.strip_suffix(suffix)?, op)))
        .filter(|(field, _)| !field.is_empty())
        .unwrap_or((key, Op::Eq));
        match self
            .filters
            .iter_mut()
            .find(|f| f.field == field && f.op == op)
        {
            Some(filter) => filter.values.push(value.to_owned()),
            None => self.filters.push(Filter {
                field: field.to_owned(),
                op,
                values: vec![value.to_owned()],
            }),
        }
    }

    /// Every filter holds (a field given several values matches any of them; `_ne` none of them)
    /// and the record contains `q`.
    fn matches(&self, record: &Value) -> bool {
        self.filters.iter().all(|filter| {
            let value = lookup(record, &filter.field);
            match filter.op {
                Op::Ne => filter
                    .values
                    .iter()
                    .all(|v| !value.is_some_and(|x| equals(x, v))),
                op => value.is_some_and(|x| filter.values.iter().any(|v| holds(op, x, v))),
            }
        }) && match &self.q {
            Some(q) => contains_text(record, q),
            None => true,
        }
    }

    fn compare(&self, a: &Value, b: &Value) -> Ordering {
        self.sort
            .iter()
            .map(|(field, descending)| {
                let order = compare_values(lookup(a, field), lookup(b, field));
                if *descending {
                    order.reverse()
                } else {
                    order
                }
            })
            .find(|order| order.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

/// The value at a dotted path (`category.id`, `tags.0`).
fn lookup<'v>(record: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(record, |value, part| match value {
        Value::Object(map) => map.get(part),
        Value::Array(items) => items.get(part.parse::<usize>().ok()?),
        _ => None,
    })
}

/// A scalar as query text: strings as they are, numbers and booleans written out.
fn as_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Null => Some(Cow::Borrowed("null")),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// Whether a value equals a query value (`"1"` equals `1` and `1.0`); an array equals a query
/// value when one of its items does.
fn equals(value: &Value, wanted: &str) -> bool {
    match value {
        Value::Number(n) => match (n.as_f64(), wanted.trim().parse::<f64>()) {
            (Some(a), Ok(b)) => a == b,
            _ => n.to_string() == wanted,
        },
        Value::Array(items) => items
            .iter()
            .any(|item| !item.is_array() && equals(item, wanted)),
        other => as_text(other).is_some_and(|text| text == wanted),
    }
}

fn holds(op: Op, value: &Value, wanted: &str) -> bool {
    match op {
        Op::Eq => equals(value, wanted),
        Op::Ne => !equals(value, wanted),
        Op::Like => match value {
            Value::Array(items) => items.iter().any(|item| holds(op, item, wanted)),
            other => as_text(other)
                .is_some_and(|text| text.to_lowercase().contains(&wanted.to_lowercase())),
        },
        Op::Gte | Op::Lte => {
            let order = match (value, wanted.trim().parse::<f64>()) {
                (Value::Number(n), Ok(b)) => n.as_f64().and_then(|a| a.partial_cmp(&b)),
                (Value::Array(_) | Value::Object(_), _) => None,
                (other, _) => as_text(other).map(|text| text.as_ref().cmp(wanted)),
            };
            match (op, order) {
                (_, None) => false,
                (Op::Gte, Some(order)) => order.is_ge(),
                (_, Some(order)) => order.is_le(),
            }
        }
    }
}

/// Whether a string or number anywhere in the value contains `q` (lowercase), ignoring case.
fn contains_text(value: &Value, q: &str) -> bool {
    match value {
        Value::String(s) => s.to_lowercase().contains(q),
        Value::Number(n) => n.to_string().contains(q),
        Value::Array(items) => items.iter().any(|item| contains_text(item, q)),
        Value::Object(map) => map.values().any(|item| contains_text(item, q)),
        Value::Bool(_) | Value::Null => false,
    }
}

/// Sort order: missing and null first, then booleans, numbers, strings, arrays, objects.
fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(value: Option<&Value>) -> u8 {
        match value {
            None | Some(Value::Null) => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            Some(Value::Array(_)) => 4,
            Some(Value::Object(_)) => 5,
        }
    }
    match (a, b) {
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn store(state: &AppState) -> Result<&Store, ApiError> {
    state
        .demo
        .as_ref()
        .ok_or_else(|| ApiError::not_found("the demo API is off: start the relay with --demo"))
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
fn announce(state: &AppState, resource: &str, kind: &'static str, id: u64) {
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
    // The demo API is the backend here: it publishes with a backend's rights.
    if let Err(e) = state.publish(&Grant::ApiKey { index: 0 }, event) {
        tracing::warn!(resource, kind, id, "demo API: the event was refused: {e}");
    }
}

/// `GET /api/{resource}`.
async fn list(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let resource = resource_of(path)?;
    let Query(pairs) =
        query.map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))?;
    let query = ListQuery::parse(&pairs)?;
    let (page, total) = store.lock().list(&resource, &query);
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
    let store = store(&state)?;
    let (resource, id) = record_of(path)?;
    let record = store.lock().get(&resource, &id)?;
    Ok(Json(record))
}

/// `POST /api/{resource}`.
async fn create(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let store = store(&state)?;
    let resource = resource_of(path)?;
    check_channel_of(&state, &resource)?;
    let fields = object_body(&state, body)?;
    let mut tables = store.lock();
    let record = tables.create(&resource, fields)?;
    let id = record.get("id").and_then(Value::as_u64).unwrap_or_default();
    // Published before the lock is released: events come in the order of the changes.
    announce(&state, &resource, "created", id);
    drop(tables);
    Ok((StatusCode::CREATED, Json(record)))
}

async fn change(
    state: &AppState,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
    replace: bool,
) -> Result<Json<Value>, ApiError> {
    let store = store(state)?;
    let (resource, id) = record_of(path)?;
    check_channel_of(state, &resource)?;
    let fields = object_body(state, body)?;
    let mut tables = store.lock();
    let (id, record) = tables.update(&resource, &id, fields, replace)?;
    announce(state, &resource, "updated", id);
    drop(tables);
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
    let store = store(&state)?;
    let (resource, id) = record_of(path)?;
    check_channel_of(&state, &resource)?;
    let mut tables = store.lock();
    let (id, record) = tables.remove(&resource, &id)?;
    announce(&state, &resource, "deleted", id);
    drop(tables);
    Ok(Json(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> Result<ListQuery, ApiError> {
        ListQuery::parse(&pairs(text))
    }

    /// A query string without percent-escapes, as pairs.
    fn pairs(text: &str) -> Vec<(String, String)> {
        text.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (p.to_owned(), String::new()),
            })
            .collect()
    }

    fn ids(store: &Store, resource: &str, text: &str) -> (Vec<u64>, usize) {
        let (page, total) = store
            .lock()
            .list(resource, &query(text).expect("valid query"));
        let ids = page.iter().filter_map(|r| r["id"].as_u64()).collect();
        (ids, total)
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn the_seed_has_posts_and_categories() {
        let store = Store::seeded();
        assert_eq!(store.len("posts"), 12);
        assert_eq!(store.len("categories"), 4);
        assert_eq!(store.len("users"), 0);
        let tables = store.lock();
        let post = tables.get("posts", "1").expect("post 1");
        assert_eq!(post["category"]["id"], 1);
        let statuses: std::collections::BTreeSet<&str> = tables.resources["posts"]
            .records
            .values()
            .filter_map(|p| p["status"].as_str())
            .collect();
        assert_eq!(
            statuses.into_iter().collect::<Vec<_>>(),
            ["draft", "published", "rejected"]
        );
        assert_eq!(
            tables.bytes,
            tables
                .resources
                .values()
                .flat_map(|r| r.records.values())
                .map(size_of)
                .sum::<usize>()
        );
    }

    #[test]
    fn lists_filter_sort_and_paginate() {
        let store = Store::seeded();
        assert_eq!(ids(&store, "posts", "_start=0&_end=3"), (vec![1, 2, 3], 12));
        assert_eq!(
            ids(&store, "posts", "_start=10&_end=20"),
            (vec![11, 12], 12)
        );
        assert_eq!(ids(&store, "posts", "_start=20&_end=30"), (vec![], 12));
        assert_eq!(
            ids(&store, "posts", "_page=2&_limit=5"),
            (vec![6, 7, 8, 9, 10], 12)
        );
        assert_eq!(
            ids(&store, "posts", "_sort=id&_order=desc&_start=0&_end=2"),
            (vec![12, 11], 12)
        );
        assert_eq!(
            ids(
                &store,
                "posts",
                "_sort=category.id,id&_order=desc,asc&_end=4"
            ),
            (vec![7, 8, 12, 5], 12)
        );
        assert_eq!(ids(&store, "posts", "id=3&id=1&id=99"), (vec![1, 3], 2));
        assert_eq!(ids(&store, "posts", "status=rejected"), (vec![6, 12], 2));
        assert_eq!(
            ids(&store, "posts", "status=rejected&category.id=4"),
            (vec![12], 1)
        );
        assert_eq!(ids(&store, "posts", "title_like=NIGHT"), (vec![6], 1));
        assert_eq!(ids(&store, "posts", "id_gte=11"), (vec![11, 12], 2));
        assert_eq!(ids(&store, "posts", "id_lte=2"), (vec![1, 2], 2));
        assert_eq!(
            ids(&store, "posts", "status_ne=published&status_ne=draft"),
            (vec![6, 12], 2)
        );
        assert_eq!(ids(&store, "posts", "q=polenta"), (vec![5], 1));
        assert_eq!(ids(&store, "posts", "_embed=comments&_=123").1, 12);
        assert_eq!(ids(&store, "nothing", ""), (vec![], 0));
    }

    #[test]
    fn bad_queries_name_the_parameter() {
        let e = query("_start=x").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("`_start`"), "{e:?}");
        let e = query("_sort=id&_order=sideways").unwrap_err();
        assert!(e.message.contains("`_order`"), "{e:?}");
    }

    #[test]
    fn create_update_and_remove() {
        let store = Store::seeded();
        let mut tables = store.lock();
        let post = tables
            .create("posts", object(json!({ "id": 1, "title": "New" })))
            .expect("created");
        assert_eq!(post, json!({ "id": 13, "title": "New" }));
        let (id, patched) = tables
            .update(
                "posts",
                "13",
                object(json!({ "status": "draft", "id": 7 })),
                false,
            )
            .expect("patched");
        assert_eq!(id, 13);
        assert_eq!(
            patched,
            json!({ "id": 13, "title": "New", "status": "draft" })
        );
        let (_, replaced) = tables
            .update("posts", "13", object(json!({ "title": "Only" })), true)
            .expect("replaced");
        assert_eq!(replaced, json!({ "id": 13, "title": "Only" }));
        assert_eq!(tables.remove("posts", "13").expect("removed").1, replaced);
        let next = tables.create("posts", Map::new()).expect("created");
        assert_eq!(next["id"], 14, "a deleted id is not given again");

        for missing in ["13", "abc", "-1", ""] {
            let e = tables.get("posts", missing).unwrap_err();
            assert_eq!(e.status, StatusCode::NOT_FOUND, "{missing}");
            let e = tables.remove("posts", missing).unwrap_err();
            assert_eq!(e.status, StatusCode::NOT_FOUND, "{missing}");
        }
        let first = tables.create("tags", Map::new()).expect("new resource");
        assert_eq!(first, json!({ "id": 1 }));
    }

    #[test]
    fn the_caps_are_enforced() {
        let mut tables = Tables::default();
        for i in 0..MAX_RECORDS_PER_RESOURCE {
            tables.seed("full", json!({ "id": i + 1 }));
        }
        let e = tables.create("full", Map::new()).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::PAYLOAD_TOO_LARGE, "store_full")
        );
        for i in 0..MAX_RESOURCES - 1 {
            tables.seed(&format!("r{i}"), json!({ "id": 1 }));
        }
        assert!(tables.create("r0", Map::new()).is_ok());
        let e = tables.create("one-too-many", Map::new()).unwrap_err();
        assert!(e.message.contains("resources"), "{e:?}");
        tables.bytes = MAX_STORE_BYTES - 5;
        let e = tables
            .create("r1", object(json!({ "title": "too much" })))
            .unwrap_err();
        assert_eq!(e.code, "store_full");
    }

    #[test]
    fn resource_names_are_checked() {
        assert!(check_resource("blog_posts-2").is_ok());
        for bad in [
            "",
            "a b",
            "a/b",
            "é",
            &"x".repeat(MAX_RESOURCE_NAME_LEN + 1),
        ] {
            assert_eq!(
                check_resource(bad).map_err(|e| e.status),
                Err(StatusCode::BAD_REQUEST),
                "{bad:?}"
            );
        }
    }
}
