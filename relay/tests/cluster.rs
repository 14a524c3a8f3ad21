//! Relay nodes as one cluster over a real Redis (`redis-server` on a free loopback port, no
//! persistence): each node is a `live-relay` process, killed by its pid where a test says so.
//! Figures (lost, duplicated, resyncs, time to resume) are printed with `--nocapture`.

mod common;

use common::cluster::{cluster, Node};
use common::{Client, Relay, PATIENCE};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

fn since(channel: &str, epoch: &str, seq: u64) -> Value {
    json!({ "channel": channel, "since": { "epoch": epoch, "seq": seq } })
}

async fn subscribe(client: &mut Client, entries: Value) -> Value {
    client
        .send_json(json!({ "op": "subscribe", "channels": entries }))
        .await;
    client.recv_op("subscribed").await["channels"].clone()
}

/// Publishes `n` over HTTP on `node`, numbered in `payload.n`, each with a key.
async fn publish_numbered(relay: &Relay, channel: &str, from: u64, n: u64, every: Duration) {
    for i in from..from + n {
        let body = json!({
            "key": format!("{channel}-{i}"), "channel": channel, "type": "updated",
            "payload": { "ids": [i], "n": i }
        });
        let (status, answer) = relay.publish(body).await;
        assert_eq!(status, 200, "{answer}");
        if !every.is_zero() {
            sleep(every).await;
        }
    }
}

/// What a client saw of a numbered stream.
#[derive(Debug, Default)]
struct Tally {
    /// Per channel: the payload numbers received, in order.
    received: BTreeMap<String, Vec<u64>>,
    /// Per channel: the last seq received.
    seqs: BTreeMap<String, u64>,
}

impl Tally {
    fn take(&mut self, event: &Value) {
        let channel = event["channel"].as_str().expect("channel").to_owned();
        let seq = event["seq"].as_u64().expect("seq");
        let last = self.seqs.entry(channel.clone()).or_default();
        assert!(seq > *last, "seq {seq} after {last} on {channel}: {event}");
        *last = seq;
        let n = event["payload"]["n"].as_u64().expect("payload.n");
        self.received.entry(channel).or_default().push(n);
    }

    fn count(&self, channel: &str) -> usize {
        self.received.get(channel).map_or(0, Vec::len)
    }

    /// (lost, duplicated) of `channel` against 1..=n.
    fn check(&self, channel: &str, n: u64) -> (usize, usize) {
        let got = self.received.get(channel).cloned().unwrap_or_default();
        let mut unique = got.clone();
        unique.sort_unstable();
        unique.dedup();
        let lost = (1..=n).filter(|i| unique.binary_search(i).is_err()).count();
        (lost, got.len() - unique.len())
    }

    /// The `since` entries that resume every channel seen.
    fn resume(&self, epoch: &str) -> Value {
        Value::Array(
            self.seqs
                .iter()
                .map(|(channel, seq)| since(channel, epoch, *seq))
                .collect(),
        )
    }
}

