//! `LiveClient`, the `#[wasm_bindgen]` surface: one connection, many subscriptions.
//!
//! Every entry point (a call from the app, a socket event, a timer) feeds the session, drains its
//! outputs while holding the shell, then releases it and only then calls into app code. A callback
//! may therefore subscribe, unsubscribe, publish or close without tripping over a borrow.
//!
//! The drivers, each in `client/`: `websocket` (the default transport), `sse`, `igniter_link`
//! (Igniter.js streams) and `simple` (the seed's protocol over a plain socket).

use super::frame_object::{decode_object, Texts};
#[cfg(feature = "sse")]
use super::http::{post_publish, post_ticket};
use super::js::{
    console_error, describe, event_from_frame, live_event, now_at, now_ms, owned_parts,
    random_seed, resync_event,
};
use super::page::{is_online, is_visible, PageEvent, PageWatcher};
use super::socket::{FrameEvent, Handlers, Socket, SocketEvent};
#[cfg(feature = "igniter")]
use super::stream::probe;
#[cfg(feature = "sse")]
use super::stream::{Stream, StreamEvent};
use super::timer::Timer;
use crate::cat;
use crate::engine::frame::FrameError;
use crate::engine::hash::Map;
#[cfg(feature = "igniter")]
use crate::engine::igniter::{IgniterLink, IgniterTranslator, LinkOutput, TranslatedFrame};
use crate::engine::limiter::{ConsoleLimiter, Verdict};
use crate::engine::limits::MAX_TIMER_MS;
use crate::engine::options::{max_frame_bytes, millis, session_config, Choice, OptionsError};
use crate::engine::relays::with_query;
use crate::engine::session::Enter;
#[cfg(feature = "sse")]
use crate::engine::session::{percent_encode_into, PublishResult};
#[cfg(feature = "simple")]
use crate::engine::simple::SimpleTranslator;
use crate::engine::{
    number_to_id, ConnectionState, Event, EventKeys, Filter, Output, PublishError, PublishId,
    Relay, Relays, Session, SessionConfig, SubId, TypeFilter,
};
use crate::prelude::*;
use alloc::rc::{Rc, Weak};
use core::cell::RefCell;
use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

// Each transport's driver in a file of its own; this one holds the surface and the shell.
#[cfg(feature = "igniter")]
mod igniter_link;
#[cfg(feature = "simple")]
mod simple;
#[cfg(feature = "sse")]
mod sse;
mod websocket;

/// App code to run once the shell is released.
enum Call {
    Deliver {
        subs: Vec<SubId>,
        event: JsValue,
    },
    /// The delivery of the `event` frame being handled, which JS parsed
    /// ([`Shell::on_frame_event`]): when it is all there is to do, JS calls the callbacks itself.
    DeliverThisFrame {
        subs: Vec<SubId>,
    },
    Settle {
        callback: Function,
        value: JsValue,
    },
    State(JsValue),
    Problem(JsValue),
    /// Call the app's `getToken` and answer the session's token `request` with what it settles to.
    GetToken {
        request: u64,
        get_token: Function,
    },
}

