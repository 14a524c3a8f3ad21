//! The streams of the Igniter.js flavor, sans-IO: which `EventSource` to open and to close, when
//! the overlap of two streams ends, what to probe when a stream fails. The events of the streams
//! are translated by an [`IgniterTranslator`] into frames the session takes as they are.
//!
//! The shell opens and closes streams, fetches probes and arms one timer when told to
//! ([`LinkOutput`]), and hands back what came of each, with the time. The session's
//! `ConnectStream` and `Disconnect` outputs become [`IgniterLink::connect`] and
//! [`IgniterLink::disconnect`]; after each batch of the session's outputs the shell calls
//! [`IgniterLink::settle`], then drains [`IgniterLink::poll_output`].
//!
//! A change of the channel set: the session says `Disconnect` then `ConnectStream`, in one batch.
//! A `connected` stream is then set aside as the previous stream and the new one opened beside
//! it; the previous stream is closed [`OVERLAP_GRACE_MS`] after the new one is `connected`, when
//! it fails, or at the end of the batch when no stream replaces it.
//!
//! A current stream that fails before `connected` is probed: its whole URL first, then — when
//! that is refused — each channel alone and Igniter's own `revalidation` channel. [`judge`] tells
//! an outage (the session closes the link and backs off) from refused channels (the session drops
//! them and opens a stream without them at once).

use super::{
    control_query, judge, needs_channel_probes, query_for, IgniterTranslator, Probe, Source,
    TranslatedFrame, Verdict, OVERLAP_GRACE_MS,
};
use crate::engine::time::Millis;
use crate::engine::{ChannelStatus, Session};
use alloc::collections::VecDeque;

/// What the shell must do.
#[derive(Debug, Clone)]
pub enum LinkOutput {
    /// Open an `EventSource` on the stream URL with this query (the shell adds its own parameters,
    /// such as scopes), listening to [`IgniterTranslator::EVENT_TYPES`] too; report what it does
    /// with this number.
    OpenStream { stream: u64, query: String },
    /// Close this stream: it is not read any more.
    CloseStream { stream: u64 },
    /// GET the stream URL with each of these queries, one after the other, and hand what each got
    /// (in this order) to [`IgniterLink::handle_probes`] with this stream's number.
    Probe { stream: u64, queries: Vec<String> },
    /// Arm the overlap timer for this time (it is not armed): when it fires, call
    /// [`IgniterLink::handle_timeout`].
    ArmTimer(Millis),
    /// Disarm the overlap timer.
    DisarmTimer,
    /// Hand this frame to the session (`Session::handle_decoded`) and carry out the session's
    /// outputs while it is at hand: its event is the one they deliver.
    Frame(TranslatedFrame),
    /// For the app's error hook: an event of the stream that could not be translated.
    Problem(String),
}

/// A failed stream being probed.
struct Probing {
    stream: u64,
    /// The session's names of the stream's channels.
    channels: Vec<String>,
    /// What the stream's whole URL got, once it is known.
    whole: Option<Probe>,
}

/// The Igniter streams of one client. See the module documentation.
#[derive(Default)]
pub struct IgniterLink {
    translator: Option<IgniterTranslator>,
    /// Streams opened so far: the number of the last one.
    opened: u64,
    /// The current stream while it is open.
    current: Option<u64>,
    /// The stream being replaced, open until the current one is `connected` and a grace more.
    previous: Option<u64>,
    /// A `disconnect` set the previous stream aside in this batch: closed unless a stream claims it.
    unclaimed: bool,
    /// When the overlap ends (the timer is armed for it).
    overlap_until: Option<Millis>,
    probing: Option<Probing>,
    outputs: VecDeque<LinkOutput>,
}

impl IgniterLink {
    pub fn new() -> Self {
        IgniterLink::default()
    }

    /// The next thing the shell must do, if any.
    pub fn poll_output(&mut self) -> Option<LinkOutput> {
        self.outputs.pop_front()
    }

    /// Events dropped because their id had been seen already (on the other stream, or twice).
    pub fn duplicates(&self) -> u64 {
        self.translator
            .as_ref()
            .map_or(0, IgniterTranslator::duplicates)
    }

