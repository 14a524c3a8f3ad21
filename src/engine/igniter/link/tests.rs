//! The link and a real session driven as the browser shell drives them, on a fake clock: every
//! stream event and probe answer is explicit, and the rig plays the shell's part (streams held
//! open by number, one overlap timer, the session's timer).

use super::*;
use crate::engine::filter::{Filter, TypeFilter};
use crate::engine::frame::REVALIDATE_CHANNEL;
use crate::engine::session::{Output, SessionConfig, TransportKind};
use crate::engine::{Code, ConnectionState, SubId};

/// The shell's side: what it holds and what it was told.
struct Rig {
    now: Millis,
    session: Session,
    link: IgniterLink,
    /// The streams held open: (number, query).
    open: Vec<(u64, String)>,
    /// The overlap timer's deadline, while armed.
    timer: Option<Millis>,
    /// Probe requests, in order.
    probes: Vec<(u64, Vec<String>)>,
    /// Deliveries: (subscriptions, type, seq); a resync as type `$resync`.
    delivered: Vec<(Vec<SubId>, String, u64)>,
    /// The session's other outputs but states.
    errors: Vec<Output>,
    problems: Vec<String>,
}

fn date(_: &str) -> Option<f64> {
    Some(1_735_689_600_000.0)
}

fn message(channel: &str, kind: &str) -> String {
    format!(r#"{{"channel":"{channel}","data":{{"type":"{kind}","ids":[1]}},"timestamp":"x"}}"#)
}

impl Rig {
    fn new() -> Rig {
        Rig {
            now: 0,
            session: Session::new(SessionConfig {
                transport: TransportKind::Sse,
                backoff_max_ms: super::super::BACKOFF_MAX_MS,
                ..SessionConfig::default()
            }),
            link: IgniterLink::new(),
            open: Vec::new(),
            timer: None,
            probes: Vec::new(),
            delivered: Vec::new(),
            errors: Vec::new(),
            problems: Vec::new(),
        }
    }

    fn subscribe(&mut self, channel: &str) -> SubId {
        let id = (self.session).subscribe(self.now, channel, Filter::new(TypeFilter::All, None));
        self.drain();
        id
    }

    /// The session's outputs, as the shell carries them out.
    fn carry_out(&mut self) {
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::ConnectStream { .. } => self.link.connect(&self.session),
                Output::Disconnect => self.link.disconnect(),
                Output::Deliver { subs, event } => {
                    self.delivered.push((subs, event.kind, event.seq))
                }
                Output::Resync { subs, .. } => self.delivered.push((subs, "$resync".into(), 0)),
                Output::State(_) => {}
                other => self.errors.push(other),
            }
        }
    }

    /// The session's outputs, then the link's, each followed by the session's it led to.
    fn drain(&mut self) {
        self.carry_out();
        loop {
            self.link.settle();
            let Some(output) = self.link.poll_output() else {
                return;
            };
            match output {
                LinkOutput::Frame(frame) => {
                    self.session.handle_decoded(self.now, Ok(frame.frame()))
                }
                LinkOutput::OpenStream { stream, query } => self.open.push((stream, query)),
                LinkOutput::CloseStream { stream } => {
                    assert!(self.is_open(stream), "stream {stream} closed twice");
                    self.open.retain(|(n, _)| *n != stream);
                }
                LinkOutput::Probe { stream, queries } => self.probes.push((stream, queries)),
                LinkOutput::ArmTimer(at) => {
                    assert_eq!(self.timer, None, "armed while armed");
                    self.timer = Some(at);
                }
                LinkOutput::DisarmTimer => self.timer = None,
                LinkOutput::Problem(problem) => self.problems.push(problem),
            }
            self.carry_out();
        }
    }

    /// Moves the clock to `to`, firing the session's timer and the overlap timer when due.
    fn advance(&mut self, to: Millis) {
        for _ in 0..100 {
            let due = [self.session.poll_timeout(), self.timer]
                .into_iter()
                .flatten()
                .min();
            let Some(at) = due.filter(|at| *at <= to) else {
                break;
            };
            self.now = self.now.max(at);
            if self.timer == Some(at) {
                self.timer = None;
                self.link.handle_timeout(self.now);
            } else {
                self.session.handle_timeout(self.now);
            }
            self.drain();
        }
        self.now = to;
    }

    fn is_open(&self, stream: u64) -> bool {
        self.open.iter().any(|(n, _)| *n == stream)
    }

    fn streams(&self) -> Vec<u64> {
        self.open.iter().map(|(n, _)| *n).collect()
    }

    fn query(&self, stream: u64) -> &str {
        let found = self.open.iter().find(|(n, _)| *n == stream);
        found.map_or("", |(_, q)| q.as_str())
    }

    fn opened(&mut self, stream: u64) {
        self.link.handle_open(&mut self.session, self.now, stream);
        self.drain();
    }

    fn event(&mut self, stream: u64, kind: &str, id: &str, data: &str) {
        (self.link).handle_message(self.now, stream, kind, id, data, date);
        self.drain();
    }

    fn connected(&mut self, stream: u64) {
        self.event(stream, "connected", "", r#"{"channels":[]}"#);
    }

    fn failed(&mut self, stream: u64) {
        self.link.handle_failed(&mut self.session, self.now, stream);
        self.drain();
    }

    fn probed(&mut self, stream: u64, results: Vec<Probe>) {
        (self.link).handle_probes(&mut self.session, self.now, stream, results);
        self.drain();
    }

    fn kinds(&mut self) -> Vec<(Vec<SubId>, String, u64)> {
        core::mem::take(&mut self.delivered)
    }
}

