//! Resuming (`since` / `recovered` and the replay), idempotent publishes and reserved types, end
//! to end against the relay in-process.

mod common;

use common::{Client, Relay, PATIENCE};
use live_relay::Config;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A connected client and the relay's epoch from its `hello`.
async fn connect(relay: &Relay) -> (Client, String) {
    let (client, hello) = relay.client_with_hello().await;
    let epoch = hello["epoch"].as_str().expect("epoch").to_owned();
    (client, epoch)
}

/// Sends one `subscribe` frame with these entries; returns the `subscribed` channels.
async fn subscribe(client: &mut Client, entries: Value) -> Value {
    client
        .send_json(json!({ "op": "subscribe", "channels": entries }))
        .await;
    client.recv_op("subscribed").await["channels"].clone()
}

fn since(channel: &str, epoch: &str, seq: u64) -> Value {
    json!({ "channel": channel, "since": { "epoch": epoch, "seq": seq } })
}

/// The next frames must be events of `channel` with exactly these seqs.
async fn expect_events(client: &mut Client, channel: &str, seqs: impl IntoIterator<Item = u64>) {
    for seq in seqs {
        let event = client.recv_op("event").await;
        assert_eq!(
            (event["channel"].as_str(), event["seq"].as_u64()),
            (Some(channel), Some(seq)),
            "{event}"
        );
    }
}

#[tokio::test]
async fn a_client_resuming_within_the_history_gets_the_missed_events_before_live_ones() {
    let relay = Relay::default().await;
    assert_eq!(relay.publish_n("c", 5).await, 5);
    let (mut client, epoch) = connect(&relay).await;

    let subscribed = subscribe(
        &mut client,
        json!([since("c", &epoch, 2), { "channel": "d" }]),
    )
    .await;
    assert_eq!(
        subscribed,
        json!([
            { "channel": "c", "seq": 5, "recovered": true },
            { "channel": "d", "seq": 0 },
        ]),
        "`recovered` only answers a `since`"
    );
    let event = client.recv_op("event").await;
    assert_eq!((&event["channel"], &event["seq"]), (&json!("c"), &json!(3)));
    assert_eq!(event["type"], "updated");
    assert_eq!(
        event["payload"],
        json!({ "ids": [1] }),
        "replayed as published"
    );
    expect_events(&mut client, "c", 4..=5).await;
    client.expect_silence().await;

    assert_eq!(relay.publish_n("c", 1).await, 6);
    expect_events(&mut client, "c", [6]).await;
    client.expect_silence().await;
    relay.stop().await;
}

#[tokio::test]
async fn another_epoch_is_not_recovered_and_nothing_is_replayed() {
    let relay = Relay::default().await;
    relay.publish_n("c", 5).await;
    let (mut client, epoch) = connect(&relay).await;
    let subscribed = subscribe(&mut client, json!([since("c", "0123456789abcdef", 2)])).await;
    assert_ne!(epoch, "0123456789abcdef");
    assert_eq!(
        subscribed,
        json!([{ "channel": "c", "seq": 5, "recovered": false }])
    );
    client.expect_silence().await;
    relay.publish_n("c", 1).await;
    expect_events(&mut client, "c", [6]).await;
    relay.stop().await;
}

#[tokio::test]
async fn a_position_beyond_the_kept_history_or_in_the_future_is_not_recovered() {
    let relay = Relay::start(Config {
        history_size: 2,
        ..Config::default()
    })
    .await;
    relay.publish_n("c", 5).await;
    if !common::on_redis() {
        // (A node on Redis counts only the history of the channels its clients follow.)
        assert_eq!(relay.health().await["history_events"], 2);
    }

    let (mut gone, epoch) = connect(&relay).await;
    let subscribed = subscribe(&mut gone, json!([since("c", &epoch, 1)])).await;
    assert_eq!(
        subscribed,
        json!([{ "channel": "c", "seq": 5, "recovered": false }])
    );
    gone.expect_silence().await;

    let (mut future, _) = connect(&relay).await;
    let subscribed = subscribe(
        &mut future,
        json!([since("c", &epoch, 9), since("never", &epoch, 1)]),
    )
    .await;
    assert_eq!(
        subscribed,
        json!([
            { "channel": "c", "seq": 5, "recovered": false },
            { "channel": "never", "seq": 0, "recovered": false },
        ])
    );
    future.expect_silence().await;

    let (mut kept, _) = connect(&relay).await;
    let subscribed = subscribe(&mut kept, json!([since("c", &epoch, 3)])).await;
    assert_eq!(
        subscribed,
        json!([{ "channel": "c", "seq": 5, "recovered": true }])
    );
    expect_events(&mut kept, "c", [4, 5]).await;
    kept.expect_silence().await;
    relay.stop().await;
}

