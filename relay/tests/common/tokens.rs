//! Connection tokens and API keys for the attack suites (`auth.rs`, `hardening.rs`): the relay's
//! configuration with authentication on, tokens signed with its keys, and clients that use them.
#![allow(dead_code)] // each test crate uses part of it

use super::{Client, Relay};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use live_relay::Config;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

pub const SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";
pub const AUDIENCE: &str = "live-tests";
pub const ISSUER: &str = "https://auth.tests.invalid";
pub const KEY: &str = "backend-key-current-0001";
pub const OLD_KEY: &str = "backend-key-revoked-0000";

pub fn key_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
}

pub fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("seconds fit")
}

/// Claims valid for `ttl` seconds for `sub`, allowed `channels` and `publish`.
pub fn claims(sub: &str, ttl: i64, channels: &[&str], publish: &[&str]) -> Value {
    json!({
        "sub": sub, "iat": now(), "exp": now() + ttl, "aud": AUDIENCE, "iss": ISSUER,
        "channels": channels, "publish": publish,
    })
}

pub fn sign(alg: Algorithm, claims: &Value) -> String {
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::RS256 => {
            let pem = std::fs::read(key_path("rsa-private.pem")).expect("rsa key");
            EncodingKey::from_rsa_pem(&pem).expect("rsa pem")
        }
        Algorithm::ES256 => {
            let pem = std::fs::read(key_path("ec-private.pem")).expect("ec key");
            EncodingKey::from_ec_pem(&pem).expect("ec pem")
        }
        other => panic!("no test key for {other:?}"),
    };
    encode(&Header::new(alg), claims, &key).expect("sign")
}

pub fn hs(claims: &Value) -> String {
    sign(Algorithm::HS256, claims)
}

pub fn b64url(bytes: &[u8]) -> String {
    pub const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// An unsigned token (`alg: none`).
pub fn unsigned(claims: &Value) -> String {
    let header = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    format!("{header}.{}.", b64url(claims.to_string().as_bytes()))
}

pub fn hs_config() -> Config {
    Config {
        jwt_secret: Some(SECRET.into()),
        jwt_audience: Some(AUDIENCE.into()),
        jwt_issuer: Some(ISSUER.into()),
        api_key: vec![KEY.into()],
        ping_ms: 5_000,
        ..Config::default()
    }
}

/// A connection past `hello` that sent `token` (if any) as its first frame.
pub async fn connect_with(relay: &Relay, token: Option<&str>) -> Client {
    let (mut client, _) = relay.connect(Some("wlp.v1")).await;
    client.recv_op("hello").await;
    if let Some(token) = token {
        client
            .send_json(json!({ "op": "auth", "token": token }))
            .await;
    }
    client
}

/// A connection authenticated with `token` (its `authed` answer checked).
pub async fn authed(relay: &Relay, token: &str) -> (Client, Value) {
    let mut client = connect_with(relay, Some(token)).await;
    let answer = client.recv_op("authed").await;
    (client, answer)
}

/// Publishes on `channel` with the API key; returns the seq.
pub async fn backend_publish(relay: &Relay, channel: &str, n: u64) -> u64 {
    let response = relay
        .http
        .post(relay.url("/publish"))
        .bearer_auth(KEY)
        .json(&json!({ "channel": channel, "type": "updated", "payload": { "ids": [n] } }))
        .send()
        .await
        .expect("POST /publish");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    body["seq"].as_u64().expect("seq")
}

/// Waits for the `event` of `channel` with `seq`, skipping nothing else.
pub async fn expect_event(client: &mut Client, channel: &str, seq: u64) {
    let frame = client.recv_op("event").await;
    assert_eq!(
        (frame["channel"].as_str(), frame["seq"].as_u64()),
        (Some(channel), Some(seq)),
        "{frame}"
    );
}
