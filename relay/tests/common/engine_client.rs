//! The client engine of the npm package (`wasm_live_provider::engine::Session`, the code the
//! browser runs) driven natively over a real WebSocket (tokio-tungstenite): what a page of the app
//! would receive, with the engine's own reconnects, resumes and resyncs across the given relays.

use futures_util::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use wasm_live_provider::engine::{Filter, Output, Session, SessionConfig, TypeFilter};

/// What the subscription was handed.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Every event, in the order the callback got them: (type, ids, seq, receipt time since the
    /// client started in ms).
    pub events: Vec<(String, Vec<String>, u64, u64)>,
    /// Resync events (the page refetches).
    pub resyncs: u64,
    /// Connections opened.
    pub connections: u64,
}

/// A running client, on a thread of its own (the session is not `Send`); stopped when dropped.
pub struct EngineClient {
    pub received: Arc<Mutex<Received>>,
    pub started: Instant,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for EngineClient {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl EngineClient {
    /// Subscribes to `channel` (every type, every record) through the relays at `addrs`
    /// (`host:port`), the engine going from one to the next when a connection fails.
    pub fn start(addrs: Vec<String>, channel: &str) -> EngineClient {
        let received = Arc::new(Mutex::new(Received::default()));
        let started = Instant::now();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let channel = channel.to_owned();
        let shared = Arc::clone(&received);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the client");
            runtime.block_on(async move {
                tokio::select! {
                    _ = run(addrs, channel, shared, started) => {}
                    _ = stopped => {}
                }
            });
        });
        EngineClient {
            received,
            started,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn snapshot(&self) -> Received {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until `done` holds for what was received, or panics after `patience`.
    pub async fn wait_for(&self, patience: Duration, what: &str, done: impl Fn(&Received) -> bool) {
        let deadline = Instant::now() + patience;
        loop {
            if done(&self.received.lock().expect("lock")) {
                return;
            }
            assert!(Instant::now() < deadline, "the client never saw {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn run(
    addrs: Vec<String>,
    channel: String,
    received: Arc<Mutex<Received>>,
    started: Instant,
) {
    let now = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut session = Session::new(SessionConfig {
        relays: addrs.len(),
        backoff_min_ms: 50,
        backoff_max_ms: 500,
        ..SessionConfig::default()
    });
    session.subscribe(now(), &channel, Filter::new(TypeFilter::All, None));
    let mut socket: Option<Socket> = None;
    loop {
        while let Some(output) = session.poll_output() {
            match output {
                Output::Connect => {
                    let url = format!("ws://{}/ws", addrs[session.relay()]);
                    let mut request = url.into_client_request().expect("a request");
                    request.headers_mut().insert(
                        "sec-websocket-protocol",
                        "wlp.v1".parse().expect("a header"),
                    );
                    let connected = tokio::time::timeout(
                        Duration::from_secs(2),
                        tokio_tungstenite::connect_async(request),
                    )
                    .await;
                    match connected {
                        Ok(Ok((ws, _))) => {
                            received.lock().expect("lock").connections += 1;
                            socket = Some(ws);
                            session.handle_open(now());
                        }
                        Ok(Err(e)) => session.handle_close(now(), &e.to_string()),
                        Err(_) => session.handle_close(now(), "connect timed out"),
                    }
                }
                Output::Send(text) => {
                    if let Some(ws) = &mut socket {
                        if ws.send(Message::text(text)).await.is_err() {
                            socket = None;
                            session.handle_close(now(), "send failed");
                        }
                    }
                }
                Output::Disconnect => socket = None,
                Output::Deliver { event, .. } => {
                    let ids = event.ids.unwrap_or_default();
                    received
                        .lock()
                        .expect("lock")
                        .events
                        .push((event.kind, ids, event.seq, now()));
                }
                Output::Resync { .. } => received.lock().expect("lock").resyncs += 1,
                _ => {}
            }
        }
        let deadline = session
            .poll_timeout()
            .map(|at| started + Duration::from_millis(at))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        let message = async {
            match &mut socket {
                Some(ws) => ws.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            message = message => match message {
                Some(Ok(Message::Text(text))) => session.handle_text(now(), &text),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    socket = None;
                    session.handle_close(now(), "closed");
                }
                Some(Ok(_)) => {}
            },
            _ = tokio::time::sleep_until(deadline) => session.handle_timeout(now()),
        }
    }
}
