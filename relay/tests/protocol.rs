//! Protocol v1 end to end: the relay runs in-process on 127.0.0.1:0, real WebSocket clients
//! (tokio-tungstenite) and a real HTTP client (reqwest) talk to it.

mod common;

use common::Relay;
use futures_util::SinkExt;
use live_relay::Config;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn hello_comes_first_with_version_1_and_the_subprotocol() {
    let relay = Relay::start(Config {
        ping_ms: 1234,
        ..Config::default()
    })
    .await;
    let (mut client, protocol) = relay.connect(Some("wlp.v1")).await;
    assert_eq!(protocol.as_deref(), Some("wlp.v1"));
    let hello = client.recv().await;
    assert_eq!(hello["op"], "hello");
    assert_eq!(hello["version"], 1);
    assert_eq!(hello["ping_ms"], 1234);
    let epoch = hello["epoch"].as_str().expect("epoch is a string");
    assert!(!epoch.is_empty());

    // A client offering no subprotocol is served too, in the same epoch.
    let (mut plain, protocol) = relay.connect(None).await;
    assert_eq!(protocol, None);
    let hello = plain.recv_op("hello").await;
    assert_eq!(hello["epoch"], epoch);
    plain.assert_alive().await;

    // Another run of the relay has another epoch.
    let other = Relay::default().await;
    let (mut client, _) = other.connect(Some("wlp.v1")).await;
    assert_ne!(client.recv_op("hello").await["epoch"], epoch);
    other.stop().await;
    relay.stop().await;
}

#[tokio::test]
async fn http_publish_reaches_every_subscriber_in_seq_order() {
    let relay = Relay::default().await;
    let mut a = relay.client().await;
    let mut b = relay.client().await;
    for client in [&mut a, &mut b] {
        let subscribed = client.subscribe(&["resources/posts"]).await;
        assert_eq!(
            subscribed["channels"],
            json!([{ "channel": "resources/posts", "seq": 0 }])
        );
    }

    let (status, body) = relay
        .publish(json!({
            "channel": "resources/posts", "type": "updated", "payload": { "ids": [7, "8"] },
            "date": "2025-11-22T08:26:40Z", "meta": { "dataProviderName": "default" }
        }))
        .await;
    assert_eq!(
        (status, &body),
        (200, &json!({ "channel": "resources/posts", "seq": 1 }))
    );
    let (status, body) = relay
        .publish(json!({ "channel": "resources/posts", "type": "created" }))
        .await;
    assert_eq!(
        (status, &body),
        (200, &json!({ "channel": "resources/posts", "seq": 2 }))
    );

    for client in [&mut a, &mut b] {
        let first = client.recv_op("event").await;
        assert_eq!(first["channel"], "resources/posts");
        assert_eq!(first["seq"], 1);
        assert_eq!(first["type"], "updated");
        assert_eq!(first["payload"], json!({ "ids": [7, "8"] }));
        assert_eq!(first["date"].as_f64(), Some(1_763_800_000_000.0));
        assert_eq!(first["meta"], json!({ "dataProviderName": "default" }));
        let second = client.recv_op("event").await;
        assert_eq!(second["seq"], 2);
        assert_eq!(second["payload"], json!({}), "payload defaults to {{}}");
        assert!(
            second["date"].is_number(),
            "date defaults to the relay's clock as a number: {second}"
        );
        assert!(second.get("meta").is_none(), "{second}");
    }

    // A later subscriber learns the last seq.
    let mut c = relay.client().await;
    let subscribed = c.subscribe(&["resources/posts", "other"]).await;
    assert_eq!(
        subscribed["channels"],
        json!([{ "channel": "resources/posts", "seq": 2 }, { "channel": "other", "seq": 0 }])
    );
    relay.stop().await;
}