/// Stream 1 reads `posts.list` and is `connected`; then `posts.show` is subscribed and stream 2
/// opened beside it (not `connected` yet). Returns the rig and the two subscriptions.
fn overlapping() -> (Rig, SubId, SubId) {
    let mut rig = Rig::new();
    let list = rig.subscribe("posts.list");
    assert!(
        rig.open.is_empty(),
        "the subscriptions of a render gather first"
    );
    rig.advance(50);
    assert_eq!(rig.open, vec![(1, "channels=posts.list".to_owned())]);
    rig.opened(1);
    rig.connected(1);
    assert_eq!(rig.session.state(), &ConnectionState::Open);
    rig.advance(100);
    rig.event(1, "message", "e1", &message("posts.list", "created"));
    assert_eq!(rig.kinds(), vec![(vec![list], "created".into(), 1)]);

    let show = rig.subscribe("posts.show");
    rig.advance(200); // the session's reopen debounce
    assert_eq!(
        rig.streams(),
        vec![1, 2],
        "the old stream stays while the new one connects"
    );
    assert_eq!(rig.query(2), "channels=posts.list,posts.show");
    (rig, list, show)
}

#[test]
fn two_streams_overlap_until_a_grace_after_the_new_one_is_connected() {
    let (mut rig, list, show) = overlapping();
    // Published while the new stream connects: on the old one only, held back until it is.
    rig.event(1, "message", "e2", &message("posts.list", "updated"));
    assert!(rig.kinds().is_empty());
    rig.opened(2);
    rig.advance(250);
    rig.connected(2);
    assert_eq!(rig.kinds(), vec![(vec![list], "updated".into(), 2)]);
    assert_eq!(rig.timer, Some(250 + OVERLAP_GRACE_MS));
    rig.event(2, "message", "e3", &message("posts.show", "updated"));
    assert_eq!(rig.kinds(), vec![(vec![show], "updated".into(), 1)]);

    // The overlap ends at the grace, not before; a timer woken early is armed again.
    rig.timer = None; // it fired
    rig.link.handle_timeout(250 + OVERLAP_GRACE_MS - 1);
    rig.drain();
    assert_eq!(rig.timer, Some(250 + OVERLAP_GRACE_MS), "armed again");
    rig.advance(250 + OVERLAP_GRACE_MS - 1);
    assert_eq!(rig.streams(), vec![1, 2]);
    rig.advance(250 + OVERLAP_GRACE_MS);
    assert_eq!(rig.streams(), vec![2], "the old stream is closed");
    assert_eq!(rig.timer, None);
    // What the closed stream still says is not read.
    rig.event(1, "message", "late", &message("posts.list", "deleted"));
    assert!(rig.kinds().is_empty());
    assert_eq!(rig.session.stats().resyncs, 0, "no resync for the change");
    assert!(
        rig.errors.is_empty() && rig.problems.is_empty(),
        "{:?}",
        rig.errors
    );
}

