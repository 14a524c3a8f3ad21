//! Which events a subscription wants: the semantics of Refine's Ably provider.
//!
//! An event passes when the subscription's types include `"*"` or the event's type; then, unless
//! the event is `"created"`, when both the subscription and the event carry ids they must share at
//! least one (compared as strings). When either side has no ids, the event passes.

use super::event::RecordId;
use super::sort::sort_dedup;
use crate::prelude::*;

/// The event types a subscription accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeFilter {
    /// `"*"` was among the types.
    All,
    /// Only these types.
    Only(Vec<String>),
}

impl TypeFilter {
    pub fn from_types<I, S>(types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut only = Vec::new();
        for t in types {
            let t = t.into();
            if t == "*" {
                return TypeFilter::All;
            }
            if !only.contains(&t) {
                only.push(t);
            }
        }
        TypeFilter::Only(only)
    }

    pub fn accepts(&self, kind: &str) -> bool {
        match self {
            TypeFilter::All => true,
            TypeFilter::Only(types) => types.iter().any(|t| t == kind),
        }
    }
}

/// A subscription's filter: event types, and optionally the record ids it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub types: TypeFilter,
    /// `None`: every record (a list page). `Some(ids)`: only events about these records
    /// (a `useOne`/`useMany` page). Ably checks presence, not length: an empty list still filters,
    /// letting through only `created` events and events without ids.
    pub ids: Option<Vec<RecordId>>,
}

impl Filter {
    pub fn new(types: TypeFilter, ids: Option<Vec<RecordId>>) -> Self {
        let ids = ids.map(|mut ids| {
            sort_dedup(&mut ids);
            // Kept for the subscription's life: no spare capacity (a list collected from a JS
            // array grows to 4 entries for 1 id, 72 B more per `useOne` subscription).
            ids.shrink_to_fit();
            ids
        });
        Filter { types, ids }
    }

    /// Whether the record ids pass, given the event's type and ids (Ably's rule).
    pub fn ids_pass(&self, kind: &str, event_ids: Option<&[RecordId]>) -> bool {
        if kind == "created" {
            return true;
        }
        match (&self.ids, event_ids) {
            (Some(mine), Some(theirs)) => theirs.iter().any(|id| mine.binary_search(id).is_ok()),
            _ => true,
        }
    }

    pub fn accepts(&self, kind: &str, event_ids: Option<&[RecordId]>) -> bool {
        self.types.accepts(kind) && self.ids_pass(kind, event_ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<RecordId> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// The filter table: (subscription types, subscription ids, event type, event ids, passes).
    #[test]
    fn ably_semantics_table() {
        type Row<'a> = (
            &'a [&'a str],
            Option<&'a [&'a str]>,
            &'a str,
            Option<&'a [&'a str]>,
            bool,
        );
        let table: &[Row] = &[
            // types
            (&["*"], None, "updated", None, true),
            (&["*"], None, "anything", None, true),
            (&["updated"], None, "updated", None, true),
            (&["updated"], None, "deleted", None, false),
            (&["created", "deleted"], None, "deleted", None, true),
            (&[], None, "updated", None, false),
            // ids
            (&["*"], Some(&["2"]), "updated", Some(&["2"]), true),
            (&["*"], Some(&["2"]), "updated", Some(&["3"]), false),
            (&["*"], Some(&["2"]), "deleted", Some(&["3", "2"]), true),
            (
                &["*"],
                Some(&["1", "2"]),
                "updated",
                Some(&["3", "4"]),
                false,
            ),
            // "created" always passes the id check
            (&["*"], Some(&["2"]), "created", Some(&["3"]), true),
            (&["*"], Some(&["2"]), "created", None, true),
            // but not the type check
            (&["updated"], Some(&["2"]), "created", Some(&["2"]), false),
            // either side without ids passes
            (&["*"], None, "updated", Some(&["3"]), true),
            (&["*"], Some(&["2"]), "updated", None, true),
            // an empty id list on the subscription matches no id-carrying update
            (&["*"], Some(&[]), "updated", Some(&["1"]), false),
            // an empty id list on the event matches no id-filtered subscription
            (&["*"], Some(&["1"]), "updated", Some(&[]), false),
        ];
        for (i, (types, sub_ids, kind, ev_ids, expected)) in table.iter().enumerate() {
            let f = Filter::new(
                TypeFilter::from_types(types.iter().copied()),
                sub_ids.map(ids),
            );
            let ev = ev_ids.map(ids);
            assert_eq!(
                f.accepts(kind, ev.as_deref()),
                *expected,
                "row {i}: types {types:?} ids {sub_ids:?} vs {kind} {ev_ids:?}"
            );
        }
    }

    #[test]
    fn star_among_types_means_all() {
        assert_eq!(TypeFilter::from_types(["updated", "*"]), TypeFilter::All);
        assert_eq!(
            TypeFilter::from_types(["updated", "updated"]),
            TypeFilter::Only(vec!["updated".into()])
        );
    }
}