#[tokio::test]
async fn ws_publish_is_acked_and_echoed_to_the_publisher() {
    let relay = Relay::default().await;
    let mut publisher = relay.client().await;
    let mut subscriber = relay.client().await;
    let mut bystander = relay.client().await;
    publisher.subscribe(&["chat"]).await;
    subscriber.subscribe(&["chat"]).await;
    bystander.subscribe(&["elsewhere"]).await;
    let mut unsubscribed = relay.client().await;

    publisher
        .send_json(json!({
            "op": "publish", "id": 7, "channel": "chat", "type": "created",
            "payload": { "ids": [1] }, "date": 1_700_000_000_000u64
        }))
        .await;
    // The publisher, subscribed to the channel, gets its own event first (on Redis too: the ack
    // waits for the fan-out to bring it back to this node).
    let mut got = [publisher.recv().await, publisher.recv().await];
    got.reverse();
    assert_eq!(got[0], json!({ "op": "ack", "id": 7, "seq": 1 }));
    assert_eq!(got[1]["op"], "event");
    assert_eq!(got[1]["seq"], 1);
    assert_eq!(got[1]["date"].as_f64(), Some(1.7e12));

    let event = subscriber.recv_op("event").await;
    assert_eq!(event, got[1]);
    bystander.expect_silence().await;
    unsubscribed.expect_silence().await;

    // After unsubscribing, nothing more arrives; the seq keeps counting.
    subscriber
        .send(r#"{"op":"unsubscribe","channels":[{"channel":"chat"},{"channel":"never"}]}"#)
        .await;
    subscriber.assert_alive().await;
    publisher
        .send(r#"{"op":"publish","id":8,"channel":"chat","type":"deleted"}"#)
        .await;
    let mut got = [publisher.recv().await, publisher.recv().await];
    got.sort_by_key(|f| f["op"].as_str().map(str::to_owned));
    assert_eq!(got[0], json!({ "op": "ack", "id": 8, "seq": 2 }));
    subscriber.expect_silence().await;
    relay.stop().await;
}

#[tokio::test]
async fn malformed_frames_get_errors_and_the_connection_keeps_working() {
    let relay = Relay::default().await;
    let mut client = relay.client().await;

    client.send("this is not json").await;
    client.expect_error("bad_frame", "not a valid frame").await;
    client.send("[1,2]").await;
    client.expect_error("bad_frame", "not a valid frame").await;
    client.send(r#"{"op":"dance"}"#).await;
    client.expect_error("bad_frame", "unknown op `dance`").await;
    client.send(r#"{"channels":[]}"#).await;
    client.expect_error("bad_frame", "op").await;
    client.send(r#"{"op":"subscribe"}"#).await;
    client.expect_error("bad_frame", "`channels`").await;
    client.send(r#"{"op":"subscribe","channels":"a"}"#).await;
    client.expect_error("bad_frame", "`channels`").await;
    client
        .send(r#"{"op":"publish","id":3,"type":"created"}"#)
        .await;
    let error = client.expect_error("bad_frame", "`channel`").await;
    assert_eq!(error["id"], 3, "the publish id is echoed");
    client
        .ws
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("send binary");
    client.expect_error("bad_frame", "binary").await;

    client.assert_alive().await;
    let subscribed = client.subscribe(&["still-works"]).await;
    assert_eq!(subscribed["channels"][0]["seq"], 0);
    relay.stop().await;
}

#[tokio::test]
async fn invalid_events_over_websocket_get_their_codes() {
    let relay = Relay::start(Config {
        max_frame_bytes: 1024,
        max_channel_len: 16,
        ..Config::default()
    })
    .await;
    let mut client = relay.client().await;
    let publish = |id: u64, extra: Value| {
        let mut frame = json!({ "op": "publish", "id": id, "channel": "c", "type": "updated" });
        for (k, v) in extra.as_object().expect("object").iter() {
            frame[k] = v.clone();
        }
        frame
    };

    client.send_json(publish(1, json!({ "channel": "" }))).await;
    assert_eq!(
        client.expect_error("bad_channel", "`channel`").await["id"],
        1
    );
    client
        .send_json(publish(2, json!({ "channel": "x".repeat(17) })))
        .await;
    assert_eq!(client.expect_error("bad_channel", "16").await["id"], 2);
    client
        .send_json(publish(3, json!({ "payload": { "ids": "1" } })))
        .await;
    assert_eq!(
        client.expect_error("bad_event", "payload.ids").await["id"],
        3
    );
    client
        .send_json(publish(4, json!({ "payload": { "ids": [true] } })))
        .await;
    client.expect_error("bad_event", "payload.ids").await;
    client
        .send_json(publish(5, json!({ "date": "yesterday" })))
        .await;
    assert_eq!(client.expect_error("bad_event", "`date`").await["id"], 5);
    client.send_json(publish(6, json!({ "meta": [1] }))).await;
    client.expect_error("bad_event", "`meta`").await;
    client.send_json(publish(7, json!({ "type": "" }))).await;
    client.expect_error("bad_event", "`type`").await;
    client
        .send_json(publish(
            8,
            json!({ "payload": { "pad": "x".repeat(1100) } }),
        ))
        .await;
    // The publish is refused unread, but by its id: the client rejects it at once.
    assert_eq!(client.expect_error("too_large", "1024").await["id"], 8);
    client
        .send_json(
            json!({ "op": "subscribe", "channels": [{ "channel": "ok" }, { "channel": "" }] }),
        )
        .await;
    client.expect_error("bad_channel", "`channel`").await;

    client.assert_alive().await;
    assert_eq!(
        relay.health().await["subscriptions"],
        0,
        "a refused subscribe subscribes nothing"
    );
    client.send_json(publish(9, json!({}))).await;
    assert_eq!(
        client.recv_op("ack").await,
        json!({ "op": "ack", "id": 9, "seq": 1 })
    );
    relay.stop().await;
}

#[tokio::test]
async fn invalid_events_over_http_get_their_codes() {
    let relay = Relay::start(Config {
        max_frame_bytes: 1024,
        max_channel_len: 16,
        ..Config::default()
    })
    .await;
    let expect = |status: u16, code: &str, naming: &str, answer: (u16, Value)| {
        assert_eq!(answer.0, status, "{}", answer.1);
        assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
        let message = answer.1["error"]["message"].as_str().expect("message");
        assert!(
            message.contains(naming),
            "message should name {naming:?}: {}",
            answer.1
        );
    };

    expect(
        400,
        "bad_channel",
        "`channel`",
        relay.publish(json!({ "channel": "", "type": "x" })).await,
    );
    expect(
        400,
        "bad_channel",
        "16",
        relay
            .publish(json!({ "channel": "y".repeat(17), "type": "x" }))
            .await,
    );
    expect(
        400,
        "bad_event",
        "payload.ids",
        relay
            .publish(json!({ "channel": "c", "type": "x", "payload": { "ids": "1" } }))
            .await,
    );
    expect(
        400,
        "bad_event",
        "`date`",
        relay
            .publish(json!({ "channel": "c", "type": "x", "date": "soon" }))
            .await,
    );
    expect(
        400,
        "bad_event",
        "`date`",
        relay
            .publish(json!({ "channel": "c", "type": "x", "date": true }))
            .await,
    );
    expect(
        400,
        "bad_event",
        "`meta`",
        relay
            .publish(json!({ "channel": "c", "type": "x", "meta": "m" }))
            .await,
    );
    expect(
        400,
        "bad_event",
        "`type`",
        relay.publish(json!({ "channel": "c", "type": "" })).await,
    );
    expect(
        400,
        "bad_frame",
        "type",
        relay.publish(json!({ "channel": "c" })).await,
    );
    expect(400, "bad_frame", "LiveEvent", relay.post("{not json").await);
    let big = json!({ "channel": "c", "type": "x", "payload": { "pad": "x".repeat(2000) } });
    expect(413, "too_large", "1024", relay.publish(big).await);

    // None of these used a seq.
    let (status, body) = relay
        .publish(json!({ "channel": "c", "type": "x", "date": 5 }))
        .await;
    assert_eq!((status, body), (200, json!({ "channel": "c", "seq": 1 })));
    relay.stop().await;
}

#[tokio::test]
async fn channels_per_connection_are_limited() {
    let relay = Relay::start(Config {
        max_channels: 2,
        ..Config::default()
    })
    .await;
    let mut client = relay.client().await;
    client
        .send(r#"{"op":"subscribe","channels":[{"channel":"a"},{"channel":"b"},{"channel":"c"}]}"#)
        .await;
    client.expect_error("too_many_channels", "limit of 2").await;
    let subscribed = client.subscribe(&["a", "b"]).await;
    assert_eq!(subscribed["channels"].as_array().map(Vec::len), Some(2));
    client
        .send(r#"{"op":"subscribe","channels":[{"channel":"c"}]}"#)
        .await;
    client.expect_error("too_many_channels", "limit of 2").await;
    client
        .send(r#"{"op":"unsubscribe","channels":[{"channel":"a"}]}"#)
        .await;
    let subscribed = client.subscribe(&["c"]).await;
    assert_eq!(
        subscribed["channels"],
        json!([{ "channel": "c", "seq": 0 }])
    );
    relay.stop().await;
}

#[tokio::test]
async fn healthz_counts_connections_channels_and_subscriptions() {
    let relay = Relay::default().await;
    let health = relay.health().await;
    let epoch = health["epoch"].as_str().expect("epoch").to_owned();
    let broker = if common::on_redis() {
        "redis"
    } else {
        "memory"
    };
    let counts = |connections: u64,
                  channels: u64,
                  subscriptions: u64,
                  history_events: u64,
                  known_channels: u64| {
        json!({
            "status": "ok", "epoch": epoch, "broker": broker, "connections": connections,
            "channels": channels, "subscriptions": subscriptions, "history_events": history_events,
            "known_channels": known_channels, "redis_outages": 0, "redis_push_overflows": 0
        })
    };
    assert_eq!(health, counts(0, 0, 0, 0, 0));
    let (mut a, hello) = relay.client_with_hello().await;
    assert_eq!(hello["epoch"], epoch.as_str(), "the epoch of `hello`");
    let mut b = relay.client().await;
    a.subscribe(&["x", "y"]).await;
    b.subscribe(&["x"]).await;
    relay.publish(json!({ "channel": "x", "type": "t" })).await;
    relay.publish(json!({ "channel": "z", "type": "t" })).await;
    // A node on Redis keeps the history of the channels its clients follow (`z` is in Redis).
    let kept = if common::on_redis() { 1 } else { 2 };
    // In process: x, y (subscribed) and z (its event kept); on Redis, the two channels followed.
    let known = if common::on_redis() { 2 } else { 3 };
    assert_eq!(relay.health().await, counts(2, 2, 3, kept, known));
    a.ws.close(None).await.expect("close a");
    drop(a);
    relay
        .wait_health("a left", |h| {
            h["connections"] == 1 && h["subscriptions"] == 1
        })
        .await;
    drop(b);
    let health = relay
        .wait_health("all left", |h| h["connections"] == 0)
        .await;
    // In process, y (no subscriber, no event) is forgotten; a Redis node follows x and y until
    // they have been idle for 10 s.
    assert_eq!(health, counts(0, 0, 0, kept, 2), "the history stays");
    relay.stop().await;
}

#[tokio::test]
async fn the_relay_pings_and_closes_silent_connections() {
    let relay = Relay::start(Config {
        ping_ms: 200,
        ..Config::default()
    })
    .await;

    // A client that answers keeps its connection well past two intervals.
    let mut lively = relay.client().await;
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_millis(1000) {
        let frame = lively.recv_op("ping").await;
        assert_eq!(frame, json!({ "op": "ping" }));
        pings += 1;
        lively.send(r#"{"op":"pong"}"#).await;
    }
    assert!(pings >= 3, "{pings} pings in a second at 200 ms");
    lively.assert_alive().await;

    // A client that never says anything is closed after about two intervals.
    let mut silent = relay.client().await;
    let started = Instant::now();
    let frames = silent.until_closed().await;
    assert!(frames.iter().all(|f| f["op"] == "ping"), "{frames:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "closed too early: {:?}",
        started.elapsed()
    );
    relay.stop().await;
}

#[tokio::test]
async fn a_slow_consumer_is_told_and_closed_without_blocking_publishers() {
    let relay = Relay::start(Config {
        outbound_queue: 4,
        ..Config::default()
    })
    .await;
    let mut slow = relay.client().await;
    slow.subscribe(&["firehose"]).await;
    let mut fast = relay.client().await;
    fast.subscribe(&["other"]).await;

    // The slow client stops reading. Events pile up in the socket buffers, then in its queue,
    // until the relay drops its subscription.
    let pad = "x".repeat(32 * 1024);
    let mut published = 0u64;
    loop {
        let (status, body) = relay
            .publish(json!({ "channel": "firehose", "type": "t", "payload": { "pad": pad } }))
            .await;
        assert_eq!(status, 200, "{body}");
        published += 1;
        if published % 8 == 0 && relay.health().await["subscriptions"] == 1 {
            break;
        }
        assert!(published < 4000, "the slow consumer was never cut off");
    }
    // Publishing and other connections were never held up.
    let (status, _) = relay
        .publish(json!({ "channel": "other", "type": "t" }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(fast.recv_op("event").await["seq"], 1);

    // Reading again, the slow client finds a gapless prefix of the events, then the error.
    let frames = slow.until_closed().await;
    let (last, events) = frames.split_last().expect("some frames");
    assert_eq!(last["op"], "error", "{last}");
    assert_eq!(last["code"], "slow_consumer");
    assert!(!events.is_empty());
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["op"], "event");
        assert_eq!(event["seq"], i as u64 + 1);
    }
    assert!((events.len() as u64) < published);
    relay
        .wait_health("slow left", |h| h["connections"] == 1)
        .await;
    relay.stop().await;
}

#[tokio::test]
async fn cors_allows_browser_pages_to_publish_and_poll() {
    let relay = Relay::default().await;
    let preflight = relay
        .http
        .request(reqwest::Method::OPTIONS, relay.url("/publish"))
        .header("origin", "http://127.0.0.1:5173")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .expect("ascii");
    assert!(methods.contains("POST"), "{methods}");

    for request in [
        relay.http.get(relay.url("/healthz")),
        relay
            .http
            .post(relay.url("/publish"))
            .body(r#"{"channel":"c","type":"t"}"#),
    ] {
        let response = request
            .header("origin", "http://127.0.0.1:5173")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
    }
    relay.stop().await;
}

#[tokio::test]
async fn a_static_directory_is_served_at_the_root() {
    let dir = std::env::temp_dir().join(format!("live-relay-static-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("pkg")).expect("temp dir");
    std::fs::write(dir.join("index.html"), "<h1>live</h1>").expect("index.html");
    std::fs::write(dir.join("pkg/app.wasm"), b"\0asm\x01\0\0\0").expect("app.wasm");
    let relay = Relay::start(Config {
        static_dir: Some(dir.clone()),
        ..Config::default()
    })
    .await;

    let index = relay.http.get(relay.url("/")).send().await.expect("GET /");
    assert_eq!(index.status().as_u16(), 200);
    assert!(index.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/html"));
    assert_eq!(index.text().await.expect("body"), "<h1>live</h1>");
    let wasm = relay
        .http
        .get(relay.url("/pkg/app.wasm"))
        .send()
        .await
        .expect("GET wasm");
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    let missing = relay
        .http
        .get(relay.url("/nope.js"))
        .send()
        .await
        .expect("GET missing");
    assert_eq!(missing.status().as_u16(), 404);
    // The relay's own routes still win.
    assert_eq!(relay.health().await["status"], "ok");
    relay.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn shutdown_closes_websocket_connections() {
    let relay = Relay::default().await;
    let mut client = relay.client().await;
    client.subscribe(&["x"]).await;
    relay.stop().await;
    let frames = client.until_closed().await;
    assert!(frames.is_empty(), "{frames:?}");
}

#[tokio::test]
async fn a_subscriber_that_fell_behind_gets_every_queued_event_once() {
    // Large events fill the socket's buffers while the subscriber does not read, so hundreds of
    // frames wait in its outbound queue and leave in batches.
    let relay = Relay::default().await;
    let mut slow = relay.client().await;
    slow.subscribe(&["big"]).await;
    let padding = "x".repeat(16_000);
    const N: u64 = 600;
    for n in 1..=N {
        let (status, answer) = relay
            .publish(
                json!({ "channel": "big", "type": "t", "payload": { "n": n, "pad": padding } }),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    let mut seqs = Vec::new();
    while seqs.len() < N as usize {
        let event = slow.recv_op("event").await;
        seqs.push(event["seq"].as_u64().expect("seq"));
    }
    assert_eq!(
        seqs,
        (1..=N).collect::<Vec<_>>(),
        "every event once, in order"
    );
    slow.expect_silence().await;
    relay.stop().await;
}
