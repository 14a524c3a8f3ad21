//! The relay in-process on 127.0.0.1:0, with real WebSocket clients (tokio-tungstenite) and a
//! real HTTP client (reqwest), shared by the integration tests.
#![allow(dead_code)] // each test crate uses part of it

pub mod cluster;
pub mod demo_api;
pub mod engine_client;
pub mod fault_proxy;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod tokens;

use futures_util::{SinkExt, StreamExt};
use live_relay::Config;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

/// Long enough for anything that should happen on a loopback relay.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// How long a client listens to be sure nothing arrives.
pub const QUIET: Duration = Duration::from_millis(300);

pub struct Relay {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    /// None for a relay running in another process ([`Relay::at`]).
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// The relay's process, when [`Relay::start`] runs the binary under test.
    process: Option<process::RelayProcess>,
}

/// The Redis the suites run on when `LIVE_RELAY_TEST_REDIS` is set (scripts/test-redis-suites.sh
/// runs the protocol, resume, scopes, SSE and auth suites a second time so).
pub fn test_redis() -> Option<String> {
    std::env::var("LIVE_RELAY_TEST_REDIS")
        .ok()
        .filter(|url| !url.is_empty())
}

/// Whether the suites run on Redis (see [`test_redis`]).
pub fn on_redis() -> bool {
    test_redis().is_some()
}

