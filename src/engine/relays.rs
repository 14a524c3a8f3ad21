//! Where the relays are: one URL, or several nodes of one cluster.
//!
//! Nodes of a cluster share one broker (Redis): they announce the same `epoch` in `hello`, and any
//! of them resumes a subscription from its position with nothing lost. The session decides *when*
//! to move to another node ([`Session::relay`](super::Session::relay): after a failed attempt or a
//! dropped connection, the next attempt goes to the next relay, round robin). This module holds
//! *where*: each relay's endpoints, derived from the options exactly as for a single URL, and
//! checked up front so that a list that cannot work is refused with a message naming the option.
//!
//! The URLs themselves are parsed by the JS entry (`new URL`, schemes per transport), which names
//! the option and index of a bad one; the wasm does not carry a second URL parser. A bad URL that
//! reaches the client anyway fails its connection attempts (reported, and the next relay is tried).

use crate::cat;
use std::fmt;

/// An option given as one URL or as a list of them (one per relay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Urls {
    One(String),
    Many(Vec<String>),
}

impl Urls {
    fn list(&self) -> &[String] {
        match self {
            Urls::One(url) => std::slice::from_ref(url),
            Urls::Many(urls) => urls,
        }
    }
}

/// One relay's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    /// The WebSocket endpoint (`ws://…/ws`). With the SSE transport: the `url` given (the stream).
    pub ws: String,
    /// The Server-Sent Events endpoint (`http://…/sse`, or an Igniter server's `…/sse/events`):
    /// `sseUrl`, or else `url`.
    pub sse: String,
    /// Where an authenticated stream gets its ticket: next to `sse` (`http://…/sse/ticket`).
    pub ticket: String,
    /// Where publishes go over HTTP (`http://…/publish`): `publishUrl`, or empty when not given.
    pub publish: String,
}

/// Why the relay options were refused. `Display` names the option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelaysError {
    /// An empty list.
    Empty { option: &'static str },
    /// `sseUrl` or `publishUrl` lists another number of URLs than `url`.
    Lengths {
        option: &'static str,
        given: usize,
        urls: usize,
    },
}

impl RelaysError {
    /// What is wrong, naming the option (built without `core::fmt`; see `engine::text`).
    pub fn message(&self) -> String {
        match self {
            RelaysError::Empty { option } => cat!(
                "option `",
                option,
                "` is an empty array: give at least one relay URL"
            ),
            RelaysError::Lengths {
                option,
                given,
                urls,
            } => cat!(
                "option `",
                option,
                "` has ",
                given,
                if *given == 1 { " URL" } else { " URLs" },
                " but `url` has ",
                urls,
                ": give one per relay (an array of ",
                urls,
                ") or leave it out"
            ),
        }
    }
}

impl fmt::Display for RelaysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for RelaysError {}

/// The relays a client may use, in the order given. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relays {
    list: Vec<Relay>,
}

