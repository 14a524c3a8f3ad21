//! The Server-Sent Events driver: the relay's event stream (a ticket first, with a token), its
//! events handed to the session, and the answers of publishes over HTTP.

use super::*;

impl Shell {
    #[cfg_attr(not(feature = "igniter"), allow(unused_variables))]
    pub(super) fn on_stream(shell: &Rc<RefCell<Shell>>, number: u64, event: StreamEvent) {
        Shell::with(shell, |sh| {
            #[cfg(feature = "igniter")]
            if sh.igniter.is_some() {
                return sh.on_igniter_stream(number, event);
            }
            let now = now_ms();
            match event {
                StreamEvent::Open => sh.session.handle_open(now),
                StreamEvent::Message { data, raw, .. } => sh.handle_frame(now, &data, &raw),
                StreamEvent::Oversized { len } => {
                    sh.session
                        .handle_oversized(now, len.into(), sh.max_frame.into());
                }
                StreamEvent::Failed => {
                    sh.socket = None;
                    sh.session
                        .handle_close(now, "the event stream failed or was closed");
                }
            }
        });
    }

    pub(super) fn on_publish_result(
        shell: &Rc<RefCell<Shell>>,
        id: PublishId,
        result: PublishResult,
    ) {
        Shell::with(shell, |sh| {
            sh.session.handle_publish_result(now_ms(), id, result)
        });
    }

    pub(super) fn connect_stream(&mut self, query: &str) {
        #[cfg(feature = "igniter")]
        if let Some(link) = self.igniter.as_mut() {
            // Igniter's own query, in the link's `OpenStream`.
            return link.connect(&self.session);
        }
        self.connections += 1;
        let url = with_query(&self.relay().sse, query);
        let url = with_query(&url, &self.endpoints.scope_query);
        match self.session.token().map(str::to_owned) {
            Some(token) => {
                // `EventSource` cannot send a header: trade the token for a single-use ticket first.
                let attempt = self.connections;
                self.ticket_for = Some(attempt);
                let weak = self.me.clone();
                let ticket_url = self.relay().ticket.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let ticket = post_ticket(&ticket_url, &token).await;
                    if let Some(shell) = weak.upgrade() {
                        Shell::on_ticket(&shell, attempt, &url, ticket);
                    }
                });
            }
            None => self.open_stream(&url),
        }
    }

    /// The ticket for stream attempt `attempt` came back.
    pub(super) fn on_ticket(
        shell: &Rc<RefCell<Shell>>,
        attempt: u64,
        url: &str,
        ticket: Result<String, String>,
    ) {
        Shell::with(shell, |sh| {
            if sh.ticket_for != Some(attempt) || sh.connections != attempt {
                return; // the session gave up on this attempt meanwhile
            }
            sh.ticket_for = None;
            match ticket {
                Ok(ticket) => {
                    let mut query = String::from("ticket=");
                    percent_encode_into(&mut query, &ticket);
                    sh.open_stream(&with_query(url, &query));
                }
                Err(reason) => {
                    sh.report(reason.clone());
                    sh.session.handle_close(now_ms(), &reason);
                }
            }
        });
    }

    /// Opens the relay's event stream at `url` (complete with its query).
    pub(super) fn open_stream(&mut self, url: &str) {
        if let Some(stream) = self.open_event_source(url, &[], self.connections) {
            self.socket = Some(Transport::Stream { _stream: stream });
        }
    }

    /// An `EventSource` at `url`, listening to the `named` event types too, whose events go to
    /// [`on_stream`](Self::on_stream) with `number`. One that cannot be opened is reported, and
    /// the session told.
    pub(super) fn open_event_source(
        &mut self,
        url: &str,
        named: &'static [&'static str],
        number: u64,
    ) -> Option<Stream> {
        let weak = self.me.clone();
        let opened = Stream::open(url, named, self.max_frame, move |event| {
            if let Some(shell) = weak.upgrade() {
                Shell::on_stream(&shell, number, event);
            }
        });
        match opened {
            Ok(stream) => Some(stream),
            Err(e) => {
                let reason = cat!(
                    "could not open an event stream to ",
                    url,
                    ": ",
                    describe(&e)
                );
                self.report(reason.clone());
                self.session.handle_close(now_ms(), &reason);
                None
            }
        }
    }
}
