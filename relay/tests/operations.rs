//! What an operator sees and does: `/metrics` after real traffic, and a graceful shutdown.

mod common;

use common::{Relay, PATIENCE};
use live_relay::Config;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::time::timeout;

/// The value of one sample line of `/metrics` (`name{labels} value`).
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_real_traffic() {
    let relay = Relay::start(Config {
        max_channels: 2,
        ..Config::default()
    })
    .await;
    let mut a = relay.client().await;
    let mut b = relay.client().await;
    a.subscribe(&["m"]).await;
    b.subscribe(&["m"]).await;
    for _ in 0..3 {
        let (status, _) = relay
            .publish(json!({ "channel": "m", "type": "x", "payload": {} }))
            .await;
        assert_eq!(status, 200);
    }
    for client in [&mut a, &mut b] {
        for _ in 0..3 {
            client.recv_op("event").await;
        }
    }
    // A resume that is replayed and one that cannot be (another epoch).
    let epoch = relay.epoch().await;
    let mut c = relay.client().await;
    c.send_json(json!({ "op": "subscribe", "channels": [
        { "channel": "m", "since": { "epoch": epoch, "seq": 1 } },
        { "channel": "n", "since": { "epoch": "gone", "seq": 5 } } ] }))
        .await;
    c.recv_op("subscribed").await;
    c.recv_op("event").await;
    c.recv_op("event").await;
    // Over the channel limit.
    c.send_json(json!({ "op": "subscribe", "channels": [{ "channel": "o" }] }))
        .await;
    c.expect_error("too_many_channels", "").await;

    // A body over the size limit.
    let (status, _) = relay.post("x".repeat(70_000)).await;
    assert_eq!(status, 413);

    let text = relay.metrics().await;
    let expect = [
        ("live_relay_connections", 3.0),
        ("live_relay_subscriptions", 4.0),
        ("live_relay_events_published_total", 3.0),
        ("live_relay_events_delivered_total", 8.0),
        ("live_relay_channels_recovered_total", 1.0),
        ("live_relay_channels_not_recovered_total", 1.0),
        (r#"live_relay_limit_hits_total{limit="max_channels"}"#, 1.0),
        (r#"live_relay_limit_hits_total{limit="frame_size"}"#, 1.0),
    ];
    for (name, value) in expect {
        assert_eq!(sample(&text, name), Some(value), "{name} in\n{text}");
    }
    relay.stop().await;
}

#[tokio::test]
async fn shutdown_tells_clients_to_reconnect_and_ends_within_the_grace() {
    let relay = Relay::start(Config {
        shutdown_grace_ms: 1_000,
        ..Config::default()
    })
    .await;
    let mut ws = relay.client().await;
    ws.subscribe(&["s"]).await;
    let mut sse = relay.sse("channels=s").await;
    sse.opening().await;
    let addr = relay.addr;

    let started = Instant::now();
    let stopping = tokio::spawn(relay.stop());
    // The WebSocket client is told to go away (1001: reconnect, to this relay or another).
    let (_, code) = ws.until_close_code().await;
    assert_eq!(code, Some(1001));
    // The SSE stream ends.
    let ended = timeout(PATIENCE, async {
        loop {
            match sse.response.chunk().await {
                Ok(Some(_)) => continue,
                end => return end.map(|_| ()),
            }
        }
    })
    .await;
    assert!(
        matches!(ended, Ok(Ok(()))),
        "the SSE stream ends cleanly: {ended:?}"
    );
    stopping.await.expect("the relay stops");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
