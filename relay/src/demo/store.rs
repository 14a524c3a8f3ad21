//! The demo API's records: an in-memory store of JSON objects per resource, with integer ids and
//! caps on its size. It knows nothing of HTTP: it answers [`StoreError`]s, which the routes turn
//! into statuses.

use live_protocol::frame::excerpt;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

/// The most records one resource holds.
pub const MAX_RECORDS_PER_RESOURCE: usize = 10_000;
/// The most resources the store holds.
pub const MAX_RESOURCES: usize = 100;
/// The most bytes of JSON the store holds, over all records.
pub const MAX_STORE_BYTES: usize = 64 << 20;
/// The longest resource name, in bytes.
pub const MAX_RESOURCE_NAME_LEN: usize = 64;

/// Why the store refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A resource name that is not 1 to [`MAX_RESOURCE_NAME_LEN`] letters, digits, `-` or `_`.
    BadResourceName { name: String },
    /// No record with this id (or the id is not a whole number, or the resource is unknown).
    NoRecord { resource: String, id: String },
    /// Creating this resource would exceed [`MAX_RESOURCES`].
    TooManyResources { resource: String },
    /// The resource already holds [`MAX_RECORDS_PER_RESOURCE`] records.
    TooManyRecords { resource: String },
    /// The change would take the store over [`MAX_STORE_BYTES`].
    TooManyBytes,
}

impl StoreError {
    /// Whether the store is full (as opposed to a request naming something wrong or missing).
    pub fn is_full(&self) -> bool {
        matches!(
            self,
            StoreError::TooManyResources { .. }
                | StoreError::TooManyRecords { .. }
                | StoreError::TooManyBytes
        )
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::BadResourceName { name } => write!(
                f,
                "resource name \"{}\" is not valid: use 1 to {MAX_RESOURCE_NAME_LEN} letters, \
                 digits, `-` or `_`",
                excerpt(name)
            ),
            StoreError::NoRecord { resource, id } => {
                write!(f, "{resource} has no record with id \"{}\"", excerpt(id))
            }
            StoreError::TooManyResources { resource } => write!(
                f,
                "cannot create resource {resource}: the demo store already holds \
                 {MAX_RESOURCES} resources"
            ),
            StoreError::TooManyRecords { resource } => write!(
                f,
                "{resource} already holds {MAX_RECORDS_PER_RESOURCE} records, the most a demo \
                 resource may hold: delete some first"
            ),
            StoreError::TooManyBytes => write!(
                f,
                "the demo store is full: its records may take {MAX_STORE_BYTES} bytes of JSON in \
                 all: delete some first"
            ),
        }
    }
}

impl std::error::Error for StoreError {}

/// A resource name: letters, digits, `-` and `_`.
pub fn check_resource(resource: &str) -> Result<(), StoreError> {
    let valid = !resource.is_empty()
        && resource.len() <= MAX_RESOURCE_NAME_LEN
        && resource
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::BadResourceName {
            name: resource.to_owned(),
        })
    }
}

/// The demo API's records.
#[derive(Debug, Default)]
pub struct Store {
    tables: Mutex<Tables>,
    /// Held from a change until its event is published, so that events come in the order of the
    /// changes (publishing awaits the broker).
    pub changes: tokio::sync::Mutex<()>,
}