#[tokio::test]
async fn an_up_to_date_client_is_recovered_with_nothing_to_replay() {
    let relay = Relay::default().await;
    relay.publish_n("c", 5).await;
    let (mut client, epoch) = connect(&relay).await;
    let subscribed = subscribe(
        &mut client,
        json!([since("c", &epoch, 5), since("empty", &epoch, 0)]),
    )
    .await;
    assert_eq!(
        subscribed,
        json!([
            { "channel": "c", "seq": 5, "recovered": true },
            { "channel": "empty", "seq": 0, "recovered": true },
        ])
    );
    client.expect_silence().await;
    relay.publish_n("c", 1).await;
    expect_events(&mut client, "c", [6]).await;

    // Resubscribing a channel already subscribed answers it again (and replays as asked; the
    // client drops what it already has).
    let subscribed = subscribe(&mut client, json!([since("c", &epoch, 5)])).await;
    assert_eq!(
        subscribed,
        json!([{ "channel": "c", "seq": 6, "recovered": true }])
    );
    expect_events(&mut client, "c", [6]).await;
    client.expect_silence().await;
    relay.stop().await;
}

#[tokio::test]
async fn without_history_only_an_up_to_date_client_is_recovered() {
    let relay = Relay::start(Config {
        history_size: 0,
        ..Config::default()
    })
    .await;
    relay.publish_n("c", 5).await;
    assert_eq!(relay.health().await["history_events"], 0);
    let (mut client, epoch) = connect(&relay).await;
    for seen in [0, 1, 4] {
        let subscribed = subscribe(&mut client, json!([since("c", &epoch, seen)])).await;
        assert_eq!(
            subscribed,
            json!([{ "channel": "c", "seq": 5, "recovered": false }]),
            "since {seen}"
        );
    }
    let subscribed = subscribe(&mut client, json!([since("c", &epoch, 5)])).await;
    assert_eq!(
        subscribed,
        json!([{ "channel": "c", "seq": 5, "recovered": true }])
    );
    client.expect_silence().await;
    relay.publish_n("c", 1).await;
    expect_events(&mut client, "c", [6]).await;
    relay.stop().await;
}

#[tokio::test]
async fn expired_events_are_not_replayed() {
    let relay = Relay::start(Config {
        history_ttl_ms: 1000,
        ..Config::default()
    })
    .await;
    relay.publish_n("c", 3).await;
    let (mut early, epoch) = connect(&relay).await;
    let subscribed = subscribe(&mut early, json!([since("c", &epoch, 1)])).await;
    assert_eq!(
        subscribed,
        json!([{ "channel": "c", "seq": 3, "recovered": true }])
    );
    expect_events(&mut early, "c", [2, 3]).await;

    // The periodic sweep forgets them.
    relay
        .wait_health("the history expired", |h| h["history_events"] == 0)
        .await;
    let (mut late, _) = connect(&relay).await;
    let subscribed = subscribe(
        &mut late,
        json!([since("c", &epoch, 1), since("c2", &epoch, 0)]),
    )
    .await;
    assert_eq!(
        subscribed,
        json!([
            { "channel": "c", "seq": 3, "recovered": false },
            { "channel": "c2", "seq": 0, "recovered": true },
        ])
    );
    late.expect_silence().await;
    let subscribed = subscribe(&mut late, json!([since("c", &epoch, 3)])).await;
    assert_eq!(
        subscribed,
        json!([{ "channel": "c", "seq": 3, "recovered": true }]),
        "nothing was missed"
    );
    late.expect_silence().await;
    relay.stop().await;
}

