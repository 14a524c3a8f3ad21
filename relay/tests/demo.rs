//! Demo mode end to end: the in-memory REST API at `/api` as `@refinedev/simple-rest` calls it,
//! the events its changes publish, `GET /stats/channels`, and the demo's authentication: tokens
//! from `GET /demo/token` for WebSocket clients, the demo API key for `POST /publish`.

mod common;

use common::demo_api::{
    authed_client, authed_client_with_frame, call, demo_token, expect_error, get,
};
use common::{Client, Relay, Sse, PATIENCE};
use live_relay::{Config, DEMO_API_KEY};
use serde_json::{json, Value};
use tokio::time::Instant;

async fn demo() -> Relay {
    Relay::start(Config {
        demo: true,
        ..Config::default()
    })
    .await
}

/// `POST /publish` with this `Authorization` header (or none).
async fn publish_as(relay: &Relay, authorization: Option<&str>, event: Value) -> (u16, Value) {
    let mut request = relay
        .http
        .post(relay.url("/publish"))
        .header("content-type", "application/json")
        .body(event.to_string());
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let response = request.send().await.expect("POST /publish");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

fn ids(records: &Value) -> Vec<u64> {
    records
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r["id"].as_u64().expect("integer id"))
        .collect()
}

/// The next event on a subscribed client: its type and payload ids, checking the rest.
async fn next_event(client: &mut Client) -> (String, Value) {
    let event = client.recv_op("event").await;
    assert_eq!(event["channel"], "resources/posts", "{event}");
    assert_eq!(event["meta"], json!({ "source": "demo-api" }), "{event}");
    assert!(event["date"].is_number(), "{event}");
    let kind = event["type"].as_str().expect("type").to_owned();
    (kind, event["payload"]["ids"].clone())
}

#[tokio::test]
async fn lists_paginate_sort_and_count() {
    let relay = demo().await;
    let (status, total, page) = get(&relay, "/api/posts?_start=0&_end=10").await;
    assert_eq!(status, 200);
    assert_eq!(total, Some(12));
    assert_eq!(ids(&page), (1..=10).collect::<Vec<_>>());
    let post = &page[0];
    for field in ["title", "content", "status", "createdAt"] {
        assert!(post[field].is_string(), "{field}: {post}");
    }
    assert!(post["category"]["id"].is_u64(), "{post}");

    let (_, total, page) = get(&relay, "/api/posts?_start=10&_end=20").await;
    assert_eq!((ids(&page), total), (vec![11, 12], Some(12)));

    let (_, total, page) = get(&relay, "/api/posts?_start=0&_end=3&_sort=id&_order=desc").await;
    assert_eq!((ids(&page), total), (vec![12, 11, 10], Some(12)));

    let (_, total, page) = get(
        &relay,
        "/api/posts?_sort=status,id&_order=desc,desc&_start=0&_end=2",
    )
    .await;
    assert_eq!(
        (ids(&page), total),
        (vec![12, 6], Some(12)),
        "rejected first"
    );

    let (_, total, page) = get(&relay, "/api/posts?status=draft&title_like=SOUP").await;
    assert_eq!((ids(&page), total), (vec![8], Some(1)));
    let (_, total, page) = get(&relay, "/api/posts?category.id=3&_start=0&_end=2").await;
    assert_eq!((ids(&page), total), (vec![5, 6], Some(3)));

    let (status, total, categories) = get(&relay, "/api/categories").await;
    assert_eq!(
        (status, total, ids(&categories)),
        (200, Some(4), vec![1, 2, 3, 4])
    );
    assert!(categories[0]["title"].is_string());

    let (status, total, empty) = get(&relay, "/api/users?_start=0&_end=10").await;
    assert_eq!((status, total, empty), (200, Some(0), json!([])));

    expect_error(
        get(&relay, "/api/posts?_start=soon").await,
        400,
        "bad_request",
        "_start",
    );
    relay.stop().await;
}

#[tokio::test]
async fn get_many_and_get_one() {
    let relay = demo().await;
    let (status, _, records) = get(&relay, "/api/posts?id=4&id=2&id=400").await;
    assert_eq!((status, ids(&records)), (200, vec![2, 4]));

    let (status, _, post) = get(&relay, "/api/posts/3").await;
    assert_eq!((status, &post["id"]), (200, &json!(3)));
    let (_, _, category) = get(&relay, "/api/categories/2").await;
    assert_eq!(category["id"], 2);

    expect_error(get(&relay, "/api/posts/99").await, 404, "not_found", "99");
    expect_error(get(&relay, "/api/posts/abc").await, 404, "not_found", "abc");
    expect_error(get(&relay, "/api/users/1").await, 404, "not_found", "users");
    relay.stop().await;
}