/// The frame whose outputs are being processed, from which the app's event is built.
#[derive(Clone, Copy)]
enum FrameAt<'a> {
    /// No frame: a call from the app, a timer.
    None,
    /// Its text, as the JS string it arrived as, or the value `JSON.parse` made of it.
    Frame(&'a JsValue),
    /// An `event` frame that JS parsed ([`Shell::on_frame_event`]), which builds the event.
    Parsed,
    /// A frame translated from an Igniter.js stream, whose parts build the event.
    #[cfg(feature = "igniter")]
    Translated(&'a TranslatedFrame),
}

/// Where tokens come from (authentication on).
enum TokenSource {
    /// `token`: the same token for every connection (no refresh beyond it).
    Fixed(String),
    /// `getToken`: called before every connection and before the token expires.
    Getter(Function),
}

/// Where the relays are.
struct Endpoints {
    /// Each relay's WebSocket, SSE, ticket and publish URLs; the session says which is in use.
    relays: Relays,
    /// `scopes=…` to add to either URL, or empty.
    scope_query: String,
    /// The WebSocket server speaks the seed's simple protocol (`protocol: "simple"`).
    #[cfg(feature = "simple")]
    simple: bool,
}

/// The connection in use.
enum Transport {
    Socket(Socket),
    /// Held for its listeners and its `close()` on drop.
    #[cfg(feature = "sse")]
    Stream {
        _stream: Stream,
    },
}

struct Shell {
    endpoints: Endpoints,
    session: Session,
    socket: Option<Transport>,
    /// `flavor: "igniter"`: what to do with the Igniter.js streams (`engine::igniter::IgniterLink`).
    #[cfg(feature = "igniter")]
    igniter: Option<IgniterLink>,
    /// Igniter: the streams open, by number (two while a change of the channel set overlaps them).
    #[cfg(feature = "igniter")]
    igniter_streams: Vec<(u64, Stream)>,
    /// Igniter: ends the overlap of the two streams.
    #[cfg(feature = "igniter")]
    overlap_timer: Option<Timer>,
    /// The current connection's translator with `protocol: "simple"`.
    #[cfg(feature = "simple")]
    simple: Option<SimpleTranslator>,
    /// Event streams and simple-protocol connections opened so far (their numbers).
    #[cfg(any(feature = "sse", feature = "simple"))]
    connections: u64,
    /// The stream attempt (its `connections` number) waiting for its ticket; cleared when the
    /// session disconnects, so a late ticket opens nothing.
    #[cfg(feature = "sse")]
    ticket_for: Option<u64>,
    tokens: Option<TokenSource>,
    timer: Option<Timer>,
    page: Option<PageWatcher>,
    /// The callbacks by sub id: a JS `Map`, which the socket's listener reads too when it delivers
    /// an event itself.
    callbacks: js_sys::Map,
    publishes: Map<PublishId, (Function, Function)>,
    on_error: Option<Function>,
    /// Longer text frames (in bytes of UTF-8) are dropped before they enter wasm (`maxFrameBytes`).
    max_frame: u32,
    /// The rate limit of the `console.error` fallback.
    console: ConsoleLimiter,
    on_state: Option<Function>,
    calls: Vec<Call>,
    me: Weak<RefCell<Shell>>,
}

/// A live connection to a relay. Created by the JS entry (`liveProvider`), not by apps directly.
#[wasm_bindgen]
pub struct LiveClient {
    shell: Rc<RefCell<Shell>>,
}

#[wasm_bindgen]
impl LiveClient {
    /// Created by the npm package's JS entry (`createLiveClient`), which checks every option,
    /// throwing `TypeError`s that name it as the app wrote it, and derives each relay's endpoints;
    /// this constructor only reads what the entry hands it:
    ///
    /// - `url`: the relays' endpoints, a string or an array (nodes of one cluster: a failed attempt
    ///   or a dropped connection sends the next attempt to the next one, round robin);
    /// - `options`: `sseUrl`, `ticketUrl`, `publishUrl` (arrays, one entry per `url` in its order),
    ///   `scopeQuery` (`scopes=…` or absent), `transport` (`"websocket"`, `"sse"`, `"auto"`),
    ///   `flavor`, `protocol`, the numbers `backoffMinMs`, `backoffMaxMs`, `stableAfterMs`,
    ///   `pingGraceMs`, `connectTimeoutMs`, `publishTimeoutMs`, `publishQueue`, `idleCloseMs`,
    ///   `coalesceMs`, `maxFrameBytes`, the functions `onError(error)`, `onStateChange(state)`,
    ///   and `token` (a string) or `getToken()` (a function returning a token or a promise of one).
    ///
    /// Odd input never panics: a number, string or function that is missing or of another type
    /// is left at its default (an endpoint missing from a list is empty: its requests fail and are
    /// reported). What cannot work throws one generic `Error`: no `url`, an unknown `transport`, a
    /// `protocol` other than `"v1"`/`"simple"` or `"simple"` with SSE, a flavor or a token. An
    /// option this build leaves out (`transport: "sse"`/`"auto"`, `flavor: "igniter"` and
    /// `protocol: "simple"` need the crate's `sse`, `igniter` and `simple` features: the npm
    /// package's `full/` build, which its entry loads for them) throws an `Error` naming it.
    #[wasm_bindgen(constructor)]
    pub fn new(url: JsValue, options: &JsValue) -> Result<LiveClient, JsValue> {
        let text = |name| field(options, name).as_string();
        let number = |name: &str, default| number(options, name, default);
        let tokens = match (
            field(options, "getToken").dyn_into::<Function>(),
            text("token"),
        ) {
            (Ok(get_token), _) => Some(TokenSource::Getter(get_token)),
            (_, Some(token)) if !token.is_empty() => Some(TokenSource::Fixed(token)),
            _ => None,
        };
        let igniter = text("flavor").as_deref() == Some("igniter");
        let scope_query = text("scopeQuery").unwrap_or_default();
        let chosen = Choice {
            transport: text("transport").as_deref(),
            protocol: text("protocol").as_deref(),
            igniter,
            tokens: tokens.is_some(),
            scopes: !scope_query.is_empty(),
        }
        .decide()
        .map_err(|error| match error {
            OptionsError::NeedsFullBuild(option) => needs_full_build(option),
            OptionsError::CannotWork => refused(),
        })?;
        let relays = Relays::new(
            strings(&url),
            strings(&field(options, "sseUrl")),
            strings(&field(options, "ticketUrl")),
            strings(&field(options, "publishUrl")),
        )
        .ok_or_else(refused)?;
        let cfg = session_config(
            chosen,
            igniter,
            tokens.is_some(),
            relays.len(),
            random_seed(),
            number,
        );
        let endpoints = Endpoints {
            relays,
            scope_query,
            #[cfg(feature = "simple")]
            simple: chosen.simple,
        };
        let max_frame = max_frame_bytes(number("maxFrameBytes", 0));
        let shell = Shell::new_shared(options, cfg, endpoints, tokens, igniter, max_frame);
        Ok(LiveClient { shell })
    }

    /// Subscribes `callback` to `channel`, filtered by event `types` (an array of strings, `"*"`
    /// for all; `undefined`: all) and by record ids: `id` (one), else `ids` when it is an array
    /// of strings. Returns the subscription's id. The arrays are read here: wasm-bindgen's glue
    /// for `Vec<String>` arguments costs more.
    #[wasm_bindgen(js_name = subscribe)]
    pub fn subscribe_js(
        &self,
        channel: String,
        types: Option<Array>,
        id: Option<String>,
        ids: Option<Array>,
        callback: Function,
    ) -> u32 {
        let strings = |array: &Array| array.iter().filter_map(|v| v.as_string()).collect();
        let types = types.map_or(TypeFilter::All, |t| {
            TypeFilter::from_types::<Vec<String>, _>(strings(&t))
        });
        let ids = match id {
            Some(id) => Some(vec![id]),
            None => ids.as_ref().map(strings),
        };
        self.add(channel, Filter::new(types, ids), callback)
    }

    /// Gives subscription `id` its own coalescing window (`ms`; `0`: every event at once) instead
    /// of the client's `coalesceMs`. `index.js` checks `ms` (a number from 0 to 2^31 - 1); anything
    /// else reaching here is clamped into that range, NaN to 0.
    #[wasm_bindgen(js_name = setCoalesceMs)]
    pub fn set_coalesce_ms(&self, id: u32, ms: f64) {
        let ms = (ms as u64).min(MAX_TIMER_MS);
        Shell::with(&self.shell, |sh| sh.session.set_coalesce_ms(id, ms));
    }

    /// Ends a subscription; `false` when it had already ended.
    pub fn unsubscribe(&self, id: u32) -> bool {
        Shell::with(&self.shell, |sh| {
            sh.callbacks.delete(&JsValue::from(id));
            sh.session.unsubscribe_clocked(now_ms, id)
        })
    }

    /// Publishes an event through the relay. `payload` and `meta` are JSON texts, `date` is in
    /// milliseconds. Resolves with `{ seq }` on the relay's ack; rejects with a `LivePublishError`.
    pub fn publish(
        &self,
        channel: String,
        kind: String,
        payload: String,
        date: f64,
        meta: Option<String>,
    ) -> Promise {
        let mut settle = None;
        let promise = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
        let Some((resolve, reject)) = settle else {
            return promise;
        };
        Shell::with(&self.shell, |sh| {
            match sh
                .session
                .publish(now_ms(), &channel, &kind, &payload, date, meta.as_deref())
            {
                Ok(id) => {
                    sh.publishes.insert(id, (resolve, reject));
                }
                Err(error) => sh.calls.push(Call::Settle {
                    callback: reject,
                    value: publish_error(&error),
                }),
            }
        });
        promise
    }

    /// Closes the connection for good; pending publishes reject, callbacks stop.
    pub fn close(&self) {
        Shell::with(&self.shell, |sh| {
            sh.session.close("closed by the app");
            // Also the rest of an event being delivered now (a callback that closes its client).
            sh.callbacks.clear();
        });
    }

    /// `idle`, `connecting`, `open`, `reconnecting` or `closed`.
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> String {
        self.shell.borrow().session.state().name().to_owned()
    }

    /// Counters: `{ problems, duplicates, resyncs, connections, delivered, replayed }`, and `url`:
    /// the relay endpoint in use (the current connection's; while reconnecting, the one the next
    /// attempt goes to).
    #[wasm_bindgen(getter)]
    pub fn stats(&self) -> JsValue {
        let sh = self.shell.borrow();
        let stats = sh.session.stats();
        let obj = Object::new();
        set(&obj, "problems", &JsValue::from_f64(stats.problems as f64));
        // With Igniter, also the events that arrived twice (on two overlapping streams).
        let igniter = sh.stream_duplicates();
        set(
            &obj,
            "duplicates",
            &JsValue::from_f64((stats.duplicates + igniter) as f64),
        );
        set(&obj, "resyncs", &JsValue::from_f64(stats.resyncs as f64));
        set(
            &obj,
            "connections",
            &JsValue::from_f64(stats.connections as f64),
        );
        set(
            &obj,
            "coalesced",
            &JsValue::from_f64(stats.coalesced as f64),
        );
        set(
            &obj,
            "delivered",
            &JsValue::from_f64(stats.delivered as f64),
        );
        set(&obj, "replayed", &JsValue::from_f64(stats.replayed as f64));
        let relay = sh.relay();
        let url = if sh.session.uses_sse() {
            &relay.sse
        } else {
            &relay.ws
        };
        set(&obj, "url", &JsValue::from_str(url));
        obj.into()
    }

    /// Where a subscription stands with the relay: `pending` (not confirmed on the current
    /// connection yet), `subscribed`, `forbidden` (the relay refused its channel for the token) or
    /// `ended`.
    #[wasm_bindgen(js_name = subscriptionState)]
    pub fn subscription_state(&self, id: u32) -> String {
        let sh = self.shell.borrow();
        sh.session
            .subscription_status(id)
            .map_or("ended", |s| s.name())
            .to_owned()
    }

    /// Presence (`docs/PROTOCOL.md`, *Presence*), one entry point for the entry's `presence.js`:
    /// `op` 0 enters `channel` as a member with `data` (JSON text of an object) and `who` (the
    /// join's `key`, `user` and `info` members as JSON text); 1 enters it as a watcher; 2 replaces
    /// the data;
    /// 3 and 4 end a member's and a watcher's handle. 5: something the entry found wrong in a
    /// presence frame (`channel` is the message), counted in `problems` and reported.
    #[wasm_bindgen(js_name = presence)]
    pub fn presence_js(&self, op: u32, channel: String, data: Option<String>, who: Option<String>) {
        let data = data.unwrap_or_default();
        Shell::with(&self.shell, |sh| {
            let s = &mut sh.session;
            match op {
                0 | 1 => {
                    let enter = Enter {
                        data: &data,
                        watch: op == 1,
                        who: who.as_deref().unwrap_or_default(),
                    };
                    s.presence_enter(now_ms(), &channel, enter)
                }
                2 => s.presence_update(&channel, &data),
                3 | 4 => s.presence_exit(now_ms(), &channel, op == 4),
                _ => s.handle_bad_frame(channel),
            }
        });
    }

    /// How many subscriptions are live.
    #[wasm_bindgen(getter, js_name = subscriptionCount)]
    pub fn subscription_count(&self) -> u32 {
        self.shell.borrow().session.registry().len() as u32
    }
}

impl Shell {
    /// The shell of a new client, shared: its session (told whether the page is online and
    /// visible), the timer and page watcher calling back through a weak reference, and the hooks
    /// `options` gives (`onError`, `onStateChange`, the entry's presence listener).
    #[inline(always)]
    #[cfg_attr(not(feature = "igniter"), allow(unused_variables))]
    fn new_shared(
        options: &JsValue,
        cfg: SessionConfig,
        endpoints: Endpoints,
        tokens: Option<TokenSource>,
        igniter: bool,
        max_frame: u32,
    ) -> Rc<RefCell<Shell>> {
        let on_error = field(options, "onError").dyn_into::<Function>().ok();
        let on_state = field(options, "onStateChange").dyn_into::<Function>().ok();
        Rc::new_cyclic(|me: &Weak<RefCell<Shell>>| {
            let weak = me.clone();
            let timer = Timer::new(move || {
                if let Some(shell) = weak.upgrade() {
                    Shell::on_timer(&shell);
                }
            });
            let weak = me.clone();
            let page = PageWatcher::new(move |event| {
                if let Some(shell) = weak.upgrade() {
                    Shell::on_page(&shell, event);
                }
            });
            let mut session = Session::new(cfg);
            session.set_online(now_ms(), is_online());
            session.set_visible(now_ms(), is_visible());
            RefCell::new(Shell {
                endpoints,
                session,
                socket: None,
                #[cfg(feature = "igniter")]
                igniter: igniter.then(IgniterLink::new),
                #[cfg(feature = "igniter")]
                igniter_streams: Vec::new(),
                #[cfg(feature = "igniter")]
                overlap_timer: None,
                #[cfg(feature = "simple")]
                simple: None,
                #[cfg(any(feature = "sse", feature = "simple"))]
                connections: 0,
                #[cfg(feature = "sse")]
                ticket_for: None,
                tokens,
                timer: Some(timer),
                page: Some(page),
                callbacks: presence_listener(options),
                publishes: Map::default(),
                on_error,
                console: ConsoleLimiter::new(),
                max_frame,
                on_state,
                calls: Vec::new(),
                me: me.clone(),
            })
        })
    }
}

impl LiveClient {
    /// [`LiveClient::subscribe_js`] (`subscribe` in JS) for Rust callers: the browser tests.
    pub fn subscribe(
        &self,
        channel: String,
        types: Vec<String>,
        ids: Option<Vec<String>>,
        callback: Function,
    ) -> u32 {
        self.add(
            channel,
            Filter::new(TypeFilter::from_types(types), ids),
            callback,
        )
    }

    fn add(&self, channel: String, filter: Filter, callback: Function) -> u32 {
        Shell::with(&self.shell, |sh| {
            let id = sh.session.subscribe_clocked(now_ms, &channel, filter);
            sh.callbacks.set(&JsValue::from(id), &callback);
            id
        })
    }
}

impl Drop for LiveClient {
    fn drop(&mut self) {
        if let Ok(mut sh) = self.shell.try_borrow_mut() {
            sh.session.close("the client was freed");
            sh.socket = None;
            sh.timer = None;
            sh.page = None;
            #[cfg(feature = "igniter")]
            {
                sh.igniter_streams.clear();
                sh.overlap_timer = None;
            }
        }
    }
}

impl Shell {
    /// The relay the session uses now (the current connection's, or the next attempt's).
    fn relay(&self) -> &Relay {
        self.endpoints.relays.get(self.session.relay())
    }

    /// Events that arrived twice on two overlapping Igniter streams (the session never saw them).
    fn stream_duplicates(&self) -> u64 {
        #[cfg(feature = "igniter")]
        return self.igniter.as_ref().map_or(0, IgniterLink::duplicates);
        #[cfg(not(feature = "igniter"))]
        0
    }

    /// Runs `f` on the shell, processes the session's outputs, then runs app code with the shell
    /// released.
    fn with<R>(shell: &Rc<RefCell<Shell>>, f: impl FnOnce(&mut Shell) -> R) -> R {
        let (result, calls) = {
            let mut sh = shell.borrow_mut();
            let result = f(&mut sh);
            sh.process();
            (result, core::mem::take(&mut sh.calls))
        };
        Shell::run(shell, calls);
        result
    }

    fn on_page(shell: &Rc<RefCell<Shell>>, event: PageEvent) {
        Shell::with(shell, |sh| {
            let now = now_ms();
            match event {
                PageEvent::Online(online) => sh.session.set_online(now, online),
                PageEvent::Visible(visible) => sh.session.set_visible(now, visible),
                PageEvent::Frozen(frozen) => sh.session.set_frozen(now, frozen),
            }
        });
    }

    fn on_timer(shell: &Rc<RefCell<Shell>>) {
        Shell::with(shell, |sh| {
            if let Some(timer) = sh.timer.as_mut() {
                timer.fired();
            }
            sh.session.handle_timeout(now_ms());
        });
    }

    /// Hands a text frame to the session and carries out what it says at once, while `raw` (the
    /// frame as the JS string it arrived as) is at hand: the session's deliveries of this frame
    /// ([`Output::DeliverFrame`]) build the app's event from it with one `JSON.parse`.
    #[cfg(any(feature = "sse", feature = "simple"))]
    fn handle_frame(&mut self, now: u64, text: &str, raw: &JsValue) {
        self.session.handle_text(now, text);
        self.process_with(FrameAt::Frame(raw));
    }

    /// A frame of protocol v1 translated from the simple protocol: handed over as
    /// [`handle_frame`](Self::handle_frame) does, with a JS copy of its text.
    #[cfg(feature = "simple")]
    fn handle_translated(&mut self, now: u64, text: &str) {
        self.handle_frame(now, text, &JsValue::from_str(text));
    }

    /// Carries out the session's outputs, then arms the timer for its next deadline.
    fn process(&mut self) {
        self.process_with(FrameAt::None);
    }

    /// [`process`](Self::process) right after the session was handed `frame`: its text as it
    /// arrived, or the object `frameListener` parsed it into.
    fn process_with(&mut self, frame: FrameAt<'_>) {
        self.carry_out(frame);
        #[cfg(feature = "igniter")]
        self.carry_out_igniter(None);
        let deadline = self.session.poll_timeout();
        if let Some(timer) = self.timer.as_mut() {
            timer.set(deadline, now_ms);
        }
    }

    /// Carries out the session's outputs (`frame`: the frame it was just handed).
    fn carry_out(&mut self, frame: FrameAt<'_>) {
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Connect => self.connect(),
                #[cfg(feature = "sse")]
                Output::ConnectStream { query } => self.connect_stream(&query),
                #[cfg(feature = "sse")]
                Output::PostPublish { id, body } => self.post_publish(id, body),
                #[cfg(feature = "simple")]
                Output::Send(text) if self.simple.is_some() => self.send_simple(&text),
                Output::Send(text) => self.send(&text),
                Output::Disconnect => self.disconnect(),
                Output::NeedToken { request } => self.need_token(request),
                Output::Error {
                    code,
                    channel,
                    message,
                } => self.report_code(&message, code.name(), channel.as_deref()),
                Output::DeliverFrame { subs } => self.deliver_frame(subs, &frame),
                Output::Deliver { subs, event } => {
                    let built = live_event(
                        &event.channel,
                        &event.kind,
                        &event.payload,
                        event.date,
                        event.meta,
                    );
                    self.deliver(subs, built);
                }
                Output::Resync {
                    subs,
                    channel,
                    reason,
                } => self.calls.push(Call::Deliver {
                    subs,
                    event: resync_event(&channel, &reason),
                }),
                Output::PublishAcked { id, seq } => self.settle(id, Ok(seq)),
                Output::PublishFailed { id, error } => self.settle(id, Err(error)),
                Output::State(state) => {
                    if self.on_state.is_some() {
                        self.calls.push(Call::State(state_object(&state)));
                    }
                }
                Output::Problem(message) => self.report(message),
                // To the entry's presence bookkeeping, through the callbacks (`presence_listener`).
                Output::PresenceStatus { channel, status } => self.calls.push(Call::Deliver {
                    subs: vec![PRESENCE_SUB],
                    event: JsValue::from_str(&cat!(status.name(), ' ', channel)),
                }),
            }
        }
    }

    /// POSTs a publish (SSE: publishes go over HTTP) and hands the session its outcome.
    #[cfg(feature = "sse")]
    #[inline(always)]
    fn post_publish(&mut self, id: PublishId, body: String) {
        let weak = self.me.clone();
        let url = self.relay().publish.clone();
        let token = self.session.token().map(str::to_owned);
        wasm_bindgen_futures::spawn_local(async move {
            let result = post_publish(&url, &body, token.as_deref()).await;
            if let Some(shell) = weak.upgrade() {
                Shell::on_publish_result(&shell, id, result);
            }
        });
    }

    #[inline(always)]
    fn disconnect(&mut self) {
        #[cfg(feature = "igniter")]
        if let Some(link) = self.igniter.as_mut() {
            link.disconnect();
        }
        self.socket = None;
        #[cfg(feature = "sse")]
        {
            self.ticket_for = None;
        }
    }

    /// The token the session asked for: the fixed one, a `getToken` call, or none to give.
    #[inline(always)]
    fn need_token(&mut self, request: u64) {
        match &self.tokens {
            Some(TokenSource::Fixed(token)) => {
                let token = token.clone();
                self.session.handle_token(now_ms(), request, Ok(token));
            }
            Some(TokenSource::Getter(get_token)) => self.calls.push(Call::GetToken {
                request,
                get_token: get_token.clone(),
            }),
            None => self.session.handle_token(
                now_ms(),
                request,
                Err("no `token` or `getToken` option".into()),
            ),
        }
    }

    /// The event frame at hand, for `subs`: built from it, or (parsed by `frameListener`) handed
    /// back to JS, which builds it and calls the callbacks.
    #[inline(always)]
    fn deliver_frame(&mut self, subs: Vec<SubId>, frame: &FrameAt<'_>) {
        match frame {
            FrameAt::Frame(raw) => self.deliver(subs, event_from_frame(raw)),
            FrameAt::Parsed => self.calls.push(Call::DeliverThisFrame { subs }),
            #[cfg(feature = "igniter")]
            FrameAt::Translated(TranslatedFrame::Event(e)) => {
                let built = live_event(&e.channel, &e.kind, e.payload.get(), e.date, None);
                self.deliver(subs, built);
            }
            // The session only says so while handling an event frame, which is at hand.
            _ => self.report("an event was lost: its frame was not at hand".to_owned()),
        }
    }

    /// Settles the promise of publish `id`: `{ seq }` on the relay's ack, a `LivePublishError`.
    fn settle(&mut self, id: PublishId, outcome: Result<u64, PublishError>) {
        let Some((resolve, reject)) = self.publishes.remove(&id) else {
            return;
        };
        let (callback, value) = match outcome {
            Ok(seq) => {
                let value = Object::new();
                set(&value, "seq", &JsValue::from_f64(seq as f64));
                (resolve, value.into())
            }
            Err(error) => (reject, publish_error(&error)),
        };
        self.calls.push(Call::Settle { callback, value });
    }

    /// Queues the call of `subs`' callbacks with the event JS built, or reports why it could not.
    fn deliver(&mut self, subs: Vec<SubId>, built: Result<JsValue, JsValue>) {
        match built {
            Ok(event) => self.calls.push(Call::Deliver { subs, event }),
            Err(e) => self.report(cat!("could not build the event object: ", describe(&e))),
        }
    }

    fn report(&mut self, message: String) {
        self.calls.push(Call::Problem(problem_error(&message)));
    }

    /// An error with a stable `code` (and the `channel` it is about, if any) for the error hook.
    fn report_code(&mut self, message: &str, code: &str, channel: Option<&str>) {
        let error = js_sys::Error::new(message);
        error.set_name("LiveProviderError");
        set(&error, "code", &JsValue::from_str(code));
        if let Some(channel) = channel {
            set(&error, "channel", &JsValue::from_str(channel));
        }
        self.calls.push(Call::Problem(error.into()));
    }

    /// Calls the app's `getToken` (the shell is not borrowed) and feeds what it settles to back to
    /// the session. Nothing it does is thrown into the app: a throw, a rejection or a value that is
    /// not a string fails this connection attempt (which backs off and reports it).
    fn get_token(shell: &Rc<RefCell<Shell>>, request: u64, get_token: &Function) {
        let settle = move |shell: &Rc<RefCell<Shell>>, result: Result<String, String>| {
            Shell::with(shell, |sh| {
                sh.session.handle_token(now_ms(), request, result)
            });
        };
        let returned = match get_token.call0(&JsValue::NULL) {
            Ok(value) => value,
            Err(e) => return settle(shell, Err(cat!("getToken threw: ", describe(&e)))),
        };
        let weak = Rc::downgrade(shell);
        wasm_bindgen_futures::spawn_local(async move {
            let result = match JsFuture::from(Promise::resolve(&returned)).await {
                Ok(value) => value.as_string().ok_or_else(|| {
                    cat!(
                        "getToken resolved with ",
                        type_name(&value),
                        " instead of a string"
                    )
                }),
                Err(e) => Err(cat!("getToken rejected: ", describe(&e))),
            };
            if let Some(shell) = weak.upgrade() {
                settle(&shell, result);
            }
        });
    }

    /// Runs app code. The shell is not borrowed here.
    fn run(shell: &Rc<RefCell<Shell>>, calls: Vec<Call>) {
        if calls.is_empty() {
            return; // most calls from the app (no iterator made and dropped)
        }
        for call in calls {
            match call {
                // Resolved by `on_frame_event` before it runs anything.
                Call::DeliverThisFrame { .. } => {}
                Call::Deliver { subs, event } => {
                    for sub in subs {
                        // Looked up at call time: an earlier callback may have unsubscribed this one.
                        let callback = shell.borrow().callbacks.get(&JsValue::from(sub));
                        if let Some(callback) = callback.dyn_ref::<Function>() {
                            if let Err(e) = callback.call1(&JsValue::NULL, &event) {
                                Shell::hook(shell, "a live event callback threw", &e);
                            }
                        }
                    }
                }
                Call::Settle { callback, value } => {
                    if let Err(e) = callback.call1(&JsValue::NULL, &value) {
                        Shell::hook(shell, "settling a publish promise threw", &e);
                    }
                }
                Call::State(state) => {
                    let hook = shell.borrow().on_state.clone();
                    if let Some(hook) = hook {
                        if let Err(e) = hook.call1(&JsValue::NULL, &state) {
                            Shell::hook(shell, "onStateChange threw", &e);
                        }
                    }
                }
                Call::Problem(error) => Shell::hook(shell, "live provider problem", &error),
                Call::GetToken { request, get_token } => {
                    Shell::get_token(shell, request, &get_token)
                }
            }
        }
    }

    /// Hands an error to the app's `onError` (every one), or to `console.error` when there is none
    /// (or it threw) — rate-limited there ([`ConsoleLimiter`]).
    fn hook(shell: &Rc<RefCell<Shell>>, context: &str, error: &JsValue) {
        let hook = shell.borrow().on_error.clone();
        let thrown = match hook {
            Some(hook) => match hook.call1(&JsValue::NULL, error) {
                Ok(_) => return,
                Err(thrown) => Some(thrown),
            },
            None => None,
        };
        let verdict = shell.borrow_mut().console.admit(now_ms());
        if let Verdict::Print { suppressed } = verdict {
            if suppressed > 0 {
                console_error(
                    &cat!(
                        "wasm-live-provider: ",
                        suppressed,
                        " more problems were not printed"
                    ),
                    &JsValue::UNDEFINED,
                );
            }
        }
        if verdict == Verdict::Suppress {
            return;
        }
        if let Some(thrown) = thrown {
            console_error("wasm-live-provider: onError threw", &thrown);
        }
        console_error(&cat!("wasm-live-provider: ", context), error);
        if verdict == Verdict::PrintLast {
            console_error(
                "wasm-live-provider: further problems are not printed for 10 s (give `onError` to see every one)",
                &JsValue::UNDEFINED,
            );
        }
    }
}