    /// The session said `ConnectStream`: a stream for its channels (but those refused) replaces
    /// the current one — in the same epoch when a previous stream bridges the change, in a new one
    /// otherwise. Igniter's query is made here; the session's is not used.
    pub fn connect(&mut self, session: &Session) {
        let channels: Vec<String> = (session.registry().channels())
            .filter(|c| session.channel_status(c) != Some(ChannelStatus::Forbidden))
            .map(str::to_owned)
            .collect();
        self.opened += 1;
        self.unclaimed = false;
        self.probing = None;
        let translator = match self.translator.take() {
            Some(mut t) if self.previous.is_some() => {
                t.reopen(channels);
                t
            }
            Some(t) => t.next_epoch(self.opened, channels),
            None => IgniterTranslator::new(self.opened, channels),
        };
        let query = translator.query();
        self.translator = Some(translator);
        if let Some(stream) = self.current.replace(self.opened) {
            self.outputs.push_back(LinkOutput::CloseStream { stream });
        }
        (self.outputs).push_back(LinkOutput::OpenStream {
            stream: self.opened,
            query,
        });
    }

    /// The session said `Disconnect`: a `connected` current stream is set aside as the previous
    /// one (replacing any), to stay open until a stream that replaces it in this batch is
    /// `connected`; another is closed.
    pub fn disconnect(&mut self) {
        let connected = self.connected();
        match self.current.take() {
            Some(stream) if connected => {
                if let Some(older) = self.previous.replace(stream) {
                    self.outputs
                        .push_back(LinkOutput::CloseStream { stream: older });
                    self.disarm();
                }
            }
            Some(stream) => self.outputs.push_back(LinkOutput::CloseStream { stream }),
            None => {}
        }
        self.unclaimed = self.previous.is_some();
    }

    /// The end of a batch of the session's outputs: a previous stream that no stream replaced is
    /// closed.
    pub fn settle(&mut self) {
        if core::mem::take(&mut self.unclaimed) {
            self.end_overlap();
        }
    }

    /// Stream `stream` is open.
    pub fn handle_open(&mut self, session: &mut Session, now: Millis, stream: u64) {
        if self.current == Some(stream) {
            session.handle_open(now);
        }
    }

    /// An SSE event of `stream`: its type, its id (`lastEventId`) and its data. `parse_date`
    /// reads Igniter's ISO timestamps (ms since the epoch).
    pub fn handle_message(
        &mut self,
        now: Millis,
        stream: u64,
        kind: &str,
        id: &str,
        data: &str,
        parse_date: impl Fn(&str) -> Option<f64>,
    ) {
        let (Some(source), Some(t)) = (self.source(stream), self.translator.as_mut()) else {
            return;
        };
        let was_connected = t.connected();
        match t.translate(source, kind, id, data, parse_date) {
            Ok(frames) => {
                for frame in frames {
                    self.outputs.push_back(LinkOutput::Frame(frame));
                }
            }
            Err(problem) => self.outputs.push_back(LinkOutput::Problem(problem)),
        }
        if !was_connected && t.connected() && t.overlapping() {
            // The new stream bridges the change: the old one closes after a grace.
            self.disarm();
            let at = now + OVERLAP_GRACE_MS;
            self.overlap_until = Some(at);
            self.outputs.push_back(LinkOutput::ArmTimer(at));
        }
    }

    /// Data of `len` characters came on `stream`, over the cap `max`: dropped unread.
    pub fn handle_oversized(
        &mut self,
        session: &mut Session,
        now: Millis,
        stream: u64,
        len: u64,
        max: u64,
    ) {
        match self.source(stream) {
            Some(Source::Current) => session.handle_oversized(now, len, max),
            Some(Source::Previous) => self.end_overlap(),
            None => {}
        }
    }

