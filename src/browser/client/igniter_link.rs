//! `flavor: "igniter"`: the shell's driver of an Igniter.js server's streams.

use super::*;

/// `flavor: "igniter"`: the shell's part of what `engine::igniter::IgniterLink` decides — streams
/// opened and closed, probes fetched, one timer — and the frames it translates handed to the session.
impl Shell {
    pub(super) fn on_igniter_stream(&mut self, stream: u64, event: StreamEvent) {
        let now = now_ms();
        let (Some(link), session) = (self.igniter.as_mut(), &mut self.session) else {
            return;
        };
        match event {
            StreamEvent::Open => link.handle_open(session, now, stream),
            StreamEvent::Message { kind, id, data, .. } => {
                link.handle_message(now, stream, &kind, &id, &data, parse_date)
            }
            StreamEvent::Oversized { len } => {
                let max = self.max_frame.into();
                link.handle_oversized(session, now, stream, len.into(), max)
            }
            StreamEvent::Failed => link.handle_failed(session, now, stream),
        }
        self.carry_out(FrameAt::None);
        self.carry_out_igniter(Some(now));
    }

    /// Carries out the link's outputs, each followed by the session's outputs it led to. A frame
    /// is handed to the session at `at` (`None`: now), and its outputs carried out with it at hand.
    pub(super) fn carry_out_igniter(&mut self, at: Option<u64>) {
        loop {
            let Some(link) = self.igniter.as_mut() else {
                return;
            };
            link.settle();
            let Some(output) = link.poll_output() else {
                return;
            };
            match output {
                LinkOutput::Frame(frame) => {
                    let now = at.unwrap_or_else(now_ms);
                    self.session.handle_decoded(now, Ok(frame.frame()));
                    self.carry_out(FrameAt::Translated(&frame));
                }
                LinkOutput::OpenStream { stream, query } => {
                    let url = self.igniter_url(&query);
                    let named = IgniterTranslator::EVENT_TYPES;
                    if let Some(source) = self.open_event_source(&url, named, stream) {
                        self.igniter_streams.push((stream, source));
                    }
                }
                LinkOutput::CloseStream { stream } => {
                    self.igniter_streams.retain(|(n, _)| *n != stream)
                }
                LinkOutput::Probe { stream, queries } => self.probe(stream, &queries),
                LinkOutput::ArmTimer(deadline) => self.arm_overlap_timer(deadline),
                LinkOutput::DisarmTimer => {
                    if let Some(timer) = self.overlap_timer.as_mut() {
                        timer.clear();
                    }
                }
                LinkOutput::Problem(message) => self.report(message),
            }
            self.carry_out(FrameAt::None);
        }
    }

    /// The Igniter stream URL with `query` (the scopes after it).
    pub(super) fn igniter_url(&self, query: &str) -> String {
        let url = with_query(&self.relay().sse, query);
        with_query(&url, &self.endpoints.scope_query)
    }

    /// `fetch`es the stream URL with each query, one after the other, then hands what they got to
    /// the link.
    pub(super) fn probe(&self, stream: u64, queries: &[String]) {
        let urls: Vec<String> = queries.iter().map(|q| self.igniter_url(q)).collect();
        let weak = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let mut got = Vec::with_capacity(urls.len());
            for url in &urls {
                got.push(probe(url).await);
            }
            if let Some(shell) = weak.upgrade() {
                Shell::with(&shell, |sh| {
                    if let Some(link) = sh.igniter.as_mut() {
                        link.handle_probes(&mut sh.session, now_ms(), stream, got);
                    }
                });
            }
        });
    }

    pub(super) fn arm_overlap_timer(&mut self, deadline: u64) {
        let weak = self.me.clone();
        let timer = self.overlap_timer.get_or_insert_with(|| {
            Timer::new(move || {
                if let Some(shell) = weak.upgrade() {
                    Shell::with(&shell, |sh| {
                        if let Some(timer) = sh.overlap_timer.as_mut() {
                            timer.fired();
                        }
                        if let Some(link) = sh.igniter.as_mut() {
                            link.handle_timeout(now_ms());
                        }
                    });
                }
            })
        });
        timer.set(Some(deadline), now_ms);
    }
}