/// Reads frames until the connection ends; events go to the tally. Returns the close code.
async fn read_until_gone(client: &mut Client, tally: &mut Tally) -> Option<u16> {
    loop {
        match timeout(PATIENCE, client.ws.next()).await {
            Err(_) => panic!("nothing from the relay for {PATIENCE:?}"),
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(&text).expect("JSON");
                if frame["op"] == "event" {
                    tally.take(&frame);
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(None | Some(Err(_))) => return None,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Reads events until `channel` has `n` of them.
async fn read_until(client: &mut Client, tally: &mut Tally, channels: &[&str], n: usize) {
    while channels.iter().any(|c| tally.count(c) < n) {
        let event = client.recv_op("event").await;
        tally.take(&event);
    }
}

#[tokio::test]
async fn a_client_on_one_node_gets_what_another_node_publishes_in_order() {
    let (_redis, nodes, _) = cluster(3, &[]).await;
    let (a, b, c) = (&nodes[0].relay, &nodes[1].relay, &nodes[2].relay);
    let (mut on_a, hello_a) = a.client_with_hello().await;
    let (_, hello_c) = c.client_with_hello().await;
    assert_eq!(
        hello_a["epoch"], hello_c["epoch"],
        "one epoch for the cluster"
    );
    on_a.subscribe(&["posts", "users"]).await;
    let mut on_c = c.client().await;
    on_c.subscribe(&["posts"]).await;

    tokio::join!(
        publish_numbered(b, "posts", 1, 200, Duration::ZERO),
        publish_numbered(c, "users", 1, 50, Duration::ZERO),
    );
    let mut tally = Tally::default();
    read_until(&mut on_a, &mut tally, &["posts"], 200).await;
    read_until(&mut on_a, &mut tally, &["users"], 50).await;
    assert_eq!(tally.check("posts", 200), (0, 0));
    assert_eq!(tally.check("users", 50), (0, 0));
    assert_eq!(
        tally.received["posts"],
        (1..=200).collect::<Vec<_>>(),
        "in order"
    );
    assert_eq!(
        tally.seqs["posts"], 200,
        "seq counted by Redis, once per event"
    );
    let mut on_c_tally = Tally::default();
    read_until(&mut on_c, &mut on_c_tally, &["posts"], 200).await;
    assert_eq!(on_c_tally.received["posts"], (1..=200).collect::<Vec<_>>());

    // A key resent to another node is not published twice.
    let body =
        json!({ "key": "posts-7", "channel": "posts", "type": "updated", "payload": { "n": 7 } });
    for node in [a, c] {
        let (status, answer) = node.publish(body.clone()).await;
        assert_eq!(
            (status, answer),
            (200, json!({ "channel": "posts", "seq": 7 }))
        );
    }
    on_a.expect_silence().await;

    // `/stats/channels` counts every node's subscribers.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, stats) = b.get_json("/stats/channels").await;
        assert_eq!(status, 200, "{stats}");
        let want = json!({
            "posts": { "subscribers": 2, "last_seq": 200 },
            "users": { "subscribers": 1, "last_seq": 50 },
        });
        if stats == want {
            break;
        }
        assert!(Instant::now() < deadline, "stats never added up: {stats}");
        sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn scopes_and_revalidations_cross_nodes() {
    let (_redis, nodes, _) = cluster(2, &[]).await;
    let (a, b) = (&nodes[0].relay, &nodes[1].relay);
    let mut staff = a.scoped_client("staff").await;
    let mut other = a.scoped_client("guest").await;
    staff.subscribe(&["orders", "$revalidate"]).await;
    other.subscribe(&["orders"]).await;
    let (status, _) = b
        .publish(json!({ "channel": "orders", "type": "updated", "payload": { "ids": [1] }, "scopes": ["staff"] }))
        .await;
    assert_eq!(status, 200);
    let event = staff.recv().await;
    assert_eq!(
        (event["op"].as_str(), event["seq"].as_u64()),
        (Some("event"), Some(1)),
        "{event}"
    );
    let skip = other.recv().await;
    assert_eq!(skip, json!({ "op": "skip", "channel": "orders", "seq": 1 }));
    let (status, answer) = b.revalidate(json!({ "keys": [["posts"]] })).await;
    assert_eq!(status, 200, "{answer}");
    let revalidation = staff.recv_op("event").await;
    assert_eq!(revalidation["channel"], "$revalidate", "{revalidation}");
}

#[tokio::test]
async fn a_client_whose_node_dies_resumes_on_another_with_nothing_lost() {
    let (_redis, mut nodes, _) = cluster(3, &[]).await;
    let (mut client, hello) = nodes[0].relay.client_with_hello().await;
    let epoch = hello["epoch"].as_str().expect("epoch").to_owned();
    client.subscribe(&["posts", "comments"]).await;

    const N: u64 = 300;
    let publisher = Relay::at(nodes[1].relay.addr);
    let publishing = tokio::spawn(async move {
        tokio::join!(
            publish_numbered(&publisher, "posts", 1, N, Duration::from_millis(3)),
            publish_numbered(&publisher, "comments", 1, N, Duration::from_millis(3)),
        );
    });
    let mut tally = Tally::default();
    read_until(&mut client, &mut tally, &["posts", "comments"], 100).await;
    let killed = Instant::now();
    nodes[0].kill();
    let code = read_until_gone(&mut client, &mut tally).await;
    assert_eq!(code, None, "a killed node sends no close frame");

    let (mut client, hello) = nodes[2].relay.client_with_hello().await;
    assert_eq!(
        hello["epoch"],
        epoch.as_str(),
        "node C announces the same epoch"
    );
    let answer = subscribe(&mut client, tally.resume(&epoch)).await;
    let resyncs = answer
        .as_array()
        .expect("channels")
        .iter()
        .filter(|c| c["recovered"] != true)
        .count();
    let first = client.recv_op("event").await;
    let resumed_after = killed.elapsed();
    tally.take(&first);
    read_until(&mut client, &mut tally, &["posts", "comments"], N as usize).await;
    publishing.await.expect("publisher");
    client.expect_silence().await;
    let (lost_p, dup_p) = tally.check("posts", N);
    let (lost_c, dup_c) = tally.check("comments", N);
    println!(
        "[failover] node A killed after 100+ events of {N} per channel (2 channels): \
         lost {} duplicated {} resyncs {resyncs}, resumed on node C {} ms after the kill",
        lost_p + lost_c,
        dup_p + dup_c,
        resumed_after.as_millis()
    );
    assert_eq!((lost_p, dup_p, lost_c, dup_c, resyncs), (0, 0, 0, 0, 0));
    assert_eq!(tally.received["posts"], (1..=N).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_restarted_node_keeps_the_epoch() {
    let (redis, mut nodes, prefix) = cluster(1, &[]).await;
    let epoch = nodes[0].relay.epoch().await;
    publish_numbered(&nodes[0].relay, "c", 1, 3, Duration::ZERO).await;
    nodes[0].kill();
    let again = Node::start(&redis.url(), &prefix, &[]);
    again.wait_status("ok").await;
    let (mut client, hello) = again.relay.client_with_hello().await;
    assert_eq!(hello["epoch"], epoch.as_str(), "the epoch is kept in Redis");
    let answer = subscribe(&mut client, json!([since("c", &epoch, 1)])).await;
    assert_eq!(
        answer,
        json!([{ "channel": "c", "seq": 3, "recovered": true }])
    );
    let mut tally = Tally::default();
    read_until(&mut client, &mut tally, &["c"], 2).await;
    assert_eq!(tally.received["c"], [2, 3]);
}

#[tokio::test]
async fn redis_lost_and_back_empty_means_one_resync_per_subscription() {
    let (mut redis, nodes, _) = cluster(2, &[]).await;
    let (a, b) = (&nodes[0].relay, &nodes[1].relay);
    let (mut client, hello) = a.client_with_hello().await;
    let epoch = hello["epoch"].as_str().expect("epoch").to_owned();
    client.subscribe(&["posts", "comments"]).await;
    publish_numbered(b, "posts", 1, 20, Duration::ZERO).await;
    publish_numbered(b, "comments", 1, 20, Duration::ZERO).await;
    let mut tally = Tally::default();
    read_until(&mut client, &mut tally, &["posts", "comments"], 20).await;

    redis.kill();
    // Connected clients are told, and closed with 1013 (try again later).
    let (frames, code) = client.until_close_code().await;
    assert_eq!(code, Some(1013), "{frames:?}");
    assert!(
        frames
            .iter()
            .any(|f| f["op"] == "error" && f["code"] == "unavailable"),
        "{frames:?}"
    );
    // Publishes fail fast with 503 and the reason; health says so; new connections are refused.
    let started = Instant::now();
    let (status, answer) = b
        .publish(json!({ "channel": "posts", "type": "updated" }))
        .await;
    let failed_in = started.elapsed();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "unavailable", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Redis"),
        "{answer}"
    );
    assert!(
        failed_in < Duration::from_secs(3),
        "failed in {failed_in:?}"
    );
    let health = nodes[0].wait_status("unavailable").await;
    assert!(
        health["reason"].as_str().unwrap_or("").contains("Redis"),
        "{health}"
    );
    let upgrade = a.http.get(a.url("/ws")).send().await.expect("GET /ws");
    assert_eq!(upgrade.status().as_u16(), 503);

    redis.restart();
    let back = Instant::now();
    for node in &nodes {
        node.wait_status("ok").await;
    }
    let recovered_in = back.elapsed();
    let (mut client, hello) = a.client_with_hello().await;
    let new_epoch = hello["epoch"].as_str().expect("epoch").to_owned();
    assert_ne!(new_epoch, epoch, "Redis lost its data: a new epoch");
    let answer = subscribe(&mut client, tally.resume(&epoch)).await;
    assert_eq!(
        answer,
        json!([
            { "channel": "comments", "seq": 0, "recovered": false },
            { "channel": "posts", "seq": 0, "recovered": false },
        ]),
        "exactly one resync per subscription"
    );
    publish_numbered(b, "posts", 21, 10, Duration::ZERO).await;
    let mut after = Tally::default();
    read_until(&mut client, &mut after, &["posts"], 10).await;
    assert_eq!(
        after.seqs["posts"], 10,
        "numbering starts again in the new epoch"
    );
    assert_eq!(after.received["posts"], (21..=30).collect::<Vec<_>>());
    println!(
        "[redis restart] publish refused in {} ms while down; nodes back {} ms after Redis; \
         2 subscriptions, 2 resyncs",
        failed_in.as_millis(),
        recovered_in.as_millis()
    );
}

#[tokio::test]
async fn a_relay_without_its_redis_refuses_to_start() {
    let port = common::redis::free_port();
    let output = Command::new(env!("CARGO_BIN_EXE_live-relay"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--redis",
            &format!("redis://127.0.0.1:{port}"),
        ])
        .env("RUST_LOG", "off")
        .output()
        .expect("run live-relay");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot connect to Redis at redis://127.0.0.1"),
        "{stderr}"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_live-relay"))
        .args(["--redis", "http://x"])
        .output()
        .expect("run live-relay");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("expected a Redis URL"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn an_sse_ticket_issued_by_one_node_opens_a_stream_on_another_once() {
    const SECRET: &str = "0123456789abcdef0123456789abcdef-cluster-secret";
    let (_redis, nodes, _) = cluster(2, &["--jwt-secret", SECRET]).await;
    let (a, b) = (&nodes[0].relay, &nodes[1].relay);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 600;
    let claims = json!({ "sub": "u1", "exp": exp, "channels": ["posts"] });
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign");
    let ticket = a.ticket(&token).await;
    let mut stream = b.sse(&format!("channels=posts&ticket={ticket}")).await;
    let retry = stream.block().await;
    assert_eq!(retry.retry.as_deref(), Some("1000"));
    stream.recv_op("hello").await;
    let (_, authed) = stream.recv_op("authed").await;
    assert_eq!(authed["sub"], "u1", "{authed}");
    let (_, subscribed) = stream.recv_op("subscribed").await;
    assert_eq!(
        subscribed["channels"][0]["channel"], "posts",
        "{subscribed}"
    );
    let again = b
        .http
        .get(b.url(&format!("/sse?channels=posts&ticket={ticket}")))
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(again.status().as_u16(), 401, "a ticket opens one stream");
    let elsewhere = a
        .http
        .get(a.url(&format!("/sse?channels=posts&ticket={ticket}")))
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(elsewhere.status().as_u16(), 401, "on any node");
}
