//! json-server's query language for lists, as `@refinedev/simple-rest` speaks it: `_start`, `_end`
//! (or `_limit`, or `_page` and `_limit`), `_sort=a,b` with `_order=asc,desc`, filters
//! `field=value` (a field given several values matches any of them), `field_ne`, `field_gte`,
//! `field_lte`, `field_like` (case-insensitive substring), `q` (full text) and dotted paths
//! (`category.id=2`). Other parameters starting with `_` are ignored. It knows nothing of HTTP: a
//! bad query is a [`QueryError`] naming the parameter.

use live_protocol::frame::excerpt;
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

/// How many records a `_page` holds without `_limit` (json-server's default).
pub const DEFAULT_PAGE_SIZE: usize = 10;

/// A query parameter that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// The parameter at fault (`_start`, `_order`, …).
    pub parameter: String,
    /// Why, naming the parameter.
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}

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

/// The query of a list request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    start: usize,
    end: Option<usize>,
    /// Fields to sort by, each with `true` for descending.
    sort: Vec<(String, bool)>,
    filters: Vec<Filter>,
    /// Full-text search, lowercased.
    q: Option<String>,
}

fn whole_number(name: &str, value: &str) -> Result<usize, QueryError> {
    value.trim().parse().map_err(|_| QueryError {
        parameter: name.to_owned(),
        message: format!(
            "`{name}` must be a whole number, not \"{}\"",
            excerpt(value)
        ),
    })
}

impl ListQuery {
    /// The query of these (decoded) query string pairs.
    pub fn parse(pairs: &[(String, String)]) -> Result<ListQuery, QueryError> {
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
                    return Err(QueryError {
                        parameter: "_order".to_owned(),
                        message: format!(
                            "`_order` must be `asc` or `desc` for each `_sort` field, not \"{}\"",
                            excerpt(o)
                        ),
                    })
                }
            };
            let field = field.trim();
            if !field.is_empty() {
                query.sort.push((field.to_owned(), descending));
            }
        }
        Ok(query)
    }

    /// The page of the matching records (cloned) and how many match, from `records` in id order.
    pub fn select<'v>(&self, records: impl Iterator<Item = &'v Value>) -> (Vec<Value>, usize) {
        let mut found: Vec<&Value> = records.filter(|record| self.matches(record)).collect();
        if !self.sort.is_empty() {
            // Stable: records that compare equal stay in id order.
            found.sort_by(|a, b| self.compare(a, b));
        }
        let total = found.len();
        let start = self.start.min(total);
        let end = self.end.unwrap_or(total).clamp(start, total);
        let page = found[start..end].iter().map(|&r| r.clone()).collect();
        (page, total)
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

#[cfg(test)]
mod tests {
    use super::super::store::Store;
    use super::*;

    fn query(text: &str) -> Result<ListQuery, QueryError> {
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
        let query = query(text).expect("valid query");
        let (page, total) = query.select(store.lock().records(resource));
        let ids = page.iter().filter_map(|r| r["id"].as_u64()).collect();
        (ids, total)
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
        assert_eq!(e.parameter, "_start");
        assert!(e.message.contains("`_start`"), "{e:?}");
        let e = query("_sort=id&_order=sideways").unwrap_err();
        assert_eq!(e.parameter, "_order");
        assert!(e.to_string().contains("`_order`"), "{e:?}");
    }
}
