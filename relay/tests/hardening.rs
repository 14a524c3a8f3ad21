//! Hardening, round two: the attacks and misconfigurations a second round of attack found, each
//! tried against the real relay (and, through scripts/test-redis-suites.sh, on the Redis broker
//! too). Every test here failed before its fix.

mod common;

use common::tokens::*;
use common::{Client, Relay, PATIENCE};
use futures_util::SinkExt;
use live_relay::Config;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Publishes `body` over HTTP with `bearer`; returns the status and the answer.
async fn post_publish(relay: &Relay, bearer: &str, body: &Value) -> (u16, Value) {
    let response = relay
        .http
        .post(relay.url("/publish"))
        .bearer_auth(bearer)
        .json(body)
        .send()
        .await
        .expect("POST /publish");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

/// Publishes over a WebSocket connection with `id`; returns the `ack` or `error` answer.
async fn ws_publish(client: &mut Client, id: u64, channel: &str, key: &str) -> Value {
    client
        .send_json(json!({
            "op": "publish", "id": id, "key": key, "channel": channel, "type": "updated",
            "payload": { "ids": [id] },
        }))
        .await;
    loop {
        let frame = client.recv().await;
        if frame["id"] == id && (frame["op"] == "ack" || frame["op"] == "error") {
            return frame;
        }
    }
}

/// Item 1: a token whose `sub` looks like another publisher's namespace (`key`, `token`, `open`,
/// one with separators) publishing with a key must not make another publisher's later publish
/// with the same key an answered no-op: every publisher's event is published.
#[tokio::test]
async fn no_sub_can_take_another_publishers_key_namespace() {
    let relay = Relay::start(Config {
        api_key: vec![KEY.into(), OLD_KEY.into()],
        ..hs_config()
    })
    .await;
    let channel = "orders";
    let (mut reader, _) = authed(&relay, &hs(&claims("reader", 60, &["*"], &[]))).await;
    reader.subscribe(&[channel]).await;
    let event = |key: &str| json!({ "channel": channel, "type": "created", "key": key });
    let mut seen = 0;
    let mut expect_new = |answer: &Value, who: &str| {
        seen += 1;
        assert_eq!(answer["seq"].as_u64(), Some(seen), "{who}: {answer}");
    };

    // The attackers publish first, over WebSocket and HTTP, with the key the backend will use.
    let lookalikes = [
        "key",
        "token",
        "open",
        "",
        "key\u{1f}orders",
        "key:0123",
        "user:3:abc",
        "anon:00",
    ];
    for (i, sub) in lookalikes.iter().enumerate() {
        let token = hs(&claims(sub, 60, &[], &[channel]));
        let (mut attacker, _) = authed(&relay, &token).await;
        let answer = ws_publish(&mut attacker, 1, channel, "order-1").await;
        assert_eq!(answer["op"], "ack", "sub {sub:?}: {answer}");
        expect_new(&answer, sub);
        let (status, answer) =
            post_publish(&relay, &token, &event(&format!("order-{i}-http"))).await;
        assert_eq!(status, 200, "{answer}");
        expect_new(&answer, sub);
    }
    // Two tokens without `sub`: each its own publisher.
    let mut anonymous = claims("x", 60, &[], &[channel]);
    anonymous.as_object_mut().expect("object").remove("sub");
    for n in 0..2 {
        anonymous["jti"] = json!(n);
        let (status, answer) = post_publish(&relay, &hs(&anonymous), &event("order-1")).await;
        assert_eq!(status, 200, "{answer}");
        expect_new(&answer, "a token without sub");
    }
    // The backend's publish is published, and so is the other API key's.
    for key in [KEY, OLD_KEY] {
        let (status, answer) = post_publish(&relay, key, &event("order-1")).await;
        assert_eq!(status, 200, "{answer}");
        expect_new(&answer, "an API key");
        // Resent with the same key by the same publisher: answered with its first seq.
        let (_, again) = post_publish(&relay, key, &event("order-1")).await;
        assert_eq!(again["seq"], answer["seq"], "a resend is one event");
    }
    for seq in 1..=seen {
        let frame = reader.recv_op("event").await;
        assert_eq!(frame["seq"].as_u64(), Some(seq), "{frame}");
    }
    reader.expect_silence().await;
    relay.stop().await;
}

/// The registered claims of the wrong JSON type, each refused with a reason naming it.
fn wrongly_typed_claims() -> Vec<(&'static str, Value)> {
    let good = claims("u1", 120, &["*"], &["*"]);
    let with = |name: &str, value: Value| {
        let mut c = good.clone();
        c[name] = value;
        c
    };
    let in_an_hour = now() + 3600;
    vec![
        ("nbf", with("nbf", json!(in_an_hour.to_string()))),
        ("nbf", with("nbf", json!(true))),
        ("nbf", with("nbf", json!(-5))),
        ("nbf", with("nbf", json!({ "at": in_an_hour }))),
        ("exp", with("exp", json!((now() + 60).to_string()))),
        ("exp", with("exp", json!(null))),
        ("iat", with("iat", json!("yesterday"))),
        ("sub", with("sub", json!(42))),
        ("sub", with("sub", json!(["u1"]))),
        ("aud", with("aud", json!(7))),
        ("aud", with("aud", json!([AUDIENCE, 7]))),
        ("iss", with("iss", json!({ "name": ISSUER }))),
        // Combined with a `sub` that looks like a reserved word.
        ("nbf", {
            let mut c = with("sub", json!("key"));
            c["nbf"] = json!(in_an_hour.to_string());
            c
        }),
    ]
}

/// Item 2: a claim of the wrong JSON type is refused on WebSocket, SSE tickets and HTTP alike
/// (a string `nbf` used to be skipped, so the token worked before its time).
#[tokio::test]
async fn registered_claims_of_the_wrong_type_are_refused_everywhere() {
    let relay = Relay::start(hs_config()).await;
    for (claim, body) in wrongly_typed_claims() {
        let token = hs(&body);
        let mut client = connect_with(&relay, Some(&token)).await;
        let (frames, code) = client.until_close_code().await;
        assert_eq!(code, Some(4001), "{claim} in {body}: {frames:?}");
        let message = frames
            .iter()
            .find(|f| f["code"] == "unauthorized")
            .and_then(|f| f["message"].as_str())
            .unwrap_or_else(|| panic!("{claim}: no unauthorized error in {frames:?}"))
            .to_owned();
        assert!(
            message.contains(&format!("`{claim}`")),
            "{claim}: {message}"
        );

        let ticket = relay
            .http
            .post(relay.url("/sse/ticket"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("POST /sse/ticket");
        assert_eq!(ticket.status(), 401, "{claim}: a ticket for {body}");

        let (status, answer) =
            post_publish(&relay, &token, &json!({ "channel": "c", "type": "x" })).await;
        assert_eq!(status, 401, "{claim}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("`{claim}`"))),
            "{claim}: {answer}"
        );
    }
    // The same `nbf` as a number is refused too, as before: not yet valid.
    let mut early = claims("u1", 120, &["*"], &[]);
    early["nbf"] = json!(now() + 3600);
    let (frames, code) = connect_with(&relay, Some(&hs(&early)))
        .await
        .until_close_code()
        .await;
    assert_eq!(code, Some(4001), "{frames:?}");
    relay.stop().await;
}

/// Item 3: a token that expires in the far future gets a `ttl_ms` the browser can read (at most
/// 2^53 − 1), on WebSocket and on SSE.
#[tokio::test]
async fn ttl_ms_stays_below_2_pow_53() {
    const MAX_SAFE: u64 = (1 << 53) - 1;
    let relay = Relay::start(hs_config()).await;
    for exp in [json!(9_007_199_254_740_991_u64), json!(u64::MAX / 1000)] {
        let mut far = claims("u1", 60, &["*"], &[]);
        far["exp"] = exp.clone();
        let token = hs(&far);
        let (mut client, answer) = authed(&relay, &token).await;
        let ttl = answer["ttl_ms"].as_u64().expect("ttl_ms");
        assert!(ttl <= MAX_SAFE && ttl > 1 << 50, "exp {exp}: ttl_ms {ttl}");
        client.assert_alive().await;

        let ticket = relay.ticket(&token).await;
        let mut sse = relay.sse(&format!("channels=a&ticket={ticket}")).await;
        sse.block().await; // retry
        sse.recv_op("hello").await;
        let (_, authed) = sse.recv_op("authed").await;
        let ttl = authed["ttl_ms"].as_u64().expect("ttl_ms");
        assert!(ttl <= MAX_SAFE, "SSE, exp {exp}: ttl_ms {ttl}");
    }
    relay.stop().await;
}

/// A reconnecting client's frames after an `auth` frame: subscribes and publishes.
fn burst_after(auth: &str) -> Vec<String> {
    let mut frames = vec![json!({ "op": "auth", "token": auth }).to_string()];
    for i in 0..40 {
        frames.push(
            json!({ "op": "subscribe", "channels": [{ "channel": format!("c{i}") }] }).to_string(),
        );
        frames.push(
            json!({ "op": "publish", "id": i, "key": format!("k{i}"), "channel": "c", "type": "x",
                    "payload": { "filler": "x".repeat(500) } })
            .to_string(),
        );
    }
    frames
}

/// How a connection the relay closed ended, as the client saw it.
#[derive(Debug)]
struct Ending {
    frames: Vec<Value>,
    code: Option<u16>,
    /// Whether the closing handshake completed: after the relay's Close the stream ended cleanly
    /// (the client's Close reply went through, then the relay's FIN), not with a reset, which
    /// destroys what is still on its way to the client.
    clean: bool,
}

/// Sends `first`, then keeps sending `then` over and over (every millisecond, for at most 2 s) as
/// a busy client does, while reading what the relay sends until the connection ends.
async fn keep_sending_until_closed(
    client: Client,
    first: Vec<String>,
    then: Vec<String>,
) -> Ending {
    use futures_util::StreamExt;
    let (mut sink, mut stream) = client.ws.split();
    let writer = tokio::spawn(async move {
        for frame in &first {
            if sink.feed(Message::text(frame.as_str())).await.is_err() {
                return;
            }
        }
        let _ = sink.flush().await;
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        for frame in then.iter().cycle() {
            if tokio::time::Instant::now() > until
                || sink.send(Message::text(frame.as_str())).await.is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let mut ending = Ending {
        frames: Vec::new(),
        code: None,
        clean: false,
    };
    loop {
        match tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("the relay ends the connection")
        {
            Some(Ok(Message::Text(text))) => ending
                .frames
                .push(serde_json::from_str(&text).expect("JSON")),
            Some(Ok(Message::Close(frame))) => ending.code = frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            None | Some(Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed)) => {
                ending.clean = ending.code.is_some();
                break;
            }
            Some(Err(_)) => break,
        }
    }
    writer.abort();
    ending
}

/// Item 4: every close the relay decides arrives with its error frame and its close code, and
/// completes the closing handshake, even when the client is still sending (before, the socket
/// was closed with unread data, which resets it: 1006 and no error frame, most of the time on a
/// real network).
#[tokio::test]
async fn refusals_arrive_while_the_client_keeps_sending() {
    let relay = Relay::start(Config {
        max_frame_bytes: 1024,
        ..hs_config()
    })
    .await;
    let valid = hs(&claims("u1", 60, &["*"], &[]));
    let more: Vec<String> = burst_after(&valid).into_iter().skip(1).collect();
    let expect = |ending: &Ending, code: u16, error: &str, case: &str| {
        assert_eq!(ending.code, Some(code), "{case}: {ending:?}");
        assert!(ending.clean, "{case}: no closing handshake: {ending:?}");
        assert!(
            ending.frames.iter().any(|f| f["code"] == error),
            "{case}: {ending:?}"
        );
    };
    for round in 0..5 {
        let client = connect_with(&relay, None).await;
        let first = burst_after("not-a-token");
        let ending = keep_sending_until_closed(client, first, more.clone()).await;
        expect(
            &ending,
            4001,
            "unauthorized",
            &format!("round {round}, bad token"),
        );

        let (client, _) = authed(&relay, &valid).await;
        let first = vec!["x".repeat((1 << 20) + 10)];
        let ending = keep_sending_until_closed(client, first, more.clone()).await;
        expect(
            &ending,
            1009,
            "too_large",
            &format!("round {round}, over 1 MiB"),
        );

        let client = connect_with(&relay, None).await;
        let first = vec![json!({ "op": "auth", "token": "x".repeat(20_000) }).to_string()];
        let ending = keep_sending_until_closed(client, first, more.clone()).await;
        expect(
            &ending,
            1009,
            "too_large",
            &format!("round {round}, 20 KB before auth"),
        );
    }
    let metrics = relay.metrics().await;
    assert!(
        metrics.contains(r#"live_relay_limit_hits_total{limit="transport_size"} 5"#),
        "{metrics}"
    );
    relay.stop().await;
}

/// Item 6: the `Bearer` scheme in any case is accepted; two `Authorization` headers are refused
/// (which one counts would depend on who reads them).
#[tokio::test]
async fn authorization_headers_are_read_as_rfc_7235_says() {
    let relay = Relay::start(hs_config()).await;
    let body = json!({ "channel": "c", "type": "x" }).to_string();
    let post = |headers: Vec<String>| {
        let mut request = relay
            .http
            .post(relay.url("/publish"))
            .header("content-type", "application/json")
            .body(body.clone());
        for value in headers {
            request = request.header("authorization", value);
        }
        async move {
            let response = request.send().await.expect("POST /publish");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON"))
        }
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (status, answer) = post(vec![format!("{scheme} {KEY}")]).await;
        assert_eq!(status, 200, "{scheme}: {answer}");
    }
    let user = hs(&claims("u1", 60, &[], &["*"]));
    for pair in [
        vec![format!("Bearer {KEY}"), format!("Bearer {KEY}")],
        vec![format!("Bearer {user}"), format!("Bearer {KEY}")],
        vec![format!("Bearer {KEY}"), "Bearer nothing".to_owned()],
    ] {
        let (status, answer) = post(pair.clone()).await;
        assert_eq!(status, 401, "{pair:?}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("two `Authorization` headers")),
            "{answer}"
        );
    }
    relay.stop().await;
}

/// Item 7: a user cannot hoard SSE tickets (the 33rd at once is refused), and another user still
/// gets one.
#[tokio::test]
async fn sse_tickets_are_capped_per_user() {
    let relay = Relay::start(hs_config()).await;
    let hoarder = hs(&claims("hoarder", 60, &["*"], &[]));
    let ask = |token: String| {
        let request = relay.http.post(relay.url("/sse/ticket")).bearer_auth(token);
        async move {
            let response = request.send().await.expect("POST /sse/ticket");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON"))
        }
    };
    for n in 0..32 {
        let (status, answer) = ask(hoarder.clone()).await;
        assert_eq!(status, 200, "ticket {n}: {answer}");
    }
    let (status, answer) = ask(hoarder.clone()).await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"]["code"], "rate_limited");
    let (status, answer) = ask(hs(&claims("someone-else", 60, &["*"], &[]))).await;
    assert_eq!(status, 200, "another user: {answer}");
    assert!(relay
        .metrics()
        .await
        .contains(r#"live_relay_limit_hits_total{limit="sse_tickets"} 1"#));
    relay.stop().await;
}

/// Item 7: `--max-connections` caps WebSocket and SSE connections in all, with
/// `too_many_connections`, counted; a closed connection makes room.
#[tokio::test]
async fn max_connections_caps_the_relay() {
    let relay = Relay::start(Config {
        max_connections: 3,
        ..Config::default()
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(relay.client().await);
    }
    let refused = relay
        .http
        .get(relay.url("/ws"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("GET /ws");
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "too_many_connections", "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("--max-connections")));
    let sse = relay
        .http
        .get(relay.url("/sse?channels=a"))
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(sse.status(), 429, "SSE counts too");
    drop(open.pop());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let health = relay.health().await;
        if health["connections"] == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    open.push(relay.client().await);
    assert!(relay
        .metrics()
        .await
        .contains(r#"live_relay_limit_hits_total{limit="connections"} 2"#));
    relay.stop().await;
}

/// Item 7: tokens without `sub` do not share one HTTP rate bucket (one anonymous token's flood
/// does not throttle another), and channel names over `--max-channel-len` are counted.
#[tokio::test]
async fn anonymous_tokens_have_their_own_rate_and_long_channels_are_counted() {
    let relay = Relay::start(Config {
        key_publish_rate: 1,
        key_publish_burst: 1,
        max_channel_len: 16,
        ..hs_config()
    })
    .await;
    let mut anonymous = claims("x", 60, &["*"], &["*"]);
    anonymous.as_object_mut().expect("object").remove("sub");
    let event = json!({ "channel": "c", "type": "x" });
    anonymous["jti"] = json!("first");
    let first = hs(&anonymous);
    assert_eq!(post_publish(&relay, &first, &event).await.0, 200);
    assert_eq!(
        post_publish(&relay, &first, &event).await.0,
        429,
        "its own burst is spent"
    );
    anonymous["jti"] = json!("second");
    assert_eq!(
        post_publish(&relay, &hs(&anonymous), &event).await.0,
        200,
        "another anonymous token"
    );

    let long = "x".repeat(17);
    let (status, _) = post_publish(&relay, KEY, &json!({ "channel": long, "type": "x" })).await;
    assert_eq!(status, 400);
    let (mut client, _) = authed(&relay, &hs(&claims("u", 60, &["*"], &[]))).await;
    client
        .send_json(json!({ "op": "subscribe", "channels": [{ "channel": long }] }))
        .await;
    client.expect_error("bad_channel", "16").await;
    assert!(relay
        .metrics()
        .await
        .contains(r#"live_relay_limit_hits_total{limit="channel_len"} 2"#));
    relay.stop().await;
}

/// Item 10: a WebSocket publish does not stall its connection. A publisher subscribed to a busy
/// channel, on a node whose link to Redis is slow (300 ms each way), publishes five events back to
/// back on that channel: meanwhile the channel's events keep being delivered, the relay's pings
/// keep coming every 300 ms, and every publish is acknowledged, in order. (Before, each publish
/// held the connection's loop for its Redis round trips and the wait for its own event: no ping
/// and no read for its duration, and the client, whose pongs went unread, was closed as silent.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_does_not_stall_its_connection() {
    use common::fault_proxy::{FaultProxy, Mode};
    use common::redis::RedisServer;
    let redis = RedisServer::start();
    let proxy = FaultProxy::start(([127, 0, 0, 1], redis.port).into()).await;
    let node = Relay::start(Config {
        redis: Some(proxy.redis_url()),
        ping_ms: 300,
        ..Config::default()
    })
    .await;
    let mut client = node.client().await;
    client.subscribe(&["busy"]).await;
    proxy.set(Mode::Delay(Duration::from_millis(300)));

    // The channel is busy: another publisher on another node (straight to Redis), 50 events/s.
    let other = Relay::start(Config {
        redis: Some(redis.url()),
        ..Config::default()
    })
    .await;
    let other_addr = other.addr;
    let busy = tokio::spawn(async move {
        let other = Relay::at(other_addr);
        for n in 0..150 {
            let (status, _) = other
                .publish(json!({ "channel": "busy", "type": "updated", "payload": { "n": n } }))
                .await;
            assert_eq!(status, 200);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    for id in 0..5 {
        client
            .send_json(json!({ "op": "publish", "id": id, "channel": "busy", "type": "mine" }))
            .await;
    }
    let started = tokio::time::Instant::now();
    let mut acks = Vec::new();
    let mut pings = Vec::new();
    let mut events = 0;
    while acks.len() < 5 {
        let frame = tokio::time::timeout(PATIENCE, client.recv())
            .await
            .expect("the acks arrive");
        match frame["op"].as_str() {
            Some("ack") => acks.push(frame["id"].as_u64().expect("id")),
            Some("ping") => {
                pings.push(started.elapsed());
                client.send_json(json!({ "op": "pong" })).await;
            }
            Some("event") => events += 1,
            _ => panic!("unexpected {frame}"),
        }
    }
    let took = started.elapsed();
    println!(
        "publish stall: 5 publishes took {took:?}; {} pings, {events} events meanwhile",
        pings.len()
    );
    assert_eq!(acks, (0..5).collect::<Vec<_>>(), "acknowledged in order");
    assert!(
        took > Duration::from_millis(800),
        "the link is slow: {took:?}"
    );
    // Pings every 300 ms throughout (a publish holding the loop made gaps of its round trips).
    let mut last = Duration::ZERO;
    for at in &pings {
        assert!(
            *at - last < Duration::from_millis(450),
            "no ping between {last:?} and {at:?} (pings {pings:?}, took {took:?})"
        );
        last = *at;
    }
    assert!(
        took - last < Duration::from_millis(450),
        "pings {pings:?}, took {took:?}"
    );
    assert!(events > 0, "the busy channel's events kept coming");
    busy.abort();
    proxy.set(Mode::Pass);
    other.stop().await;
    node.stop().await;
}