#[tokio::test]
async fn a_replay_larger_than_the_outbound_queue_closes_the_connection_as_a_slow_consumer() {
    let relay = Relay::start(Config {
        outbound_queue: 4,
        ..Config::default()
    })
    .await;
    relay.publish_n("c", 10).await;
    let (mut client, epoch) = connect(&relay).await;
    client
        .send_json(json!({ "op": "subscribe", "channels": [since("c", &epoch, 0)] }))
        .await;
    let frames = client.until_closed().await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["op"], "error");
    assert_eq!(frames[0]["code"], "slow_consumer");

    // A replay that fits is fine.
    let (mut fits, _) = connect(&relay).await;
    let subscribed = subscribe(&mut fits, json!([since("c", &epoch, 7)])).await;
    assert_eq!(subscribed[0]["recovered"], true);
    expect_events(&mut fits, "c", 8..=10).await;
    relay.stop().await;
}

#[tokio::test]
async fn a_keyed_publish_over_websocket_is_published_once() {
    let relay = Relay::default().await;
    let mut subscriber = relay.client().await;
    subscriber.subscribe(&["c"]).await;
    let mut publisher = relay.client().await;
    let publish = |id: u64, key: &str| json!({ "op": "publish", "id": id, "key": key, "channel": "c", "type": "created" });

    publisher.send_json(publish(1, "key-1")).await;
    assert_eq!(
        publisher.recv_op("ack").await,
        json!({ "op": "ack", "id": 1, "seq": 1 })
    );
    // Resent (as after a reconnect, on another connection too): acked with the first seq.
    publisher.send_json(publish(2, "key-1")).await;
    assert_eq!(
        publisher.recv_op("ack").await,
        json!({ "op": "ack", "id": 2, "seq": 1 })
    );
    let mut other = relay.client().await;
    other.send_json(publish(1, "key-1")).await;
    assert_eq!(
        other.recv_op("ack").await,
        json!({ "op": "ack", "id": 1, "seq": 1 })
    );
    // The same key over HTTP too: keys are per relay.
    let (status, body) = relay
        .publish(json!({ "key": "key-1", "channel": "c", "type": "created" }))
        .await;
    assert_eq!((status, body), (200, json!({ "channel": "c", "seq": 1 })));

    expect_events(&mut subscriber, "c", [1]).await;
    subscriber.expect_silence().await;

    publisher.send_json(publish(3, "key-2")).await;
    assert_eq!(publisher.recv_op("ack").await["seq"], 2);
    expect_events(&mut subscriber, "c", [2]).await;

    // Bad keys.
    publisher.send_json(publish(4, "")).await;
    let error = publisher.expect_error("bad_event", "`key` is empty").await;
    assert_eq!(error["id"], 4);
    publisher.send_json(publish(5, &"k".repeat(129))).await;
    publisher.expect_error("bad_event", "128").await;
    publisher.send_json(publish(6, &"k".repeat(128))).await;
    assert_eq!(publisher.recv_op("ack").await["seq"], 3);
    relay.stop().await;
}

#[tokio::test]
async fn a_keyed_publish_over_http_is_published_once() {
    let relay = Relay::default().await;
    let mut subscriber = relay.client().await;
    subscriber.subscribe(&["c"]).await;
    let body =
        json!({ "key": "http-1", "channel": "c", "type": "updated", "payload": { "ids": [3] } });
    for _ in 0..2 {
        let (status, answer) = relay.publish(body.clone()).await;
        assert_eq!((status, answer), (200, json!({ "channel": "c", "seq": 1 })));
    }
    // Keys are per publisher and channel: the same key on another channel is another publish
    // (and its answer says nothing of `c`).
    let (status, answer) = relay
        .publish(json!({ "key": "http-1", "channel": "elsewhere", "type": "updated" }))
        .await;
    assert_eq!(
        (status, answer),
        (200, json!({ "channel": "elsewhere", "seq": 1 }))
    );
    expect_events(&mut subscriber, "c", [1]).await;
    subscriber.expect_silence().await;
    if !common::on_redis() {
        // (A node on Redis counts only the history of the channels its clients follow.)
        assert_eq!(relay.health().await["history_events"], 2);
    }

    let (status, answer) = relay
        .publish(json!({ "key": "", "channel": "c", "type": "updated" }))
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "bad_event", "{answer}");
    let (status, answer) = relay
        .publish(json!({ "key": 7, "channel": "c", "type": "updated" }))
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "bad_frame", "{answer}");

    let (status, answer) = relay
        .publish(json!({ "key": "http-2", "channel": "c", "type": "updated" }))
        .await;
    assert_eq!((status, answer), (200, json!({ "channel": "c", "seq": 2 })));
    expect_events(&mut subscriber, "c", [2]).await;
    relay.stop().await;
}