    /// `stream` failed or was closed by the server. The current stream, once `connected`, is lost
    /// like any connection; before, it is probed to learn why.
    pub fn handle_failed(&mut self, session: &mut Session, now: Millis, stream: u64) {
        match self.source(stream) {
            Some(Source::Current) => {
                self.current = None;
                self.outputs.push_back(LinkOutput::CloseStream { stream });
                if self.connected() {
                    self.end_overlap();
                    session.handle_close(now, "the event stream failed or was closed");
                } else if let Some(t) = self.translator.as_ref() {
                    let channels = t.channels().to_vec();
                    let queries = vec![query_for(&channels)];
                    self.outputs
                        .push_back(LinkOutput::Probe { stream, queries });
                    self.probing = Some(Probing {
                        stream,
                        channels,
                        whole: None,
                    });
                }
            }
            Some(Source::Previous) => self.end_overlap(),
            None => {}
        }
    }

    /// What the probes of [`LinkOutput::Probe`] for `stream` got, in order. Ignored when a newer
    /// stream was opened meanwhile.
    pub fn handle_probes(
        &mut self,
        session: &mut Session,
        now: Millis,
        stream: u64,
        mut results: Vec<Probe>,
    ) {
        let Some(probing) = self.probing.take() else {
            return;
        };
        if probing.stream != stream || self.opened != stream {
            return;
        }
        let verdict = match probing.whole {
            None => {
                let whole = results.into_iter().next().unwrap_or_else(|| {
                    Probe::Unreachable("the stream's URL was not probed".to_owned())
                });
                if needs_channel_probes(&whole) {
                    return self.probe_each_channel(Probing {
                        whole: Some(whole),
                        ..probing
                    });
                }
                judge(&probing.channels, &whole, &[], None)
            }
            Some(whole) => {
                let control = (results.len() > probing.channels.len())
                    .then(|| results.pop())
                    .flatten();
                judge(&probing.channels, &whole, &results, control.as_ref())
            }
        };
        self.apply(session, now, verdict);
    }

    /// The overlap timer fired.
    pub fn handle_timeout(&mut self, now: Millis) {
        match self.overlap_until {
            Some(at) if now >= at => {
                self.overlap_until = None;
                if self.connected() {
                    self.end_overlap();
                }
            }
            // Woken early: the shell's timer is no longer armed.
            Some(at) => self.outputs.push_back(LinkOutput::ArmTimer(at)),
            None => {}
        }
    }

    /// The second round of probes: each channel alone, then the control.
    fn probe_each_channel(&mut self, probing: Probing) {
        let mut queries: Vec<String> = (probing.channels.iter())
            .map(|c| query_for(core::slice::from_ref(c)))
            .collect();
        queries.push(control_query());
        (self.outputs).push_back(LinkOutput::Probe {
            stream: probing.stream,
            queries,
        });
        self.probing = Some(probing);
    }

    fn apply(&mut self, session: &mut Session, now: Millis, verdict: Verdict) {
        match verdict {
            Verdict::Outage(reason) => {
                self.end_overlap();
                session.handle_close(now, &reason);
            }
            Verdict::Refused(refusals) => {
                let refusals: Vec<(String, String)> = (refusals.into_iter())
                    .map(|r| (r.channel, r.message))
                    .collect();
                session.refuse_channels(now, &refusals);
            }
        }
    }

    /// Which of the two streams `stream` is; `None` for a stream given up.
    fn source(&self, stream: u64) -> Option<Source> {
        if self.current == Some(stream) {
            Some(Source::Current)
        } else if self.previous == Some(stream) {
            Some(Source::Previous)
        } else {
            None
        }
    }

    fn connected(&self) -> bool {
        (self.translator.as_ref()).is_some_and(IgniterTranslator::connected)
    }

    /// Closes the previous stream, if any.
    fn end_overlap(&mut self) {
        if let Some(stream) = self.previous.take() {
            self.outputs.push_back(LinkOutput::CloseStream { stream });
        }
        if let Some(t) = self.translator.as_mut() {
            t.end_overlap();
        }
        self.disarm();
    }

    fn disarm(&mut self) {
        if self.overlap_until.take().is_some() {
            self.outputs.push_back(LinkOutput::DisarmTimer);
        }
    }
}

#[cfg(test)]
mod tests;