#[tokio::test]
async fn changes_are_answered_and_published() {
    let relay = demo().await;
    let mut watcher = authed_client(&relay).await;
    watcher.subscribe(&["resources/posts"]).await;

    // Create.
    let (status, _, created) = call(
        relay
            .http
            .post(relay.url("/api/posts"))
            .json(&json!({ "title": "Hello", "status": "draft", "category": { "id": 2 } })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["id"], 13);
    assert_eq!(created["title"], "Hello");
    assert_eq!(
        next_event(&mut watcher).await,
        ("created".into(), json!([13]))
    );
    let (_, total, _) = get(&relay, "/api/posts?_start=0&_end=1").await;
    assert_eq!(total, Some(13));

    // Patch merges.
    let (status, _, patched) = call(
        relay
            .http
            .patch(relay.url("/api/posts/13"))
            .json(&json!({ "status": "published" })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (&patched["title"], &patched["status"]),
        (&json!("Hello"), &json!("published"))
    );
    assert_eq!(
        next_event(&mut watcher).await,
        ("updated".into(), json!([13]))
    );
    let (_, _, stored) = get(&relay, "/api/posts/13").await;
    assert_eq!(stored, patched);

    // Put replaces.
    let (status, _, replaced) = call(
        relay
            .http
            .put(relay.url("/api/posts/13"))
            .json(&json!({ "title": "Replaced" })),
    )
    .await;
    assert_eq!(
        (status, replaced),
        (200, json!({ "id": 13, "title": "Replaced" }))
    );
    assert_eq!(
        next_event(&mut watcher).await,
        ("updated".into(), json!([13]))
    );

    // Delete answers the record.
    let (status, _, deleted) = call(relay.http.delete(relay.url("/api/posts/1"))).await;
    assert_eq!((status, &deleted["id"]), (200, &json!(1)));
    assert_eq!(deleted["title"], "Welcome to the live demo");
    assert_eq!(
        next_event(&mut watcher).await,
        ("deleted".into(), json!([1]))
    );
    expect_error(get(&relay, "/api/posts/1").await, 404, "not_found", "1");

    // Missing records: 404, and nothing is published.
    let missing = [
        relay.http.patch(relay.url("/api/posts/1")).json(&json!({})),
        relay.http.put(relay.url("/api/posts/77")).json(&json!({})),
        relay.http.delete(relay.url("/api/posts/1")),
    ];
    for request in missing {
        expect_error(call(request).await, 404, "not_found", "posts");
    }
    watcher.expect_silence().await;

    // A new resource is created by its first record, on its own channel.
    let mut tags = authed_client(&relay).await;
    tags.subscribe(&["resources/tags"]).await;
    let (status, _, tag) = call(
        relay
            .http
            .post(relay.url("/api/tags"))
            .json(&json!({ "name": "rust" })),
    )
    .await;
    assert_eq!((status, tag), (201, json!({ "id": 1, "name": "rust" })));
    let event = tags.recv_op("event").await;
    assert_eq!(
        (&event["channel"], &event["type"], &event["payload"]),
        (
            &json!("resources/tags"),
            &json!("created"),
            &json!({ "ids": [1] })
        )
    );
    watcher.expect_silence().await;
    relay.stop().await;
}

#[tokio::test]
async fn bad_bodies_are_refused_by_name() {
    let relay = Relay::start(Config {
        demo: true,
        max_frame_bytes: 1024,
        ..Config::default()
    })
    .await;
    let mut watcher = authed_client(&relay).await;
    watcher.subscribe(&["resources/posts"]).await;
    let post = |body: &str| {
        relay
            .http
            .post(relay.url("/api/posts"))
            .header("content-type", "application/json")
            .body(body.to_owned())
    };
    expect_error(
        call(post("{\"title\":")).await,
        400,
        "bad_request",
        "not valid JSON",
    );
    expect_error(call(post("[1,2]")).await, 400, "bad_request", "an array");
    expect_error(call(post("")).await, 400, "bad_request", "empty");
    let huge = json!({ "title": "x".repeat(2000) }).to_string();
    expect_error(call(post(&huge)).await, 413, "too_large", "1024 bytes");
    let patch = relay
        .http
        .patch(relay.url("/api/posts/2"))
        .body("\"published\"");
    expect_error(call(patch).await, 400, "bad_request", "a string");
    let bad_name = relay.http.post(relay.url("/api/a.b")).json(&json!({}));
    expect_error(call(bad_name).await, 400, "bad_request", "a.b");
    watcher.expect_silence().await;
    relay.stop().await;
}

#[tokio::test]
async fn the_demo_api_is_cross_origin() {
    let relay = demo().await;
    let preflight = relay
        .http
        .request(reqwest::Method::OPTIONS, relay.url("/api/posts/1"))
        .header("origin", "http://127.0.0.1:5173")
        .header("access-control-request-method", "PATCH")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .expect("ascii");
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(methods.contains(method), "{method}: {methods}");
    }
    let response = relay
        .http
        .get(relay.url("/api/posts"))
        .header("origin", "http://127.0.0.1:5173")
        .send()
        .await
        .expect("list");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        response.headers()["access-control-expose-headers"]
            .to_str()
            .expect("ascii")
            .to_ascii_lowercase(),
        "x-total-count"
    );
    relay.stop().await;
}