/// `options[name]` as a number of milliseconds (or a count) from 0 to 2^31 - 1 (past that
/// `setTimeout` fires at once), `default` when it is missing or anything else.
fn number(options: &JsValue, name: &str, default: u64) -> u64 {
    millis(field(options, name).as_f64(), default)
}

/// `Date.parse`, `None` for an invalid date.
#[cfg(feature = "igniter")]
fn parse_date(text: &str) -> Option<f64> {
    let ms = js_sys::Date::parse(text);
    ms.is_finite().then_some(ms)
}

/// The callbacks' id under which the entry's presence bookkeeping (`presence.js`) is called: with
/// each `presence` frame of a membership (as `frameListener` parsed it), and with `"<status> <channel>"`
/// when a membership's status changes. No subscription gets it (ids count up from 0).
const PRESENCE_SUB: SubId = u32::MAX;

/// A new callbacks map holding `options.onPresence` (a function) under [`PRESENCE_SUB`].
fn presence_listener(options: &JsValue) -> js_sys::Map {
    let callbacks = js_sys::Map::new();
    let listener = field(options, "onPresence");
    if listener.is_function() {
        callbacks.set(&JsValue::from(PRESENCE_SUB), &listener);
    }
    callbacks
}

/// `options[name]`; `undefined` when `options` is not an object or reading it throws.
fn field(options: &JsValue, name: &str) -> JsValue {
    Reflect::get(options, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// A string or an array of them as a list (an entry that is not a string: empty); else empty.
fn strings(value: &JsValue) -> Vec<String> {
    match (value.as_string(), value.dyn_ref::<Array>()) {
        (Some(one), _) => vec![one],
        (None, Some(list)) => list
            .iter()
            .map(|v| v.as_string().unwrap_or_default())
            .collect(),
        (None, None) => Vec::new(),
    }
}

/// The constructor's one error. `LiveClient` is created by the npm package's entry, which checks
/// the options and names the one at fault; what reaches here anyway cannot work.
fn refused() -> JsValue {
    js_sys::Error::new(
        "LiveClient: options that cannot work (or need the full build): create clients with the package's entry, which checks them",
    )
    .into()
}

/// A `LiveProviderError` with `message`, for the error hook.
fn problem_error(message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name("LiveProviderError");
    error.into()
}

/// An option this build leaves out (a client given `wasm` pointing at the default build's file
/// together with an option that needs the full one): the `Error` names it.
fn needs_full_build(option: &'static str) -> JsValue {
    js_sys::Error::new(&cat!(
        "option `",
        option,
        "` needs the full build of wasm-live-provider (`full/wasm_live_provider.js` in the npm package, which its entry loads for this option); this wasm is the default build: WebSocket and protocol v1 only"
    ))
    .into()
}

/// The owned [`Event`] of a parsed `event` frame, for a coalescing window that holds it back: its
/// payload and meta become JSON text again (`JSON.stringify` of what `JSON.parse` made, so always
/// valid).
fn owned_event(
    channel: &str,
    kind: &str,
    seq: u64,
    ids: Option<Vec<String>>,
    frame: &JsValue,
) -> Event {
    let parts = owned_parts(frame);
    Event {
        channel: channel.to_owned(),
        kind: kind.to_owned(),
        seq,
        payload: parts.get(0).as_string().unwrap_or_else(|| "{}".to_owned()),
        meta: parts.get(1).as_string(),
        date: parts.get(2).as_f64().unwrap_or(f64::NAN),
        ids,
    }
}

fn set(target: &Object, key: &str, value: &JsValue) {
    // Setting a plain data property on a fresh object cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

fn publish_error(error: &PublishError) -> JsValue {
    let js = js_sys::Error::new(&error.message());
    js.set_name("LivePublishError");
    set(&js, "code", &JsValue::from_str(error.code()));
    if let PublishError::Rejected { code, .. } = error {
        // The relay's own code: `forbidden`, `rate_limited`, `unauthorized`, `bad_event`, …
        set(&js, "relayCode", &JsValue::from_str(code.name()));
    }
    js.into()
}

/// `typeof value`, with `null` told apart.
fn type_name(value: &JsValue) -> String {
    if value.is_null() {
        "null".to_owned()
    } else {
        value.js_typeof().as_string().unwrap_or_default()
    }
}

fn state_object(state: &ConnectionState) -> JsValue {
    let obj = Object::new();
    set(&obj, "state", &JsValue::from_str(state.name()));
    match state {
        ConnectionState::Reconnecting {
            attempt,
            delay_ms,
            reason,
        } => {
            set(&obj, "attempt", &JsValue::from_f64(*attempt as f64));
            let delay = delay_ms.map_or(JsValue::NULL, |d| JsValue::from_f64(d as f64));
            set(&obj, "delayMs", &delay);
            set(&obj, "reason", &JsValue::from_str(reason));
        }
        ConnectionState::Closed { reason } => set(&obj, "reason", &JsValue::from_str(reason)),
        ConnectionState::Idle | ConnectionState::Connecting | ConnectionState::Open => {}
    }
    obj.into()
}
