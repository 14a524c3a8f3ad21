//! The demo (`--demo`) as its tests call it (tests/demo.rs, tests/demo_postgres.rs): its REST API,
//! its tokens, and clients authenticated with them.

use super::{Client, Relay};
use serde_json::{json, Value};

/// An answer of the API: the status, the `x-total-count` header and the JSON body.
pub type Answer = (u16, Option<usize>, Value);

/// Sends a request to the API.
pub async fn call(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let total = response
        .headers()
        .get("x-total-count")
        .map(|v| v.to_str().expect("ascii").parse().expect("a count"));
    let body = response.json::<Value>().await.expect("JSON answer");
    (status, total, body)
}

pub async fn get(relay: &Relay, path: &str) -> Answer {
    call(relay.http.get(relay.url(path))).await
}

/// An error answer with this status and code, whose message names `naming` (and is also the
/// top-level `message`, which simple-rest reads).
pub fn expect_error(answer: Answer, status: u16, code: &str, naming: &str) {
    let (got, _, body) = answer;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains(naming), "should name {naming:?}: {body}");
    assert_eq!(
        body["message"], message,
        "simple-rest reads the top-level message: {body}"
    );
}

/// A token from `GET /demo/token`, checking the answer's shape.
pub async fn demo_token(relay: &Relay) -> String {
    let (status, body) = relay.get_json("/demo/token").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 60, "{body}");
    let token = body["token"].as_str().expect("a token string");
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    token.to_owned()
}

/// A WebSocket client that sent a demo token; returns it with its `authed` frame.
pub async fn authed_client_with_frame(relay: &Relay) -> (Client, Value) {
    let token = demo_token(relay).await;
    let mut client = relay.client().await;
    client
        .send_json(json!({ "op": "auth", "token": token }))
        .await;
    let authed = client.recv_op("authed").await;
    (client, authed)
}

/// A WebSocket client that sent a demo token.
pub async fn authed_client(relay: &Relay) -> Client {
    authed_client_with_frame(relay).await.0
}
