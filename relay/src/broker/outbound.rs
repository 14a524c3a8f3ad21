//! What goes into a connection's outbound queue ([`Outbound`]), the events a channel keeps
//! ([`Logged`]: the `event` frame, and for a scoped event the `skip` frame the others get), and
//! the connections' scopes that choose between them.

use axum::extract::ws::Utf8Bytes;
use live_protocol::frame::encode_skip;
use std::sync::Arc;

/// A connection's scopes, sorted and without duplicates (see [`scopes`]).
pub type Scopes = Arc<[Box<str>]>;

/// A connection's scopes from a list as given.
pub fn scopes<S: AsRef<str>>(list: impl IntoIterator<Item = S>) -> Scopes {
    let mut list: Vec<Box<str>> = list.into_iter().map(|s| Box::from(s.as_ref())).collect();
    list.sort_unstable();
    list.dedup();
    list.into()
}

/// One frame of a connection's outbound queue: 40 bytes, because every connection's queue
/// allocates its first 32 slots at once, idle or not.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The frame, serialized.
    pub text: Utf8Bytes,
    /// For an `event` or a `skip` frame: where it moves the connection's position (shared by
    /// every subscriber's copy of the event).
    pub position: Option<Arc<Position>>,
}

/// A channel and a seq in it.
#[derive(Debug, PartialEq, Eq)]
pub struct Position {
    pub channel: Arc<str>,
    pub seq: u64,
}

impl Outbound {
    /// A frame that moves no position (`subscribed`, ...).
    pub fn other(text: Utf8Bytes) -> Self {
        Outbound {
            text,
            position: None,
        }
    }
}

/// An event to append to a channel: its `event` frame (with its seq) and the scopes it is for
/// (none: everyone).
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: u64,
    pub frame: Utf8Bytes,
    pub scopes: Option<Box<[Box<str>]>>,
}

/// An event as a channel keeps it: its frame and, for a scoped event, its scopes and the `skip`
/// frame the other connections get.
#[derive(Debug)]
pub(super) struct Logged {
    position: Arc<Position>,
    event: Utf8Bytes,
    scoped: Option<Box<Scoped>>,
}

#[derive(Debug)]
struct Scoped {
    /// Not empty.
    scopes: Box<[Box<str>]>,
    skip: Utf8Bytes,
}

impl Logged {
    pub(super) fn new(channel: &Arc<str>, entry: Entry) -> Self {
        Logged {
            position: Arc::new(Position {
                channel: Arc::clone(channel),
                seq: entry.seq,
            }),
            scoped: entry.scopes.filter(|s| !s.is_empty()).map(|scopes| {
                Box::new(Scoped {
                    scopes,
                    skip: Utf8Bytes::from(encode_skip(channel, entry.seq)),
                })
            }),
            event: entry.frame,
        }
    }

    /// What a connection holding `scopes` is sent for this event.
    pub(super) fn frame_for(&self, scopes: &[Box<str>]) -> Outbound {
        let text = match &self.scoped {
            Some(scoped) if !intersect(&scoped.scopes, scopes) => scoped.skip.clone(),
            _ => self.event.clone(),
        };
        Outbound {
            text,
            position: Some(Arc::clone(&self.position)),
        }
    }
}

/// Whether an event's scopes and a connection's (sorted) scopes share one.
pub(super) fn intersect(event: &[Box<str>], connection: &[Box<str>]) -> bool {
    !connection.is_empty()
        && event
            .iter()
            .any(|s| connection.binary_search_by(|c| (**c).cmp(&**s)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_slot_is_small() {
        assert_eq!(std::mem::size_of::<Outbound>(), 40);
    }

    #[test]
    fn connection_scopes_are_sorted_and_deduplicated() {
        assert_eq!(&*scopes(["b", "a", "b"]), [Box::from("a"), Box::from("b")]);
        assert!(intersect(&[Box::from("b")], &scopes(["a", "b"])));
        assert!(!intersect(&[Box::from("c")], &scopes(["a", "b"])));
        assert!(!intersect(&[Box::from("c")], &scopes::<&str>([])));
    }
}