impl Relays {
    /// The relays of `url` (the WebSocket endpoint; with the SSE transport, the stream), with the
    /// explicit `sse_url` / `publish_url` when given: as many as `url` has (one per relay).
    pub fn new(
        url: Urls,
        sse_url: Option<Urls>,
        publish_url: Option<Urls>,
    ) -> Result<Relays, RelaysError> {
        let urls = url.list();
        if urls.is_empty() {
            return Err(RelaysError::Empty { option: "url" });
        }
        for (option, given) in [("sseUrl", &sse_url), ("publishUrl", &publish_url)] {
            let given = given.as_ref().map_or(urls.len(), |g| g.list().len());
            if given != urls.len() {
                return Err(RelaysError::Lengths {
                    option,
                    given,
                    urls: urls.len(),
                });
            }
        }
        let list = (urls.iter().enumerate())
            .map(|(i, ws)| {
                let sse = sse_url.as_ref().map_or(ws, |s| &s.list()[i]);
                Relay {
                    ws: ws.clone(),
                    ticket: ticket_url(sse),
                    sse: sse.clone(),
                    publish: publish_url
                        .as_ref()
                        .map(|p| p.list()[i].clone())
                        .unwrap_or_default(),
                }
            })
            .collect();
        Ok(Relays { list })
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

/// The ticket endpoint next to an SSE endpoint: `http://h/sse?x` → `http://h/sse/ticket`.
pub fn ticket_url(sse: &str) -> String {
    let base = sse.split(['?', '#']).next().unwrap_or(sse);
    cat!(base.trim_end_matches('/'), "/ticket")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn many(urls: &[&str]) -> Urls {
        Urls::Many(urls.iter().map(|u| u.to_string()).collect())
    }

    fn one(url: &str) -> Urls {
        Urls::One(url.to_owned())
    }

    #[test]
    fn one_url_derives_as_before() {
        let r = Relays::new(one("ws://a/ws"), None, None).expect("valid");
        assert_eq!(r.len(), 1);
        assert_eq!(
            r.get(0),
            &Relay {
                ws: "ws://a/ws".into(),
                sse: "ws://a/ws".into(),
                ticket: "ws://a/ws/ticket".into(),
                publish: String::new(),
            }
        );
        assert_eq!(r.get(5), r.get(0), "one relay: every index is it");
        let r = Relays::new(
            one("ws://a/ws"),
            Some(one("http://a/sse")),
            Some(one("http://a/publish")),
        )
        .expect("valid");
        assert_eq!(r.get(0).sse, "http://a/sse");
        assert_eq!(r.get(0).ticket, "http://a/sse/ticket");
        assert_eq!(r.get(0).publish, "http://a/publish");
    }

    #[test]
    fn several_urls_derive_their_endpoints_per_relay() {
        let r = Relays::new(
            many(&["ws://a/ws", "wss://b:8443/live/ws"]),
            Some(many(&["http://a/sse", "https://b:8443/live/sse?x=1"])),
            Some(many(&["http://a/publish", "https://b:8443/live/publish"])),
        )
        .expect("valid");
        assert_eq!(r.len(), 2);
        assert_eq!(r.get(0).ws, "ws://a/ws");
        assert_eq!(r.get(0).sse, "http://a/sse");
        assert_eq!(r.get(0).ticket, "http://a/sse/ticket");
        assert_eq!(r.get(0).publish, "http://a/publish");
        assert_eq!(r.get(1).ws, "wss://b:8443/live/ws");
        assert_eq!(r.get(1).sse, "https://b:8443/live/sse?x=1");
        assert_eq!(r.get(1).ticket, "https://b:8443/live/sse/ticket");
        assert_eq!(r.get(1).publish, "https://b:8443/live/publish");
        assert_eq!(r.get(2), r.get(0), "indices wrap around");
        assert_eq!(r.get(3), r.get(1));
    }

    #[test]
    fn sse_streams_given_as_url_get_their_own_tickets() {
        let r = Relays::new(many(&["http://a/sse", "http://b/sse/"]), None, None).expect("valid");
        assert_eq!(r.get(0).sse, "http://a/sse");
        assert_eq!(r.get(0).ticket, "http://a/sse/ticket");
        assert_eq!(r.get(1).sse, "http://b/sse/");
        assert_eq!(r.get(1).ticket, "http://b/sse/ticket");
    }

    #[test]
    fn a_list_of_one_is_like_a_string() {
        let listed = Relays::new(many(&["ws://a/ws"]), Some(many(&["http://a/sse"])), None);
        let single = Relays::new(one("ws://a/ws"), Some(one("http://a/sse")), None);
        assert_eq!(listed, single);
    }

    #[test]
    fn lists_that_cannot_work_are_refused_naming_the_option() {
        let err = |url, sse, publish| {
            Relays::new(url, sse, publish)
                .expect_err("refused")
                .to_string()
        };
        assert_eq!(
            err(many(&[]), None, None),
            "option `url` is an empty array: give at least one relay URL"
        );
        assert_eq!(
            err(many(&["ws://a/ws", "ws://b/ws"]), Some(one("http://a/sse")), None),
            "option `sseUrl` has 1 URL but `url` has 2: give one per relay (an array of 2) or leave it out"
        );
        assert_eq!(
            err(one("ws://a/ws"), None, Some(many(&["http://a/p", "http://b/p"]))),
            "option `publishUrl` has 2 URLs but `url` has 1: give one per relay (an array of 1) or leave it out"
        );
        assert_eq!(
            err(many(&["ws://a/ws"]), None, Some(many(&[]))),
            "option `publishUrl` has 0 URLs but `url` has 1: give one per relay (an array of 1) or leave it out"
        );
    }

    #[test]
    fn ticket_urls_sit_next_to_the_stream() {
        assert_eq!(ticket_url("http://h/sse"), "http://h/sse/ticket");
        assert_eq!(ticket_url("http://h/sse/?a=b#c"), "http://h/sse/ticket");
    }
}