#[tokio::test]
async fn without_demo_there_is_no_api() {
    let relay = Relay::default().await;
    for request in [
        relay.http.get(relay.url("/api/posts")),
        relay.http.get(relay.url("/api/posts/1")),
        relay.http.post(relay.url("/api/posts")).json(&json!({})),
    ] {
        let response = request.send().await.expect("request");
        assert_eq!(response.status().as_u16(), 404);
    }
    relay.stop().await;
}

async fn channel_stats(relay: &Relay) -> Value {
    let response = relay
        .http
        .get(relay.url("/stats/channels"))
        .bearer_auth(live_relay::DEMO_API_KEY)
        .header("origin", "http://127.0.0.1:5173")
        .send()
        .await
        .expect("GET /stats/channels");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    response.json().await.expect("JSON stats")
}

/// Polls `/stats/channels` until it is `expected`.
async fn wait_stats(relay: &Relay, expected: Value) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = channel_stats(relay).await;
        if stats == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {expected}, still {stats}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stats_count_subscribers_until_they_leave() {
    let relay = Relay::default().await;
    assert_eq!(channel_stats(&relay).await, json!({}));

    let mut a = relay.client().await;
    a.subscribe(&["resources/posts", "other"]).await;
    assert_eq!(
        channel_stats(&relay).await,
        json!({
            "other": { "subscribers": 1, "last_seq": 0 },
            "resources/posts": { "subscribers": 1, "last_seq": 0 },
        })
    );

    let mut b = relay.client().await;
    b.subscribe(&["resources/posts"]).await;
    let (status, _) = relay
        .publish(
            json!({ "channel": "resources/posts", "type": "created", "payload": { "ids": [1] } }),
        )
        .await;
    assert_eq!(status, 200);
    a.recv_op("event").await;
    b.recv_op("event").await;
    assert_eq!(
        channel_stats(&relay).await["resources/posts"],
        json!({ "subscribers": 2, "last_seq": 1 })
    );

    a.send(
        r#"{"op":"unsubscribe","channels":[{"channel":"resources/posts"},{"channel":"other"}]}"#,
    )
    .await;
    a.assert_alive().await; // the unsubscribe was handled before the pong
    assert_eq!(
        channel_stats(&relay).await,
        json!({ "resources/posts": { "subscribers": 1, "last_seq": 1 } })
    );

    drop(b);
    wait_stats(&relay, json!({})).await;
    relay.stop().await;
}

