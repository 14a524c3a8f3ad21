//! The Server-Sent Events transport (`GET /sse`), end to end against the relay in-process: the
//! stream's framing and headers, `id` position vectors, resuming with `since` and `Last-Event-ID`,
//! refused requests, pings, and the connection's end.

mod common;

use common::{Relay, PATIENCE};
use live_relay::Config;
use serde_json::{json, Value};

#[tokio::test]
async fn the_stream_has_its_headers_then_retry_hello_subscribed_and_events_with_position_ids() {
    let relay = Relay::default().await;
    relay.publish_n("b", 2).await;
    let response = relay
        .http
        .get(relay.url("/sse?channels=a,b,x%2Cy"))
        .header("origin", "http://127.0.0.1:5173")
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(headers["access-control-allow-origin"], "*");
    let mut sse = common::Sse::from_response(response);

    let (epoch, subscribed) = sse.opening().await;
    assert_eq!(epoch, relay.epoch().await);
    assert_eq!(
        subscribed,
        json!([
            { "channel": "a", "seq": 0 },
            { "channel": "b", "seq": 2 },
            { "channel": "x,y", "seq": 0 },
        ])
    );

    let (status, _) = relay
        .publish(json!({ "channel": "a", "type": "created", "payload": { "ids": [7] }, "date": 5 }))
        .await;
    assert_eq!(status, 200);
    let event = sse.expect("event", "a", 1, &format!("{epoch}:1,2,0")).await;
    assert_eq!(
        event,
        json!({ "op": "event", "channel": "a", "seq": 1, "type": "created",
                "payload": { "ids": [7] }, "date": 5.0 })
    );
    relay.publish_n("b", 1).await;
    sse.expect("event", "b", 3, &format!("{epoch}:1,3,0")).await;
    relay.publish_n("x,y", 1).await;
    sse.expect("event", "x,y", 1, &format!("{epoch}:1,3,1"))
        .await;
    relay.publish_n("elsewhere", 1).await;
    sse.expect_silence().await;

    let health = relay.health().await;
    assert_eq!(
        (&health["connections"], &health["subscriptions"]),
        (&json!(1), &json!(3)),
        "{health}"
    );
    drop(sse);
    relay.stop().await;
}

#[tokio::test]
async fn since_resumes_with_a_replay_and_ids_start_at_the_resumed_position() {
    let relay = Relay::default().await;
    relay.publish_n("a", 3).await;
    relay.publish_n("b", 1).await;
    let epoch = relay.epoch().await;

    // `a` resumes after 1, `b` is new, `c` is up to date.
    let mut sse = relay
        .sse(&format!("channels=a,b,c&since={epoch}:1,,0"))
        .await;
    let (_, subscribed) = sse.opening().await;
    assert_eq!(
        subscribed,
        json!([
            { "channel": "a", "seq": 3, "recovered": true },
            { "channel": "b", "seq": 1 },
            { "channel": "c", "seq": 0, "recovered": true },
        ])
    );
    sse.expect("event", "a", 2, &format!("{epoch}:2,1,0")).await;
    sse.expect("event", "a", 3, &format!("{epoch}:3,1,0")).await;
    relay.publish_n("b", 1).await;
    sse.expect("event", "b", 2, &format!("{epoch}:3,2,0")).await;
    drop(sse);

    // The position vector may be URL-encoded as a whole.
    let mut sse = relay.sse(&format!("channels=a&since={epoch}%3A2")).await;
    let (_, subscribed) = sse.opening().await;
    assert_eq!(subscribed[0]["recovered"], true);
    sse.expect("event", "a", 3, &format!("{epoch}:3")).await;
    drop(sse);
    relay.stop().await;
}

#[tokio::test]
async fn last_event_id_resumes_like_since_and_the_query_wins() {
    let relay = Relay::default().await;
    relay.publish_n("a", 3).await;
    let epoch = relay.epoch().await;

    let last_id = format!("{epoch}:2,0");
    let mut sse = relay
        .sse_with("channels=a,b", &[("last-event-id", &last_id)])
        .await;
    let (_, subscribed) = sse.opening().await;
    assert_eq!(
        subscribed,
        json!([
            { "channel": "a", "seq": 3, "recovered": true },
            { "channel": "b", "seq": 0, "recovered": true },
        ])
    );
    sse.expect("event", "a", 3, &format!("{epoch}:3,0")).await;
    sse.expect_silence().await;
    drop(sse);

    let mut sse = relay
        .sse_with(
            &format!("channels=a,b&since={epoch}:1,"),
            &[("last-event-id", &last_id)],
        )
        .await;
    let (_, subscribed) = sse.opening().await;
    assert_eq!(subscribed[0]["recovered"], true);
    assert!(subscribed[1].get("recovered").is_none(), "{subscribed}");
    sse.expect("event", "a", 2, &format!("{epoch}:2,0")).await;
    sse.expect("event", "a", 3, &format!("{epoch}:3,0")).await;
    drop(sse);
    relay.stop().await;
}