#[test]
fn events_on_both_streams_during_the_overlap_are_delivered_once_and_counted() {
    let (mut rig, list, _) = overlapping();
    rig.opened(2);
    rig.connected(2);
    for (stream, id) in [(2, "a"), (1, "a"), (1, "b"), (2, "b"), (1, "c")] {
        rig.event(stream, "message", id, &message("posts.list", id));
    }
    // `c` came on the old stream only (published before Igniter registered the new one).
    let want: Vec<(Vec<SubId>, String, u64)> = ["a", "b", "c"]
        .iter()
        .zip(2..)
        .map(|(kind, seq)| (vec![list], kind.to_string(), seq))
        .collect();
    assert_eq!(rig.kinds(), want);
    assert_eq!(rig.link.duplicates(), 2);
    // An event seen before the change is a duplicate too, on either stream.
    rig.event(2, "message", "e1", &message("posts.list", "created"));
    assert!(rig.kinds().is_empty());
    assert_eq!(rig.link.duplicates(), 3);
}

#[test]
fn the_previous_stream_is_closed_when_it_fails_or_is_replaced() {
    // It fails during the overlap: closed, and the new stream goes on alone.
    let (mut rig, _, _) = overlapping();
    rig.failed(1);
    assert_eq!(rig.streams(), vec![2]);
    rig.connected(2);
    assert_eq!(rig.timer, None, "nothing left to close");
    assert_eq!(rig.session.state(), &ConnectionState::Open);

    // Another change before the new stream is connected: the new stream is replaced, the old
    // one still bridges.
    let (mut rig, _, _) = overlapping();
    rig.subscribe("posts.edit");
    rig.advance(300);
    assert_eq!(rig.streams(), vec![1, 3]);
    rig.connected(3);
    assert_eq!(rig.session.stats().resyncs, 0);

    // Another change within the grace: the connected new stream becomes the previous one, the
    // older one closes, and its timer with it.
    let (mut rig, _, _) = overlapping();
    rig.connected(2);
    assert!(rig.timer.is_some());
    rig.subscribe("posts.edit");
    rig.advance(260);
    assert_eq!(rig.streams(), vec![2, 3]);
    assert_eq!(rig.timer, None);
    rig.connected(3);
    assert_eq!(
        rig.timer,
        Some(260 + OVERLAP_GRACE_MS),
        "a full grace for this one"
    );
    rig.advance(260 + OVERLAP_GRACE_MS);
    assert_eq!(rig.streams(), vec![3]);
    assert_eq!(rig.session.stats().resyncs, 0);
}

#[test]
fn a_stream_set_aside_that_no_stream_replaces_is_closed_at_once() {
    let mut rig = Rig::new();
    let id = rig.subscribe("posts.list");
    rig.advance(50);
    rig.connected(1);
    // Offline: the session disconnects and waits; nothing replaces the stream.
    rig.session.set_online(rig.now, false);
    rig.drain();
    assert!(rig.open.is_empty());
    rig.session.set_online(rig.now, true);
    rig.drain();
    rig.advance(rig.now + 50);
    assert_eq!(rig.streams(), vec![2]);
    rig.connected(2);
    // A new epoch: the channel had a position, so its subscription refetches once.
    assert_eq!(rig.kinds(), vec![(vec![id], "$resync".into(), 0)]);

    // The last subscription ends: the stream is closed when the session goes idle.
    rig.session.unsubscribe(rig.now, id);
    rig.drain();
    rig.advance(rig.now + 10_000);
    assert!(rig.open.is_empty());
}

#[test]
fn a_connected_stream_that_fails_is_a_lost_link() {
    let mut rig = Rig::new();
    rig.subscribe("posts.list");
    rig.advance(50);
    rig.connected(1);
    rig.failed(1);
    assert!(rig.open.is_empty() && rig.probes.is_empty());
    assert!(matches!(
        rig.session.state(),
        ConnectionState::Reconnecting { .. }
    ));
    rig.advance(rig.now + super::super::BACKOFF_MAX_MS);
    assert_eq!(
        rig.streams(),
        vec![2],
        "retried within Igniter's backoff cap"
    );
}

