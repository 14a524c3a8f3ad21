//! The shell's WebSocket driver: opening the socket (plain for the simple protocol), what it
//! reports (open, frames parsed by `frameListener`, close), the `event` frames routed by their keys
//! with their callbacks called from JS, and sending.

use super::*;

impl Shell {
    fn on_socket(shell: &Rc<RefCell<Shell>>, event: SocketEvent) {
        Shell::with(shell, |sh| {
            let now = now_ms();
            match event {
                SocketEvent::Open => {
                    sh.session.handle_open(now);
                    #[cfg(feature = "simple")]
                    if let Some(hello) = sh.simple.as_ref().map(SimpleTranslator::hello) {
                        sh.handle_translated(now, &hello);
                    }
                }
                #[cfg(feature = "simple")]
                SocketEvent::Text { text, .. } if sh.simple.is_some() => {
                    let date = js_sys::Date::now();
                    match sh.simple.as_mut().map(|t| t.incoming(&text, date)) {
                        Some(Ok(Some(frame))) => sh.handle_translated(now, &frame),
                        Some(Ok(None)) | None => {}
                        Some(Err(problem)) => sh.session.handle_bad_frame(problem),
                    }
                }
                #[cfg(feature = "simple")]
                SocketEvent::Text { text, raw } => sh.handle_frame(now, &text, &raw),
                SocketEvent::Frame(parsed) => {
                    let mut texts = Texts::default();
                    let decoded = decode_object(&parsed, &mut texts);
                    sh.session.handle_decoded(now, decoded);
                    sh.process_with(FrameAt::Frame(&parsed));
                }
                SocketEvent::NotJson(why) => {
                    let decoded = Err(FrameError::not_valid(&why));
                    sh.session.handle_decoded(now, decoded);
                    sh.process();
                }
                SocketEvent::Binary => sh.session.handle_binary(now),
                SocketEvent::Oversized { len } => {
                    sh.session
                        .handle_oversized(now, len.into(), sh.max_frame.into());
                }
                SocketEvent::Closed { code, reason } => {
                    sh.socket = None;
                    sh.session.handle_socket_close(now, code, &reason);
                }
            }
        });
    }

    /// An `event` frame that JS parsed: the session routes it by its keys. When delivering it is
    /// all there is to do (the common case), the subscriptions go back to JS, which builds the
    /// event and calls their callbacks without coming back through wasm; otherwise the shell
    /// runs everything, in order, as for any frame.
    fn on_frame_event(shell: &Rc<RefCell<Shell>>, ev: FrameEvent) -> JsValue {
        let calls = {
            let mut sh = shell.borrow_mut();
            let frame = sh.route_parsed_event(ev);
            sh.process_with(FrameAt::Parsed);
            if let Some(subs) = sh.only_this_frame() {
                return subs;
            }
            sh.calls_with_frame(&frame)
        };
        Shell::run(shell, calls);
        JsValue::UNDEFINED
    }

    /// Hands the session an `event` frame JS parsed, by its keys; returns the parsed frame.
    #[inline(always)]
    fn route_parsed_event(&mut self, ev: FrameEvent) -> JsValue {
        let FrameEvent {
            channel,
            kind,
            seq,
            ids,
            frame,
            stamp,
        } = ev;
        // Numbers as JS's `String(n)` writes them (JS checked they are safe integers).
        let read_ids = || {
            ids.dyn_ref::<Array>().map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_string().or_else(|| id.as_f64().map(number_to_id)))
                    .collect()
            })
        };
        // Read only when a subscription of the channel filters by id (or a coalescing window
        // holds the event back, below).
        let keys = EventKeys {
            channel: &channel,
            seq,
            kind: &kind,
            ids: if self.session.registry().indexes_ids(&channel) {
                read_ids()
            } else {
                None
            },
        };
        self.session.handle_event(now_at(stamp), keys, |given| {
            owned_event(&channel, &kind, seq, given.or_else(read_ids), &frame)
        });
        frame
    }

    /// The common case, answered in place: when delivering the frame at hand is all there is to
    /// do, its subscriptions (a sub id or a `Uint32Array`) for JS to call; `calls` keeps its
    /// buffer for the next event.
    #[inline(always)]
    fn only_this_frame(&mut self) -> Option<JsValue> {
        let [Call::DeliverThisFrame { subs }] = self.calls.as_slice() else {
            return None;
        };
        let subs = match subs.as_slice() {
            [sub] => JsValue::from(*sub),
            subs => js_sys::Uint32Array::from(subs).into(),
        };
        self.calls.clear();
        Some(subs)
    }

    /// Rare: something else to do too (a state change, a problem). Everything runs in the shell,
    /// in the session's order, with the event built from `frame` where it is delivered.
    #[inline(always)]
    fn calls_with_frame(&mut self, frame: &JsValue) -> Vec<Call> {
        let mut calls = core::mem::take(&mut self.calls);
        let event = calls
            .iter()
            .any(|c| matches!(c, Call::DeliverThisFrame { .. }))
            .then(|| event_from_frame(frame));
        for call in &mut calls {
            if let Call::DeliverThisFrame { subs } = call {
                *call = match &event {
                    Some(Ok(event)) => Call::Deliver {
                        subs: core::mem::take(subs),
                        event: event.clone(),
                    },
                    Some(Err(e)) => Call::Problem(problem_error(&cat!(
                        "could not build the event object: ",
                        describe(e)
                    ))),
                    None => continue,
                };
            }
        }
        calls
    }

    /// Sends a frame on the WebSocket; a send that fails closes the connection.
    #[inline(always)]
    pub(super) fn send(&mut self, text: &str) {
        let failed = match &self.socket {
            Some(Transport::Socket(socket)) => socket.send(text).err(),
            _ => None, // no connection, or an event stream
        };
        if let Some(e) = failed {
            let reason = describe(&e);
            self.socket = None;
            self.session
                .handle_close(now_ms(), &cat!("send failed: ", reason));
        }
    }

    pub(super) fn connect(&mut self) {
        let weak = self.me.clone();
        let url = with_query(&self.relay().ws, &self.endpoints.scope_query);
        let plain = self.start_simple();
        let (on_frame, on_throw) = (weak.clone(), weak.clone());
        let handlers = Handlers {
            on_event: move |event| {
                if let Some(shell) = weak.upgrade() {
                    Shell::on_socket(&shell, event);
                }
            },
            on_frame_event: move |event| match on_frame.upgrade() {
                Some(shell) => Shell::on_frame_event(&shell, event),
                None => JsValue::UNDEFINED,
            },
            callbacks: self.callbacks.clone().into(),
            on_throw: Rc::new(move |thrown: JsValue| {
                if let Some(shell) = on_throw.upgrade() {
                    Shell::hook(&shell, "a live event callback threw", &thrown);
                }
            }),
        };
        let opened = Socket::open(&url, plain, self.max_frame, handlers);
        match opened {
            Ok(socket) => self.socket = Some(Transport::Socket(socket)),
            Err(e) => {
                let reason = cat!("could not open a WebSocket to ", url, ": ", describe(&e));
                self.report(reason.clone());
                self.session.handle_close(now_ms(), &reason);
            }
        }
    }

    /// `protocol: "simple"`: a new translator for the connection about to open. `true` when the
    /// socket must be a plain one (no subprotocol).
    fn start_simple(&mut self) -> bool {
        #[cfg(feature = "simple")]
        {
            self.simple = self.endpoints.simple.then(|| {
                self.connections += 1;
                SimpleTranslator::new(self.connections)
            });
            self.endpoints.simple
        }
        #[cfg(not(feature = "simple"))]
        false
    }
}