static RELAYS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Relay {
    /// Starts a relay in this process. On Redis ([`test_redis`]) each one is a cluster of its own
    /// (its own key prefix), so tests running at once share nothing.
    ///
    /// With `RELAY_BINARY_UNDER_TEST` set, the relay is that binary instead, started with the
    /// flags that say `config` (the Makefile runs the protocol suite so against the static musl
    /// build).
    pub async fn start(mut config: Config) -> Relay {
        if let (None, Some(url)) = (&config.redis, test_redis()) {
            let n = RELAYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            config.redis = Some(url);
            config.redis_prefix = format!("test-{}-{n}", std::process::id());
        }
        if std::env::var_os("RELAY_BINARY_UNDER_TEST").is_some() {
            let args = process::flags_of(&config);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let process = process::RelayProcess::start(&args);
            return Relay {
                addr: process.addr,
                http: reqwest::Client::new(),
                stop: None,
                task: None,
                process: Some(process),
            };
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(live_relay::serve(config, listener, async move {
            let _ = stopped.await;
        }));
        Relay {
            addr,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
            process: None,
        }
    }

    /// [`Relay::start`] with the PostgreSQL feed on (`config.postgres`), once it serves: it
    /// installs the schema before it answers.
    pub async fn start_with_feed(config: Config) -> Relay {
        assert!(config.postgres.is_some(), "a feed needs --postgres");
        let relay = Relay::start(config).await;
        relay
            .wait_health("the feed's state", |h| h["postgres"].is_object())
            .await;
        relay
    }

    /// A relay another process runs, at `addr`.
    pub fn at(addr: SocketAddr) -> Relay {
        Relay {
            addr,
            http: reqwest::Client::new(),
            stop: None,
            task: None,
            process: None,
        }
    }

    pub async fn default() -> Relay {
        Relay::start(Config::default()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connects offering `wlp.v1` and reads `hello`.
    pub async fn client(&self) -> Client {
        self.client_with_hello().await.0
    }

    /// Connects offering `wlp.v1`; returns the client and its `hello`.
    pub async fn client_with_hello(&self) -> (Client, Value) {
        let (mut client, protocol) = self.connect(Some("wlp.v1")).await;
        assert_eq!(protocol.as_deref(), Some("wlp.v1"));
        let hello = client.recv().await;
        assert_eq!(hello["op"], "hello", "{hello}");
        (client, hello)
    }

    pub async fn connect(&self, protocol: Option<&str>) -> (Client, Option<String>) {
        self.connect_at("/ws", protocol).await
    }

    /// Connects to `/ws?scopes=...` offering `wlp.v1` and reads `hello`.
    pub async fn scoped_client(&self, scopes: &str) -> Client {
        let (mut client, _) = self
            .connect_at(&format!("/ws?scopes={scopes}"), Some("wlp.v1"))
            .await;
        client.recv_op("hello").await;
        client
    }

    /// Connects to `path` (with its query) on the relay's WebSocket endpoint.
    pub async fn connect_at(&self, path: &str, protocol: Option<&str>) -> (Client, Option<String>) {
        let mut request = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .expect("ws request");
        if let Some(protocol) = protocol {
            request.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_str(protocol).expect("header"),
            );
        }
        let (ws, response) = connect_async(request).await.expect("websocket handshake");
        let selected = response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().expect("ascii protocol").to_owned());
        (Client { ws }, selected)
    }

    pub async fn post(&self, body: impl Into<reqwest::Body>) -> (u16, Value) {
        self.post_to("/publish", body).await
    }

    /// Posts a JSON body to `path`; returns the status and the JSON answer.
    pub async fn post_to(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST /publish");
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.expect("JSON answer");
        (status, body)
    }

    pub async fn publish(&self, event: Value) -> (u16, Value) {
        self.post(event.to_string()).await
    }

    /// `POST /revalidate` with this body.
    pub async fn revalidate(&self, body: Value) -> (u16, Value) {
        self.post_to("/revalidate", body.to_string()).await
    }

    /// A plain `GET`; returns the status and the JSON answer.
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.http.get(self.url(path)).send().await.expect("GET");
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.expect("JSON answer");
        (status, body)
    }

    /// A ticket for `token` from `POST /sse/ticket`.
    pub async fn ticket(&self, token: &str) -> String {
        let answer: Value = self
            .http
            .post(self.url("/sse/ticket"))
            .bearer_auth(token)
            .send()
            .await
            .expect("POST /sse/ticket")
            .json()
            .await
            .expect("JSON");
        answer["ticket"].as_str().expect("ticket").to_owned()
    }

    /// Opens `GET /sse?{query}` and checks it is an event stream.
    pub async fn sse(&self, query: &str) -> Sse {
        self.sse_with(query, &[]).await
    }

    /// Opens `GET /sse?{query}` with extra headers and checks it is an event stream.
    pub async fn sse_with(&self, query: &str, headers: &[(&str, &str)]) -> Sse {
        let mut request = self.http.get(self.url(&format!("/sse?{query}")));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("GET /sse");
        assert_eq!(response.status().as_u16(), 200, "GET /sse?{query}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Sse::from_response(response)
    }

    /// Publishes `n` events on `channel` over HTTP; returns the last seq.
    pub async fn publish_n(&self, channel: &str, n: u64) -> u64 {
        let mut last = 0;
        for _ in 0..n {
            let (status, body) = self
                .publish(serde_json::json!({ "channel": channel, "type": "updated", "payload": { "ids": [1] } }))
                .await;
            assert_eq!(status, 200, "{body}");
            last = body["seq"].as_u64().expect("seq");
        }
        last
    }

    /// The relay's epoch, from `/healthz`.
    pub async fn epoch(&self) -> String {
        self.health().await["epoch"]
            .as_str()
            .expect("epoch")
            .to_owned()
    }

    pub async fn health(&self) -> Value {
        let response = self
            .http
            .get(self.url("/healthz"))
            .send()
            .await
            .expect("GET /healthz");
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.expect("JSON health")
    }

    /// Polls `/healthz` until `check` holds.
    pub async fn wait_health(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let health = self.health().await;
            if check(&health) {
                return health;
            }
            assert!(Instant::now() < deadline, "{what}: still {health}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET /metrics`: the Prometheus text (checking its status and content type).
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(response.status(), 200);
        let kind = response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(kind.contains("openmetrics-text"), "{kind}");
        response.text().await.expect("metrics text")
    }

    pub async fn stop(mut self) {
        if let Some(process) = self.process.as_mut() {
            let code = process.terminate();
            assert_eq!(code, Some(0), "the relay process stops cleanly on SIGTERM");
            return;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(task) = self.task.as_mut() else {
            return;
        };
        let result = timeout(PATIENCE, task).await.expect("relay stops");
        result.expect("serve task").expect("serve ends cleanly");
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send frame");
    }

    pub async fn send_json(&mut self, frame: Value) {
        self.send(&frame.to_string()).await;
    }

    /// The next message of any kind, or `None` when nothing arrives within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Message> {
        match timeout(wait, self.ws.next()).await {
            Err(_) => None,
            Ok(Some(Ok(message))) => Some(message),
            Ok(other) => panic!("connection ended: {other:?}"),
        }
    }

    /// The next text frame, as JSON.
    pub async fn recv(&mut self) -> Value {
        loop {
            match self.next_within(PATIENCE).await {
                Some(Message::Text(text)) => {
                    return serde_json::from_str(&text).expect("frame is JSON")
                }
                Some(Message::Ping(_) | Message::Pong(_)) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    pub async fn recv_op(&mut self, op: &str) -> Value {
        let frame = self.recv().await;
        assert_eq!(frame["op"], op, "{frame}");
        frame
    }

    pub async fn expect_error(&mut self, code: &str, naming: &str) -> Value {
        let frame = self.recv_op("error").await;
        assert_eq!(frame["code"], code, "{frame}");
        let message = frame["message"].as_str().expect("message is a string");
        assert!(
            message.contains(naming),
            "message should name {naming:?}: {frame}"
        );
        frame
    }

    pub async fn expect_silence(&mut self) {
        if let Some(message) = self.next_within(QUIET).await {
            panic!("expected nothing, got {message:?}");
        }
    }

    pub async fn subscribe(&mut self, channels: &[&str]) -> Value {
        let list: Vec<Value> = channels.iter().map(|c| json!({ "channel": c })).collect();
        self.send_json(json!({ "op": "subscribe", "channels": list }))
            .await;
        self.recv_op("subscribed").await
    }

    /// Checks the connection still answers.
    pub async fn assert_alive(&mut self) {
        self.send(r#"{"op":"ping"}"#).await;
        self.recv_op("pong").await;
    }

    /// Waits for the relay to end the connection; returns the text frames received before.
    pub async fn until_closed(&mut self) -> Vec<Value> {
        self.until_close_code().await.0
    }

    /// Waits for the relay to end the connection; returns the text frames received before and
    /// the close code (`None` when the connection ended without a close frame).
    pub async fn until_close_code(&mut self) -> (Vec<Value>, Option<u16>) {
        let mut frames = Vec::new();
        loop {
            match timeout(PATIENCE, self.ws.next())
                .await
                .expect("the relay closes the connection")
            {
                Some(Ok(Message::Text(text))) => {
                    frames.push(serde_json::from_str(&text).expect("JSON"))
                }
                Some(Ok(Message::Close(frame))) => {
                    return (frames, frame.map(|f| u16::from(f.code)))
                }
                None | Some(Err(_)) => return (frames, None),
                Some(Ok(_)) => {}
            }
        }
    }
}

/// One Server-Sent Event as received: its fields (a block of lines ended by a blank line).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SseBlock {
    pub id: Option<String>,
    pub retry: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: Option<String>,
    pub comments: Vec<String>,
}

impl SseBlock {
    /// The frame in `data`, as JSON.
    pub fn frame(&self) -> Value {
        let data = self.data.as_deref().expect("a data field");
        serde_json::from_str(data).expect("data is a JSON frame")
    }
}

/// Parses complete SSE blocks off the front of `pending`.
pub fn parse_blocks(pending: &mut String) -> Vec<SseBlock> {
    let mut blocks = Vec::new();
    while let Some(end) = pending.find("\n\n") {
        let text: String = pending.drain(..end + 2).collect();
        let mut block = SseBlock::default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(comment) = line.strip_prefix(':') {
                block.comments.push(comment.trim_start().to_owned());
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "id" => block.id = Some(value),
                "retry" => block.retry = Some(value),
                "data" => {
                    block.data = Some(match block.data.take() {
                        Some(before) => format!("{before}\n{value}"),
                        None => value,
                    })
                }
                other => panic!("unexpected SSE field {other:?} in {text:?}"),
            }
        }
        blocks.push(block);
    }
    blocks
}

/// A Server-Sent Events stream read chunk by chunk.
pub struct Sse {
    pub response: reqwest::Response,
    pending: String,
}

impl Sse {
    pub fn from_response(response: reqwest::Response) -> Sse {
        Sse {
            response,
            pending: String::new(),
        }
    }

    /// The next block, or `None` when nothing arrives within `wait` (panics when the stream ends).
    pub async fn block_within(&mut self, wait: Duration) -> Option<SseBlock> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let mut one: String = self.pending.drain(..end + 2).collect();
                return parse_blocks(&mut one).pop();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.response.chunk()).await {
                Err(_) => return None,
                Ok(Ok(Some(chunk))) => self
                    .pending
                    .push_str(std::str::from_utf8(&chunk).expect("UTF-8 stream")),
                Ok(other) => panic!("the SSE stream ended: {other:?}"),
            }
        }
    }

    pub async fn block(&mut self) -> SseBlock {
        self.block_within(PATIENCE)
            .await
            .expect("an SSE block in time")
    }

    /// The next frame that is not a `ping`, with its SSE `id`.
    pub async fn recv(&mut self) -> (Option<String>, Value) {
        loop {
            let block = self.block().await;
            let frame = block.frame();
            if frame["op"] != "ping" {
                return (block.id, frame);
            }
        }
    }

    pub async fn recv_op(&mut self, op: &str) -> (Option<String>, Value) {
        let (id, frame) = self.recv().await;
        assert_eq!(frame["op"], op, "{frame}");
        (id, frame)
    }

    /// Reads the opening of a stream (`retry:`, `hello`, `subscribed`); returns the epoch and the
    /// `subscribed` channels.
    pub async fn opening(&mut self) -> (String, Value) {
        let retry = self.block().await;
        assert_eq!(
            retry,
            SseBlock {
                retry: Some("1000".into()),
                ..SseBlock::default()
            }
        );
        let hello = self.block().await;
        assert_eq!(hello.id, None);
        let hello = hello.frame();
        assert_eq!(hello["op"], "hello", "{hello}");
        assert_eq!(hello["version"], 1);
        let epoch = hello["epoch"].as_str().expect("epoch").to_owned();
        let subscribed = self.block().await;
        assert_eq!(subscribed.id, None);
        let subscribed = subscribed.frame();
        assert_eq!(subscribed["op"], "subscribed", "{subscribed}");
        (epoch, subscribed["channels"].clone())
    }

    /// The next frame must be an `event` or a `skip` of `channel` with this seq and this `id`.
    pub async fn expect(&mut self, op: &str, channel: &str, seq: u64, id: &str) -> Value {
        let (got_id, frame) = self.recv().await;
        assert_eq!(
            (
                frame["op"].as_str(),
                frame["channel"].as_str(),
                frame["seq"].as_u64()
            ),
            (Some(op), Some(channel), Some(seq)),
            "{frame}"
        );
        assert_eq!(got_id.as_deref(), Some(id), "{frame}");
        frame
    }

    pub async fn expect_silence(&mut self) {
        if let Some(block) = self.block_within(QUIET).await {
            assert!(
                block.data.as_deref() == Some(r#"{"op":"ping"}"#),
                "expected nothing, got {block:?}"
            );
        }
    }

    /// Reads until the relay ends the stream; returns the frames received before.
    pub async fn until_closed(&mut self) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            match timeout(PATIENCE, self.response.chunk())
                .await
                .expect("the relay ends the stream")
            {
                Ok(Some(chunk)) => {
                    self.pending
                        .push_str(std::str::from_utf8(&chunk).expect("UTF-8 stream"));
                    for block in parse_blocks(&mut self.pending) {
                        if block.data.is_some() {
                            frames.push(block.frame());
                        }
                    }
                }
                Ok(None) | Err(_) => return frames,
            }
        }
    }
}