#[tokio::test]
async fn the_demo_token_is_accepted_and_its_client_gets_the_api_events() {
    let relay = demo().await;
    let (mut client, authed) = authed_client_with_frame(&relay).await;
    assert_eq!(authed["sub"], "demo-user", "{authed}");
    let ttl = authed["ttl_ms"].as_u64().expect("ttl_ms");
    assert!(ttl > 50_000 && ttl <= 60_000, "a 60 s token: {authed}");

    let subscribed = client.subscribe(&["resources/posts"]).await;
    assert_eq!(
        subscribed["channels"],
        json!([{ "channel": "resources/posts", "seq": 0 }])
    );
    let (status, _, patched) = call(
        relay
            .http
            .patch(relay.url("/api/posts/1"))
            .json(&json!({ "title": "Edited with auth on" })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        next_event(&mut client).await,
        ("updated".into(), json!([1]))
    );

    // A fresh token refreshes the connection in-band.
    let token = demo_token(&relay).await;
    client
        .send_json(json!({ "op": "auth", "token": token }))
        .await;
    let again = client.recv_op("authed").await;
    assert_eq!(again["sub"], "demo-user", "{again}");
    client.assert_alive().await;
    relay.stop().await;
}

#[tokio::test]
async fn a_named_demo_token_is_that_user_and_a_bad_name_is_refused() {
    let relay = demo().await;
    let (status, body) = relay.get_json("/demo/token?name=Alice%204f").await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("a token string");
    let mut client = relay.client().await;
    client
        .send_json(json!({ "op": "auth", "token": token }))
        .await;
    assert_eq!(client.recv_op("authed").await["sub"], "Alice 4f");
    client.subscribe(&["resources/posts"]).await;
    client.assert_alive().await;

    for bad in ["", "a%2Fb", "%3Cscript%3E", &"x".repeat(33)] {
        let (status, body) = relay.get_json(&format!("/demo/token?name={bad}")).await;
        assert_eq!(status, 400, "name={bad}: {body}");
        assert_eq!(body["error"]["code"], "bad_frame", "name={bad}: {body}");
    }
    relay.stop().await;
}

#[tokio::test]
async fn a_client_without_a_token_is_refused_and_closed_with_4001() {
    let relay = demo().await;
    let mut client = relay.client().await;
    client
        .send_json(json!({ "op": "subscribe", "channels": [{ "channel": "resources/posts" }] }))
        .await;
    let (frames, code) = client.until_close_code().await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["op"], "error", "{frames:?}");
    assert_eq!(frames[0]["code"], "unauthorized", "{frames:?}");
    assert!(
        frames[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("auth")),
        "{frames:?}"
    );
    assert_eq!(code, Some(4001));

    // A token that is not the relay's is refused the same way.
    let mut forged = relay.client().await;
    forged
        .send_json(json!({ "op": "auth", "token": "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl" }))
        .await;
    let (frames, code) = forged.until_close_code().await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["code"], "unauthorized", "{frames:?}");
    assert_eq!(code, Some(4001));
    relay.stop().await;
}

#[tokio::test]
async fn http_publishes_need_the_demo_api_key() {
    let relay = demo().await;
    let mut watcher = authed_client(&relay).await;
    watcher.subscribe(&["resources/posts"]).await;
    let event =
        json!({ "channel": "resources/posts", "type": "updated", "payload": { "ids": [1] } });

    let (status, body) = publish_as(&relay, None, event.clone()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    let (status, body) = publish_as(
        &relay,
        Some("Bearer not-the-demo-key-at-all"),
        event.clone(),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("unauthorized")),
        "{body}"
    );
    watcher.expect_silence().await;

    let key = format!("Bearer {DEMO_API_KEY}");
    assert_eq!(key, "Bearer demo-publish-key");
    let (status, body) = publish_as(&relay, Some(&key), event).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "channel": "resources/posts", "seq": 1 }));
    let frame = watcher.recv_op("event").await;
    assert_eq!(
        (&frame["type"], &frame["seq"]),
        (&json!("updated"), &json!(1)),
        "{frame}"
    );

    // `POST /revalidate` takes the same key.
    let revalidate = |authorization: Option<&'static str>| {
        let mut request = relay
            .http
            .post(relay.url("/revalidate"))
            .header("content-type", "application/json")
            .body(json!({ "keys": [["posts"]] }).to_string());
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request
    };
    let (status, _, body) = call(revalidate(None)).await;
    assert_eq!(status, 401, "{body}");
    let (status, _, body) = call(revalidate(Some("Bearer demo-publish-key"))).await;
    assert_eq!(
        (status, body),
        (200, json!({ "channel": "$revalidate", "seq": 1 }))
    );
    relay.stop().await;
}

