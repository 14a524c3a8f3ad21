//! Where the relays are: one URL, or several nodes of one cluster.
//!
//! Nodes of a cluster share one broker (Redis): they announce the same `epoch` in `hello`, and any
//! of them resumes a subscription from its position with nothing lost. The session decides *when*
//! to move to another node ([`Session::relay`](super::Session::relay): after a failed attempt or a
//! dropped connection, the next attempt goes to the next relay, round robin). This module holds
//! *where*: each relay's endpoints.
//!
//! The endpoints are derived and checked by the npm package's JS entry (`endpoints` in
//! `pkg-template/index.js`: `new URL`, schemes per transport, one `sseUrl` / `publishUrl` per `url`,
//! the ticket URL next to the stream), which names the option and index of a bad one; the wasm
//! carries neither a URL parser nor a second set of checks. A bad URL that reaches the client anyway
//! fails its requests (reported, and the next relay is tried).

use crate::cat;
use crate::prelude::*;
/// One relay's endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Relay {
    /// The WebSocket endpoint (`ws://…/ws`). With the SSE transport: the `url` given (the stream).
    pub ws: String,
    /// The Server-Sent Events endpoint (`http://…/sse`, or an Igniter server's `…/sse/events`).
    pub sse: String,
    /// Where an authenticated stream gets its ticket: next to `sse` (`http://…/sse/ticket`).
    pub ticket: String,
    /// Where publishes go over HTTP (`http://…/publish`).
    pub publish: String,
}

/// The relays a client may use, in the order given. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relays {
    list: Vec<Relay>,
}

impl Relays {
    /// Relay `i` has the endpoints `ws[i]`, `sse[i]`, `ticket[i]` and `publish[i]`: as many relays
    /// as `ws` has, an endpoint missing from a shorter list empty (its requests fail, reported).
    /// `None` when `ws` is empty.
    pub fn new(
        ws: Vec<String>,
        sse: Vec<String>,
        ticket: Vec<String>,
        publish: Vec<String>,
    ) -> Option<Relays> {
        let mut sse = sse.into_iter();
        let mut ticket = ticket.into_iter();
        let mut publish = publish.into_iter();
        let list: Vec<Relay> = (ws.into_iter())
            .map(|ws| Relay {
                ws,
                sse: sse.next().unwrap_or_default(),
                ticket: ticket.next().unwrap_or_default(),
                publish: publish.next().unwrap_or_default(),
            })
            .collect();
        (!list.is_empty()).then_some(Relays { list })
    }

    /// How many relays there are (at least one).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Never: [`Relays::new`] refuses an empty list.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The relay at `index` ([`Session::relay`](super::Session::relay)), counted round robin.
    pub fn get(&self, index: usize) -> &Relay {
        &self.list[index % self.list.len()]
    }
}

/// `base` with `query` (`name=value&…`, or empty: `base` as it is) added to its query.
pub fn with_query(base: &str, query: &str) -> String {
    match (query.is_empty(), base.contains('?')) {
        (true, _) => base.to_owned(),
        (false, true) => cat!(base, '&', query),
        (false, false) => cat!(base, '?', query),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(urls: &[&str]) -> Vec<String> {
        urls.iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn each_relay_gets_the_endpoints_at_its_index() {
        let r = Relays::new(
            strings(&["ws://a/ws", "wss://b:8443/live/ws"]),
            strings(&["http://a/sse", "https://b:8443/live/sse?x=1"]),
            strings(&["http://a/sse/ticket", "https://b:8443/live/sse/ticket"]),
            strings(&["http://a/publish", "https://b:8443/live/publish"]),
        )
        .expect("relays");
        assert_eq!(r.len(), 2);
        assert_eq!(
            r.get(1),
            &Relay {
                ws: "wss://b:8443/live/ws".into(),
                sse: "https://b:8443/live/sse?x=1".into(),
                ticket: "https://b:8443/live/sse/ticket".into(),
                publish: "https://b:8443/live/publish".into(),
            }
        );
        assert_eq!(r.get(0).ws, "ws://a/ws");
        assert_eq!(r.get(0).publish, "http://a/publish");
        assert_eq!(r.get(2), r.get(0), "indices wrap around");
        assert_eq!(r.get(3), r.get(1));
    }

    #[test]
    fn odd_lists_never_panic() {
        assert_eq!(
            Relays::new(vec![], strings(&["http://a/sse"]), vec![], vec![]),
            None
        );
        // Shorter lists leave endpoints empty; longer ones are cut to `ws`.
        let r = Relays::new(
            strings(&["ws://a/ws", "ws://b/ws"]),
            strings(&["http://a/sse"]),
            vec![],
            strings(&["http://a/p", "http://b/p", "http://c/p"]),
        )
        .expect("relays");
        assert_eq!(r.len(), 2);
        assert_eq!(r.get(0).sse, "http://a/sse");
        assert_eq!(r.get(1).sse, "");
        assert_eq!(r.get(1).ticket, "");
        assert_eq!(r.get(1).publish, "http://b/p");
        assert_eq!(r.get(usize::MAX).ws, "ws://b/ws");
    }

    #[test]
    fn a_query_goes_after_the_url_s_own() {
        assert_eq!(with_query("ws://a/ws", ""), "ws://a/ws");
        assert_eq!(with_query("ws://a/ws?x=1", ""), "ws://a/ws?x=1");
        assert_eq!(with_query("ws://a/ws", "scopes=a"), "ws://a/ws?scopes=a");
        assert_eq!(
            with_query("http://a/sse?x=1", "scopes=a"),
            "http://a/sse?x=1&scopes=a"
        );
    }
}
