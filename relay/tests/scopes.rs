//! Scopes (`skip` frames), reserved `$` channels and `POST /revalidate`, end to end against the
//! relay in-process, over WebSocket and Server-Sent Events.

mod common;

use common::{Client, Relay};
use live_relay::Config;
use serde_json::{json, Value};

/// The next frame must be `op` (`event` or `skip`) on `channel` with this seq.
async fn expect(client: &mut Client, op: &str, channel: &str, seq: u64) -> Value {
    let frame = client.recv().await;
    assert_eq!(
        (
            frame["op"].as_str(),
            frame["channel"].as_str(),
            frame["seq"].as_u64()
        ),
        (Some(op), Some(channel), Some(seq)),
        "{frame}"
    );
    frame
}

#[tokio::test]
async fn a_scoped_event_reaches_its_scopes_and_is_a_skip_for_everyone_else() {
    let relay = Relay::default().await;
    let mut user1 = relay.scoped_client("user%3A1,team:7").await;
    let mut user2 = relay.scoped_client("user:2").await;
    let mut anyone = relay.client().await;
    for client in [&mut user1, &mut user2, &mut anyone] {
        client.subscribe(&["c"]).await;
    }

    let (status, body) = relay
        .publish(
            json!({ "channel": "c", "type": "updated", "payload": { "ids": [1] },
                         "scopes": ["user:1"] }),
        )
        .await;
    assert_eq!((status, &body), (200, &json!({ "channel": "c", "seq": 1 })));
    let event = expect(&mut user1, "event", "c", 1).await;
    assert_eq!(event["payload"], json!({ "ids": [1] }));
    assert!(
        event.get("scopes").is_none(),
        "scopes are not sent: {event}"
    );
    for client in [&mut user2, &mut anyone] {
        let skip = expect(client, "skip", "c", 1).await;
        assert_eq!(skip, json!({ "op": "skip", "channel": "c", "seq": 1 }));
    }

    // Without scopes: everyone. With several: any of them.
    relay.publish(json!({ "channel": "c", "type": "t" })).await;
    relay
        .publish(json!({ "channel": "c", "type": "t", "scopes": ["user:2", "team:7"] }))
        .await;
    relay
        .publish(json!({ "channel": "c", "type": "t", "scopes": [] }))
        .await;
    expect(&mut user1, "event", "c", 2).await;
    expect(&mut user1, "event", "c", 3).await;
    expect(&mut user1, "event", "c", 4).await;
    expect(&mut user2, "event", "c", 2).await;
    expect(&mut user2, "event", "c", 3).await;
    expect(&mut user2, "event", "c", 4).await;
    expect(&mut anyone, "event", "c", 2).await;
    expect(&mut anyone, "skip", "c", 3).await;
    expect(&mut anyone, "event", "c", 4).await;

    // A WebSocket publish with scopes: the publisher (without them) gets a skip before its ack.
    anyone
        .send_json(
            json!({ "op": "publish", "id": 1, "channel": "c", "type": "t",
                           "scopes": ["user:1"] }),
        )
        .await;
    expect(&mut anyone, "skip", "c", 5).await;
    assert_eq!(
        anyone.recv().await,
        json!({ "op": "ack", "id": 1, "seq": 5 })
    );
    expect(&mut user1, "event", "c", 5).await;
    expect(&mut user2, "skip", "c", 5).await;
    relay.stop().await;
}

#[tokio::test]
async fn scoped_events_over_sse_carry_the_same_position_ids() {
    let relay = Relay::default().await;
    let mut user1 = relay.sse("channels=c,d&scopes=user%3A1").await;
    let mut user2 = relay.sse("channels=c,d&scopes=user:2").await;
    let mut anyone = relay.sse("channels=c,d").await;
    let (epoch, _) = user1.opening().await;
    user2.opening().await;
    anyone.opening().await;

    relay
        .publish(json!({ "channel": "c", "type": "t", "scopes": ["user:1"] }))
        .await;
    relay.publish(json!({ "channel": "d", "type": "t" })).await;
    let id1 = format!("{epoch}:1,0");
    let id2 = format!("{epoch}:1,1");
    user1.expect("event", "c", 1, &id1).await;
    user1.expect("event", "d", 1, &id2).await;
    for sse in [&mut user2, &mut anyone] {
        let skip = sse.expect("skip", "c", 1, &id1).await;
        assert_eq!(skip, json!({ "op": "skip", "channel": "c", "seq": 1 }));
        sse.expect("event", "d", 1, &id2).await;
    }
    drop((user1, user2, anyone));
    relay.stop().await;
}