#[test]
fn a_stream_that_fails_before_connected_is_probed_then_its_refused_channel_dropped() {
    let mut rig = Rig::new();
    let good = rig.subscribe("posts.list");
    let bad = rig.subscribe("resources/posts");
    rig.subscribe(REVALIDATE_CHANNEL);
    rig.advance(50); // one stream for the three
    assert_eq!(rig.streams(), vec![1]);
    rig.failed(1);
    assert!(rig.open.is_empty());
    let whole = "channels=revalidation,posts.list,resources%2Fposts";
    assert_eq!(rig.probes, vec![(1, vec![whole.to_owned()])]);
    // Igniter's 500: each channel alone, then its own `revalidation`.
    rig.probed(1, vec![Probe::Status(500)]);
    let each = [
        "channels=revalidation",
        "channels=posts.list",
        "channels=resources%2Fposts",
        "channels=revalidation",
    ];
    assert_eq!(rig.probes[1], (1, each.map(str::to_owned).to_vec()));
    let ok = Probe::Status(200);
    let answers = vec![ok.clone(), ok.clone(), Probe::Status(500), ok];
    rig.probed(1, answers);
    // Reported and dropped; a stream without it opens at once.
    assert!(matches!(
        rig.errors.as_slice(),
        [Output::Error { code, channel: Some(c), .. }] if *code == Code::Refused && c == "resources/posts"
    ));
    assert_eq!(
        rig.session.subscription_status(bad),
        Some(ChannelStatus::Forbidden)
    );
    assert_eq!(rig.streams(), vec![2]);
    assert_eq!(rig.query(2), "channels=revalidation,posts.list");
    rig.connected(2);
    rig.event(2, "message", "x", &message("posts.list", "created"));
    assert_eq!(rig.kinds(), vec![(vec![good], "created".into(), 1)]);
}

#[test]
fn a_stream_that_cannot_be_reached_is_an_outage_and_late_answers_are_ignored() {
    let mut rig = Rig::new();
    rig.subscribe("posts.list");
    rig.advance(50);
    rig.failed(1);
    let down = Probe::Unreachable("TypeError: Failed to fetch".into());
    rig.probed(1, vec![down.clone()]);
    assert_eq!(rig.probes.len(), 1, "no channel probes for an outage");
    assert!(matches!(
        rig.session.state(),
        ConnectionState::Reconnecting { .. }
    ));
    // The next attempt opens stream 2; an answer about stream 1 changes nothing now.
    rig.advance(rig.now + super::super::BACKOFF_MAX_MS);
    assert_eq!(rig.streams(), vec![2]);
    rig.probed(1, vec![Probe::Status(500)]);
    assert_eq!(rig.probes.len(), 1);
    assert!(rig.errors.is_empty() && rig.streams() == vec![2]);
}

/// The stock-Igniter case: a channel the app never registered joins a connected stream. The new
/// stream fails, is probed while the old one still bridges, and its replacement continues the
/// epoch: the channels that worked get no resync and lose no event.
#[test]
fn a_refused_channel_joining_a_connected_stream_costs_the_others_nothing() {
    let mut rig = Rig::new();
    let list = rig.subscribe("posts.list");
    rig.advance(50);
    rig.connected(1);
    rig.subscribe("unregistered");
    rig.advance(150);
    assert_eq!(rig.streams(), vec![1, 2]);
    rig.failed(2);
    rig.event(1, "message", "e1", &message("posts.list", "updated"));
    rig.probed(2, vec![Probe::Status(500)]);
    let ok = Probe::Status(200);
    rig.probed(2, vec![ok.clone(), Probe::Status(500), ok]);
    assert_eq!(rig.streams(), vec![1, 3], "the old stream still bridges");
    assert_eq!(rig.query(3), "channels=posts.list");
    rig.connected(3);
    assert_eq!(rig.kinds(), vec![(vec![list], "updated".into(), 1)]);
    rig.advance(rig.now + OVERLAP_GRACE_MS);
    assert_eq!(rig.streams(), vec![3]);
    assert_eq!(rig.session.stats().resyncs, 0);
}
