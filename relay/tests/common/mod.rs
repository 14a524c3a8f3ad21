//! The relay in-process on 127.0.0.1:0, with real WebSocket clients (tokio-tungstenite) and a
//! real HTTP client (reqwest), shared by the integration tests.
#![allow(dead_code)] // each test crate uses part of it

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
    task: JoinHandle<std::io::Result<()>>,
}

impl Relay {
    pub async fn start(config: Config) -> Relay {
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
            task,
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
        let mut request = format!("ws://{}/ws", self.addr)
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
        let response = self
            .http
            .post(self.url("/publish"))
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

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = timeout(PATIENCE, &mut self.task)
            .await
            .expect("relay stops");
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
        let mut frames = Vec::new();
        loop {
            match timeout(PATIENCE, self.ws.next())
                .await
                .expect("the relay closes the connection")
            {
                Some(Ok(Message::Text(text))) => {
                    frames.push(serde_json::from_str(&text).expect("JSON"))
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return frames,
                Some(Ok(_)) => {}
            }
        }
    }
}