#[tokio::test]
async fn replays_honour_the_scopes_of_the_resuming_connection() {
    let relay = Relay::default().await;
    relay
        .publish(json!({ "channel": "c", "type": "t", "scopes": ["user:1"] }))
        .await;
    relay.publish(json!({ "channel": "c", "type": "t" })).await;
    relay
        .publish(json!({ "channel": "c", "type": "t", "scopes": ["user:2"] }))
        .await;
    let epoch = relay.epoch().await;

    let mut ws = relay.scoped_client("user:2").await;
    ws.send_json(json!({ "op": "subscribe", "channels": [
        { "channel": "c", "since": { "epoch": epoch, "seq": 0 } }
    ] }))
    .await;
    let subscribed = ws.recv_op("subscribed").await;
    assert_eq!(subscribed["channels"][0]["recovered"], true);
    expect(&mut ws, "skip", "c", 1).await;
    expect(&mut ws, "event", "c", 2).await;
    expect(&mut ws, "event", "c", 3).await;

    let mut sse = relay
        .sse(&format!("channels=c&since={epoch}:0&scopes=user:1"))
        .await;
    sse.opening().await;
    sse.expect("event", "c", 1, &format!("{epoch}:1")).await;
    sse.expect("event", "c", 2, &format!("{epoch}:2")).await;
    sse.expect("skip", "c", 3, &format!("{epoch}:3")).await;
    drop(sse);
    relay.stop().await;
}

#[tokio::test]
async fn bad_scopes_are_refused() {
    let relay = Relay::default().await;
    // On the connection: 400 with a JSON error instead of the upgrade.
    let cases = [
        ("scopes=a,,b".to_owned(), "scope 1 is empty"),
        (format!("scopes={}", "s".repeat(129)), "128 bytes"),
        (format!("scopes={}", vec!["s"; 33].join(",")), "33 scopes"),
        ("scopes=a&scopes=b".to_owned(), "more than once"),
    ];
    for (query, naming) in cases {
        let (status, body) = relay.get_json(&format!("/ws?{query}")).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "bad_frame", "{body}");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains(naming), "{message}");
    }
    let request = format!("ws://{}/ws?scopes=a,,b", relay.addr);
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 400)
        }
        other => panic!("expected a refused handshake, got {other:?}"),
    }

    // On an event: bad_event.
    for (scopes, naming) in [
        (json!("user:1"), "`scopes` must be an array of strings"),
        (json!([1]), "`scopes` must be an array of strings"),
        (json!([""]), "`scopes`: scope 0 is empty"),
        (json!(["s".repeat(129)]), "128 bytes"),
        (json!(vec!["s"; 33]), "33 scopes"),
    ] {
        let (status, body) = relay
            .publish(json!({ "channel": "c", "type": "t", "scopes": scopes }))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "bad_event", "{body}");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains(naming), "{message}");
    }
    let mut client = relay.client().await;
    client
        .send_json(
            json!({ "op": "publish", "id": 4, "channel": "c", "type": "t",
                           "scopes": ["ok", ""] }),
        )
        .await;
    let error = client.expect_error("bad_event", "scope 1 is empty").await;
    assert_eq!(error["id"], 4);
    relay.stop().await;
}

#[tokio::test]
async fn reserved_channels_cannot_be_published_to_and_only_revalidate_can_be_subscribed() {
    let relay = Relay::default().await;
    let mut client = relay.client().await;
    client
        .send_json(json!({ "op": "publish", "id": 1, "channel": "$x", "type": "t" }))
        .await;
    let error = client.expect_error("bad_channel", "reserved").await;
    assert_eq!(error["id"], 1);
    client
        .send_json(json!({ "op": "publish", "id": 2, "channel": "$revalidate", "type": "t" }))
        .await;
    client
        .expect_error("bad_channel", "use `POST /revalidate`")
        .await;

    for channel in ["$x", "$revalidate"] {
        let (status, body) = relay
            .publish(json!({ "channel": channel, "type": "t" }))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "bad_channel", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("reserved")),
            "{body}"
        );
    }

    client
        .send_json(
            json!({ "op": "subscribe", "channels": [{ "channel": "a" }, { "channel": "$other" }] }),
        )
        .await;
    client.expect_error("bad_channel", "$revalidate").await;
    let subscribed = client.subscribe(&["$revalidate"]).await;
    assert_eq!(
        subscribed["channels"],
        json!([{ "channel": "$revalidate", "seq": 0 }])
    );
    assert_eq!(
        relay.health().await["subscriptions"],
        1,
        "`a` was not subscribed"
    );
    relay.stop().await;
}