#[tokio::test]
async fn a_publish_key_is_forgotten_after_its_ttl() {
    let relay = Relay::start(Config {
        publish_key_ttl_ms: 100,
        ..Config::default()
    })
    .await;
    let body = json!({ "key": "short-lived", "channel": "c", "type": "updated" });
    assert_eq!(relay.publish(body.clone()).await.1["seq"], 1);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let seq = relay.publish(body.clone()).await.1["seq"].as_u64();
        if seq == Some(2) {
            break;
        }
        assert_eq!(seq, Some(1));
        assert!(
            tokio::time::Instant::now() < deadline,
            "the key is never forgotten"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    relay.stop().await;
}

#[tokio::test]
async fn types_starting_with_a_dollar_are_reserved() {
    let relay = Relay::default().await;
    let mut client = relay.client().await;
    client.subscribe(&["c"]).await;
    client
        .send_json(json!({ "op": "publish", "id": 1, "channel": "c", "type": "$resync" }))
        .await;
    let error = client
        .expect_error("bad_event", "types starting with `$` are reserved")
        .await;
    assert_eq!(error["id"], 1);

    let (status, answer) = relay
        .publish(json!({ "channel": "c", "type": "$anything" }))
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "bad_event");
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(message.contains("reserved"), "{message}");

    // No seq was used, nothing was delivered.
    client.expect_silence().await;
    let (_, answer) = relay
        .publish(json!({ "channel": "c", "type": "resync$" }))
        .await;
    assert_eq!(answer["seq"], 1);
    relay.stop().await;
}

/// One task publishes without pause while a client keeps dropping its connection and resuming
/// from the last event it saw, sometimes in the middle of a replay: it must see every event
/// exactly once, in order. Any gap or overlap between the replay and the live events (a
/// subscribe and its replay not atomic with the publishes) shows up as a wrong seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_while_events_are_published_misses_and_repeats_nothing() {
    let relay = Arc::new(
        Relay::start(Config {
            history_size: 100_000,
            outbound_queue: 200_000,
            ..Config::default()
        })
        .await,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let publisher = tokio::spawn({
        let (relay, stop, published) = (relay.clone(), stop.clone(), published.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                let seq = relay.publish_n("race", 1).await;
                published.store(seq, Ordering::Relaxed);
            }
        }
    });

    let mut last = 0u64;
    let mut delivered = 0u64;
    let mut replays = 0;
    for round in 0..50u64 {
        let (mut client, epoch) = connect(&relay).await;
        let subscribed = subscribe(&mut client, json!([since("race", &epoch, last)])).await;
        assert_eq!(
            subscribed[0]["recovered"], true,
            "round {round}: {subscribed}"
        );
        let at = subscribed[0]["seq"].as_u64().expect("seq");
        assert!(
            at >= last,
            "round {round}: subscribed at {at} after seeing {last}"
        );
        if at > last {
            replays += 1;
        }
        // Every third round leaves in the middle of the replay; the others stay for a few live
        // events.
        let until = if round % 3 == 0 && at > last + 1 {
            last + (at - last) / 2
        } else {
            at + 1 + round % 4
        };
        while last < until {
            let event = client.recv_op("event").await;
            assert_eq!(
                event["seq"].as_u64(),
                Some(last + 1),
                "round {round} (subscribed at {at}): {event}"
            );
            last += 1;
            delivered += 1;
        }
        drop(client);
        // Let some events be published while the client is away.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, Ordering::Relaxed);
    publisher.await.expect("publisher");
    assert_eq!(delivered, last);
    assert!(published.load(Ordering::Relaxed) >= last);
    assert!(replays > 0, "no round had anything to replay");
    match Arc::try_unwrap(relay) {
        Ok(relay) => relay.stop().await,
        Err(_) => panic!("the relay is still shared"),
    }
}