#[tokio::test]
async fn the_demo_token_stays_within_its_claims() {
    let relay = demo().await;
    let mut client = authed_client(&relay).await;

    // Subscribing outside `resources/*`, `demo/*` and `$revalidate`: a forbidden frame naming the
    // channel, and the allowed channels of the same frame are subscribed.
    client
        .send_json(json!({ "op": "subscribe", "channels": [
            { "channel": "private/payroll" },
            { "channel": "demo/notifications" },
        ] }))
        .await;
    let refused = client.expect_error("forbidden", "private/payroll").await;
    assert_eq!(refused["channel"], "private/payroll", "{refused}");
    let subscribed = client.recv_op("subscribed").await;
    assert_eq!(
        subscribed["channels"],
        json!([{ "channel": "demo/notifications", "seq": 0 }])
    );
    client.subscribe(&["$revalidate"]).await;

    // Publishing: on `demo/*` only.
    client
        .send_json(json!({ "op": "publish", "id": 1, "channel": "resources/posts", "type": "updated", "payload": { "ids": [1] } }))
        .await;
    let refused = client.expect_error("forbidden", "resources/posts").await;
    assert_eq!(refused["id"], 1, "{refused}");
    client
        .send_json(json!({ "op": "publish", "id": 2, "channel": "demo/notifications", "type": "ping", "payload": {} }))
        .await;
    let mut frames = vec![client.recv().await, client.recv().await];
    frames.sort_by_key(|f| f["op"].as_str().map(str::to_owned));
    assert_eq!(frames[0]["op"], "ack", "{frames:?}");
    assert_eq!(
        (&frames[0]["id"], &frames[0]["seq"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(
        (&frames[1]["op"], &frames[1]["channel"], &frames[1]["type"]),
        (
            &json!("event"),
            &json!("demo/notifications"),
            &json!("ping")
        )
    );
    client.assert_alive().await;
    relay.stop().await;
}

/// `POST /demo/cut`, answering `(status, body)`.
async fn cut(relay: &Relay) -> (u16, Value) {
    let response = relay
        .http
        .post(relay.url("/demo/cut"))
        .send()
        .await
        .expect("POST /demo/cut");
    let status = response.status().as_u16();
    let body = response.text().await.expect("a body");
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// Opens an SSE stream of `resources/posts` with a demo token (`since` appended to the query);
/// returns it with the epoch of its `hello` and its `subscribed` channels.
async fn demo_sse(relay: &Relay, token: &str, since: &str) -> (Sse, String, Value) {
    let ticket = relay.ticket(token).await;
    let mut sse = relay
        .sse(&format!("ticket={ticket}&channels=resources/posts{since}"))
        .await;
    assert_eq!(sse.block().await.retry.as_deref(), Some("1000"));
    let hello = sse.recv_op("hello").await.1;
    let epoch = hello["epoch"].as_str().expect("epoch").to_owned();
    assert_eq!(sse.recv_op("authed").await.1["sub"], "demo-user");
    let subscribed = sse.recv_op("subscribed").await.1;
    (sse, epoch, subscribed["channels"].clone())
}

async fn patch_post(relay: &Relay, title: &str) {
    let (status, _, body) = call(
        relay
            .http
            .patch(relay.url("/api/posts/1"))
            .json(&json!({ "title": title })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_cut_drops_every_connection_without_a_word_and_they_resume_without_loss() {
    let relay = demo().await;
    let mut ws = authed_client(&relay).await;
    ws.subscribe(&["resources/posts"]).await;
    let token = demo_token(&relay).await;
    let (mut sse, epoch, _) = demo_sse(&relay, &token, "").await;
    patch_post(&relay, "Before the cut").await;
    assert_eq!(next_event(&mut ws).await, ("updated".into(), json!([1])));
    sse.expect("event", "resources/posts", 1, &format!("{epoch}:1"))
        .await;

    assert_eq!(cut(&relay).await, (200, json!({ "cut": 2 })));
    // Like a network blip: no close frame, no error frame.
    assert_eq!(ws.until_close_code().await, (vec![], None));
    let ended = tokio::time::timeout(PATIENCE, sse.response.chunk())
        .await
        .expect("the SSE stream ends");
    assert!(
        matches!(ended, Ok(None)),
        "the stream ends without a frame: {ended:?}"
    );
    relay
        .wait_health("no connection left", |h| h["connections"] == 0)
        .await;

    // Published while nobody is connected, then replayed to both on resuming.
    patch_post(&relay, "During the cut").await;
    let mut ws = authed_client(&relay).await;
    ws.send_json(json!({
        "op": "subscribe",
        "channels": [{ "channel": "resources/posts", "since": { "epoch": epoch, "seq": 1 } }],
    }))
    .await;
    let subscribed = ws.recv_op("subscribed").await;
    assert_eq!(
        subscribed["channels"],
        json!([{ "channel": "resources/posts", "seq": 2, "recovered": true }])
    );
    let replayed = ws.recv_op("event").await;
    assert_eq!(replayed["seq"], 2, "{replayed}");
    let (mut sse, _, channels) = demo_sse(&relay, &token, &format!("&since={epoch}:1")).await;
    assert_eq!(channels[0]["recovered"], true, "{channels}");
    sse.expect("event", "resources/posts", 2, &format!("{epoch}:2"))
        .await;

    // Live again.
    patch_post(&relay, "After the cut").await;
    assert_eq!(ws.recv_op("event").await["seq"], 3);
    sse.expect("event", "resources/posts", 3, &format!("{epoch}:3"))
        .await;
    relay.stop().await;
}

#[tokio::test]
async fn without_demo_there_is_no_cut() {
    let relay = Relay::default().await;
    let mut client = relay.client().await;
    assert_eq!(cut(&relay).await.0, 404);
    client.assert_alive().await;
    relay.stop().await;
}