#[tokio::test]
async fn revalidate_publishes_normalised_keys_on_the_revalidate_channel() {
    let relay = Relay::default().await;
    let mut ws = relay.client().await;
    ws.subscribe(&["$revalidate"]).await;
    let mut scoped_ws = relay.scoped_client("user:2").await;
    scoped_ws.subscribe(&["$revalidate"]).await;
    let mut sse = relay.sse("channels=%24revalidate&scopes=user:1").await;
    let (epoch, _) = sse.opening().await;

    let response = relay
        .http
        .post(relay.url("/revalidate"))
        .header("origin", "http://127.0.0.1:5173")
        .body(r#"{"keys":["posts",["users",42,{"page":1.5}],[]]}"#)
        .send()
        .await
        .expect("POST /revalidate");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body, json!({ "channel": "$revalidate", "seq": 1 }));

    let keys = json!({ "keys": [["posts"], ["users", 42, { "page": 1.5 }], []] });
    for client in [&mut ws, &mut scoped_ws] {
        let event = expect(client, "event", "$revalidate", 1).await;
        assert_eq!(event["type"], "revalidate");
        assert_eq!(event["payload"], keys);
        assert!(event["date"].is_number(), "{event}");
    }
    let event = sse
        .expect("event", "$revalidate", 1, &format!("{epoch}:1"))
        .await;
    assert_eq!(event["payload"], keys);

    // With scopes.
    let (status, body) = relay
        .revalidate(json!({ "keys": [["todos"]], "scopes": ["user:1"] }))
        .await;
    assert_eq!(
        (status, body),
        (200, json!({ "channel": "$revalidate", "seq": 2 }))
    );
    let event = sse
        .expect("event", "$revalidate", 2, &format!("{epoch}:2"))
        .await;
    assert_eq!(event["payload"], json!({ "keys": [["todos"]] }));
    expect(&mut scoped_ws, "skip", "$revalidate", 2).await;
    expect(&mut ws, "skip", "$revalidate", 2).await;
    drop(sse);
    relay.stop().await;
}

#[tokio::test]
async fn bad_revalidations_are_refused_like_publishes() {
    let relay = Relay::start(Config {
        max_frame_bytes: 1024,
        ..Config::default()
    })
    .await;
    let too_many: Vec<&str> = vec!["k"; 101];
    let cases = [
        (json!({}), "bad_event", "`keys` is missing"),
        (json!({ "keys": [] }), "bad_event", "`keys` is empty"),
        (
            json!({ "keys": "posts" }),
            "bad_event",
            "`keys` must be an array",
        ),
        (
            json!({ "keys": [1] }),
            "bad_event",
            "`keys[0]` must be an array or a string",
        ),
        (json!({ "keys": ["a", null] }), "bad_event", "`keys[1]`"),
        (
            json!({ "keys": too_many }),
            "bad_event",
            "over the limit of 100",
        ),
        (
            json!({ "keys": ["a"], "scopes": "u" }),
            "bad_event",
            "`scopes`",
        ),
        (
            json!({ "keys": ["a"], "scopes": [""] }),
            "bad_event",
            "scope 0 is empty",
        ),
        (json!([1]), "bad_frame", "not a valid revalidation"),
    ];
    for (body, code, naming) in cases {
        let (status, answer) = relay.revalidate(body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().expect("message");
        assert!(message.contains(naming), "{body}: {message}");
    }
    let (status, answer) = relay.post_to("/revalidate", "not json").await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!("bad_frame"))
    );
    let big = json!({ "keys": ["k".repeat(2000)] }).to_string();
    let (status, answer) = relay.post_to("/revalidate", big).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (413, &json!("too_large"))
    );
    relay.stop().await;
}