/// The records, locked: every read and change goes through here.
#[derive(Debug, Default)]
pub struct Tables {
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
            changes: tokio::sync::Mutex::new(()),
        }
    }

    /// The records, locked until the guard is dropped.
    pub fn lock(&self) -> MutexGuard<'_, Tables> {
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

    /// A resource's records in id order (none for an unknown resource).
    pub fn records<'a>(&'a self, resource: &str) -> impl Iterator<Item = &'a Value> + 'a {
        self.resources
            .get(resource)
            .into_iter()
            .flat_map(|table| table.records.values())
    }

    /// One record.
    pub fn get(&self, resource: &str, id: &str) -> Result<Value, StoreError> {
        parse_id(id)
            .and_then(|id| self.resources.get(resource)?.records.get(&id))
            .cloned()
            .ok_or_else(|| no_record(resource, id))
    }

    /// Creates a record with the next id; returns it.
    pub fn create(
        &mut self,
        resource: &str,
        mut fields: Map<String, Value>,
    ) -> Result<Value, StoreError> {
        let (records, next_id) = match self.resources.get(resource) {
            Some(table) => (table.records.len(), table.next_id),
            None if self.resources.len() >= MAX_RESOURCES => {
                return Err(StoreError::TooManyResources {
                    resource: resource.to_owned(),
                })
            }
            None => (0, 1),
        };
        if records >= MAX_RECORDS_PER_RESOURCE {
            return Err(StoreError::TooManyRecords {
                resource: resource.to_owned(),
            });
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

    /// Merges `fields` into a record, or replaces it with them; the `id` stays. Returns the id and
    /// the new record.
    pub fn update(
        &mut self,
        resource: &str,
        id: &str,
        fields: Map<String, Value>,
        replace: bool,
    ) -> Result<(u64, Value), StoreError> {
        let Some((key, record)) = parse_id(id).and_then(|key| {
            let record = self.resources.get(resource)?.records.get(&key)?;
            Some((key, record))
        }) else {
            return Err(no_record(resource, id));
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

    /// Removes a record; returns its id and the record.
    pub fn remove(&mut self, resource: &str, id: &str) -> Result<(u64, Value), StoreError> {
        let removed = parse_id(id).and_then(|key| {
            let record = self.resources.get_mut(resource)?.records.remove(&key)?;
            Some((key, record))
        });
        let Some((key, record)) = removed else {
            return Err(no_record(resource, id));
        };
        self.bytes = self.bytes.saturating_sub(size_of(&record));
        Ok((key, record))
    }

    /// Refuses a change that would take the store over [`MAX_STORE_BYTES`].
    fn check_bytes(&self, removed: usize, added: usize) -> Result<(), StoreError> {
        if self.bytes.saturating_sub(removed).saturating_add(added) > MAX_STORE_BYTES {
            return Err(StoreError::TooManyBytes);
        }
        Ok(())
    }
}

fn no_record(resource: &str, id: &str) -> StoreError {
    StoreError::NoRecord {
        resource: resource.to_owned(),
        id: id.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!store.is_empty());
        let tables = store.lock();
        let post = tables.get("posts", "1").expect("post 1");
        assert_eq!(post["category"]["id"], 1);
        let statuses: std::collections::BTreeSet<&str> = tables
            .records("posts")
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
        assert_eq!(tables.records("nothing").count(), 0);
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
            let expected = no_record("posts", missing);
            assert_eq!(tables.get("posts", missing), Err(expected.clone()));
            assert_eq!(tables.remove("posts", missing), Err(expected.clone()));
            assert!(!expected.is_full());
        }
        assert_eq!(
            no_record("posts", "13").to_string(),
            "posts has no record with id \"13\""
        );
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
            e,
            StoreError::TooManyRecords {
                resource: "full".into()
            }
        );
        assert!(e.is_full());
        for i in 0..MAX_RESOURCES - 1 {
            tables.seed(&format!("r{i}"), json!({ "id": 1 }));
        }
        assert!(tables.create("r0", Map::new()).is_ok());
        let e = tables.create("one-too-many", Map::new()).unwrap_err();
        assert!(e.is_full());
        assert!(e.to_string().contains("resources"), "{e:?}");
        tables.bytes = MAX_STORE_BYTES - 5;
        let e = tables
            .create("r1", object(json!({ "title": "too much" })))
            .unwrap_err();
        assert_eq!(e, StoreError::TooManyBytes);
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
            let e = check_resource(bad).unwrap_err();
            assert!(
                matches!(e, StoreError::BadResourceName { .. }),
                "{bad:?}: {e:?}"
            );
            assert!(!e.is_full());
        }
        assert!(check_resource("a.b")
            .unwrap_err()
            .to_string()
            .contains("\"a.b\""));
    }
}