#[tokio::test]
async fn another_epoch_or_a_lost_position_is_not_recovered() {
    let relay = Relay::start(Config {
        history_size: 2,
        ..Config::default()
    })
    .await;
    relay.publish_n("a", 4).await;
    relay.publish_n("b", 1).await;
    let epoch = relay.epoch().await;

    let mut sse = relay.sse("channels=a,b&since=old-epoch:4,1").await;
    let (_, subscribed) = sse.opening().await;
    assert_eq!(
        subscribed,
        json!([
            { "channel": "a", "seq": 4, "recovered": false },
            { "channel": "b", "seq": 1, "recovered": false },
        ])
    );
    sse.expect_silence().await;
    relay.publish_n("a", 1).await;
    sse.expect("event", "a", 5, &format!("{epoch}:5,1")).await;
    drop(sse);

    // Events 2 and 3 are no longer kept.
    let mut sse = relay.sse(&format!("channels=a&since={epoch}:1")).await;
    let (_, subscribed) = sse.opening().await;
    assert_eq!(
        subscribed,
        json!([{ "channel": "a", "seq": 5, "recovered": false }])
    );
    sse.expect_silence().await;
    drop(sse);
    relay.stop().await;
}

#[tokio::test]
async fn bad_requests_are_refused_with_json_errors() {
    let relay = Relay::start(Config {
        max_channels: 3,
        max_channel_len: 16,
        ..Config::default()
    })
    .await;
    let epoch = relay.epoch().await;
    let long = "c".repeat(17);
    let cases: Vec<(String, &str, &str)> = vec![
        (String::new(), "bad_frame", "`channels` is required"),
        ("channels=".into(), "bad_channel", "`channels` is empty"),
        ("channels=a,,b".into(), "bad_channel", "item 1"),
        (format!("channels={long}"), "bad_channel", "16 bytes"),
        ("channels=a,b,a".into(), "bad_channel", "listed twice"),
        ("channels=%24other".into(), "bad_channel", "reserved"),
        ("channels=a,b,c,d".into(), "too_many_channels", "limit of 3"),
        ("channels=a%zz".into(), "bad_frame", "URL-encoded"),
        (
            "channels=a&channels=b".into(),
            "bad_frame",
            "more than once",
        ),
        ("channels=a,b&since=12".into(), "bad_frame", "`since`"),
        (
            format!("channels=a,b&since={epoch}:1"),
            "bad_frame",
            "1 positions for 2 channels",
        ),
        (
            format!("channels=a&since={epoch}:x"),
            "bad_frame",
            "not a seq",
        ),
        ("channels=a&since=:1".into(), "bad_frame", "empty epoch"),
        (
            "channels=a&scopes=u,,v".into(),
            "bad_frame",
            "`scopes`: scope 1 is empty",
        ),
    ];
    for (query, code, naming) in &cases {
        let (status, body) = relay.get_json(&format!("/sse?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], *code, "{query}: {body}");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains(naming), "{query}: {message}");
    }
    let response = relay
        .http
        .get(relay.url("/sse?channels=a"))
        .header("last-event-id", "no-colon")
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`Last-Event-ID`")),
        "{body}"
    );
    let health = relay.health().await;
    assert_eq!(
        health["connections"], 0,
        "refused streams leave nothing behind"
    );

    // `$revalidate` is the one reserved channel that can be listened to.
    let mut sse = relay.sse("channels=%24revalidate").await;
    let (_, subscribed) = sse.opening().await;
    assert_eq!(subscribed, json!([{ "channel": "$revalidate", "seq": 0 }]));
    drop(sse);
    relay.stop().await;
}

#[tokio::test]
async fn pings_come_as_comment_and_frame_and_a_client_going_away_leaves_nothing_behind() {
    let relay = Relay::start(Config {
        ping_ms: 100,
        ..Config::default()
    })
    .await;
    let mut sse = relay.sse("channels=a,b").await;
    sse.opening().await;
    let ping = sse.block().await;
    assert_eq!(ping.comments, ["keepalive"]);
    assert_eq!(ping.data.as_deref(), Some(r#"{"op":"ping"}"#));
    assert_eq!(ping.id, None);
    let health = relay.health().await;
    assert_eq!(
        (
            &health["connections"],
            &health["channels"],
            &health["subscriptions"]
        ),
        (&json!(1), &json!(2), &json!(2)),
        "{health}"
    );

    // A WebSocket client alongside, to see the SSE one leave on its own.
    let mut ws = relay.client().await;
    ws.subscribe(&["a"]).await;
    drop(sse);
    relay
        .wait_health("the SSE client's subscriptions end", |h| {
            h["connections"] == 1 && h["subscriptions"] == 1
        })
        .await;
    drop(ws);
    relay
        .wait_health("everything ends", |h| {
            h["connections"] == 0 && h["channels"] == 0 && h["subscriptions"] == 0
        })
        .await;
    relay.stop().await;
}

#[tokio::test]
async fn a_slow_sse_consumer_is_told_and_closed_and_shutdown_ends_streams() {
    let relay = Relay::start(Config {
        outbound_queue: 4,
        history_size: 100,
        ..Config::default()
    })
    .await;
    relay.publish_n("a", 10).await;
    let epoch = relay.epoch().await;
    // A replay of 10 events does not fit in a queue of 4.
    let mut sse = relay.sse(&format!("channels=a&since={epoch}:0")).await;
    let frames = sse.until_closed().await;
    let ops: Vec<&str> = frames.iter().filter_map(|f| f["op"].as_str()).collect();
    assert_eq!(ops, ["hello", "error"], "{frames:?}");
    assert_eq!(frames[1]["code"], "slow_consumer");
    relay
        .wait_health("the slow consumer is gone", |h| h["connections"] == 0)
        .await;

    let mut sse = relay.sse("channels=a").await;
    sse.opening().await;
    let stopping = tokio::spawn(relay.stop());
    let frames = sse.until_closed().await;
    assert!(frames.is_empty(), "{frames:?}");
    tokio::time::timeout(PATIENCE, stopping)
        .await
        .expect("the relay stops")
        .expect("stop task");
}

#[tokio::test]
async fn many_events_reach_an_sse_client_in_order_without_gaps() {
    let relay = Relay::default().await;
    let mut sse = relay.sse("channels=a,b").await;
    let (epoch, _) = sse.opening().await;
    let publisher = {
        let http = relay.http.clone();
        let url = relay.url("/publish");
        tokio::spawn(async move {
            for i in 0..200u64 {
                let channel = if i % 2 == 0 { "a" } else { "b" };
                let response = http
                    .post(&url)
                    .body(json!({ "channel": channel, "type": "t" }).to_string())
                    .send()
                    .await
                    .expect("publish");
                assert_eq!(response.status().as_u16(), 200);
            }
        })
    };
    let (mut a, mut b) = (0, 0);
    for _ in 0..200 {
        let (id, frame) = sse.recv_op("event").await;
        if frame["channel"] == "a" {
            a += 1;
            assert_eq!(frame["seq"], a);
        } else {
            b += 1;
            assert_eq!(frame["seq"], b);
        }
        assert_eq!(id, Some(format!("{epoch}:{a},{b}")));
    }
    tokio::time::timeout(PATIENCE, publisher)
        .await
        .expect("published")
        .expect("publisher task");
    drop(sse);
    relay.stop().await;
}

#[tokio::test]
async fn a_client_going_away_is_noticed_without_waiting_for_a_ping() {
    let relay = Relay::default().await; // pings every 25 s
    let mut sse = relay.sse("channels=a,b").await;
    sse.opening().await;
    drop(sse);
    relay
        .wait_health("the SSE connection ends", |h| {
            h["connections"] == 0 && h["subscriptions"] == 0
        })
        .await;
    relay.stop().await;
}

/// A client that stops reading (its socket's buffers full): the stream's write times out after two
/// ping intervals, the connection ends, and the timeout is counted as WebSocket counts it
/// (`live_relay_limit_hits_total{limit="write_timeout"}`): one write timeout for both transports.
#[tokio::test]
async fn a_stream_nobody_reads_ends_at_the_write_timeout_and_is_counted() {
    let relay = Relay::start(Config {
        ping_ms: 100, // writes time out after 200 ms
        ..Config::default()
    })
    .await;
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("a small receive buffer");
    let mut stream = socket.connect(relay.addr).await.expect("connect");
    let request = "GET /sse?channels=big HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .expect("the request");
    relay
        .wait_health("the stream is open", |h| h["connections"] == 1)
        .await;
    // Never read: 200 events of 60 KB fill the socket's buffers and the stream's (well under the
    // outbound queue's 1,024 frames, so the connection is not ended as a slow consumer).
    let blob = "x".repeat(60_000);
    for _ in 0..200 {
        let event = json!({ "channel": "big", "type": "updated", "payload": { "blob": blob } });
        let (status, _) = relay.publish(event).await;
        assert_eq!(status, 200);
        if relay.health().await["connections"] == 0 {
            break;
        }
    }
    relay
        .wait_health("the unread stream ends", |h| h["connections"] == 0)
        .await;
    let metrics = relay.metrics().await;
    assert!(
        metrics.contains(r#"live_relay_limit_hits_total{limit="write_timeout"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("live_relay_slow_consumer_kicks_total 0"),
        "{metrics}"
    );
    drop(stream);
    relay.stop().await;
}
