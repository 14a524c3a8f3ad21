//! Presence across relay nodes (issue 26): each node a `live-relay` process on one real Redis
//! (`redis-server` on a free loopback port), real WebSocket clients, nodes killed by their pid.
//! Figures (join and leave latency across nodes, the kill's outcome, who swept what) are printed
//! with `--nocapture`:
//!
//! `cargo test -p live-relay --test presence_cluster -- --nocapture --test-threads 1`

mod common;

use common::cluster::{cluster, Node};
use common::{Client, PATIENCE};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::{sleep, Instant};
use tokio_tungstenite::tungstenite::Message;

const CH: &str = "resources/posts";

fn key(name: &str) -> String {
    format!("{name:->16}")
}

async fn send_presence(client: &mut Client, frame: Value) {
    let mut frame = frame;
    frame["op"] = json!("presence");
    client.send_json(frame).await;
}

/// Sends a `join` as `key` for `user` (open mode: the user is said in the frame).
async fn join(client: &mut Client, id: u64, key: &str, user: &str) {
    let frame = json!({"id": id, "action": "join", "channel": CH, "key": key, "user": user,
                       "data": {"id": 3}, "info": {"name": user}});
    send_presence(client, frame).await;
}

/// The next presence frame before `deadline` (other frames skipped), or `None`.
async fn next_presence(client: &mut Client, deadline: Instant) -> Option<Value> {
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match client.next_within(left).await {
            None => return None,
            Some(Message::Text(text)) => {
                let frame: Value = serde_json::from_str(&text).expect("JSON");
                if frame["op"] == "presence" {
                    return Some(frame);
                }
                if frame["op"] == "ping" {
                    client.send_json(json!({"op": "pong"})).await;
                }
            }
            Some(_) => {}
        }
    }
}

/// The next presence frame, which must come within [`PATIENCE`].
async fn expect_presence(client: &mut Client, action: &str) -> Value {
    let frame = next_presence(client, Instant::now() + PATIENCE)
        .await
        .unwrap_or_else(|| panic!("no presence `{action}` within {PATIENCE:?}"));
    assert_eq!(frame["action"], action, "{frame}");
    frame
}

/// A watcher of `CH` on `node`, past its `sync`; returns it and the sync.
async fn watcher(node: &Node) -> (Client, Value) {
    let mut client = node.relay.client().await;
    send_presence(
        &mut client,
        json!({"id": 1, "action": "watch", "channel": CH}),
    )
    .await;
    let sync = expect_presence(&mut client, "sync").await;
    (client, sync)
}

/// A client joined as `key` on `node`, past its `sync`.
async fn member(node: &Node, key: &str, user: &str) -> (Client, Value) {
    let mut client = node.relay.client().await;
    join(&mut client, 1, key, user).await;
    let sync = expect_presence(&mut client, "sync").await;
    (client, sync)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[at - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

#[tokio::test]
async fn a_join_on_one_node_is_seen_on_the_other_within_250_ms_p99_and_a_leave_within_500_ms() {
    let (_redis, nodes, _) = cluster(2, &[]).await;
    let (mut watching, _) = watcher(&nodes[1]).await;
    let mut members = Vec::new();
    let mut joins = Vec::new();
    for i in 0..100 {
        let k = key(&format!("join{i}"));
        let mut client = nodes[0].relay.client().await;
        let sent = Instant::now();
        join(&mut client, 1, &k, &format!("user{i}")).await;
        let frame = expect_presence(&mut watching, "join").await;
        joins.push(sent.elapsed());
        assert_eq!(frame["member"]["key"], k, "{frame}");
        assert_eq!(frame["member"]["data"], json!({"id": 3}), "{frame}");
        members.push((client, k));
    }
    let mut leaves = Vec::new();
    for (mut client, k) in members.drain(..20) {
        let sent = Instant::now();
        send_presence(
            &mut client,
            json!({"id": 2, "action": "leave", "channel": CH}),
        )
        .await;
        let frame = expect_presence(&mut watching, "leave").await;
        leaves.push(sent.elapsed());
        assert_eq!(frame["key"], k, "{frame}");
    }
    joins.sort();
    leaves.sort();
    println!(
        "join on node A seen on node B, 100 joins: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&joins, 0.5)),
        ms(percentile(&joins, 0.99)),
        ms(percentile(&joins, 1.0))
    );
    println!(
        "explicit leave on node A seen on node B, 20 leaves: p50 {:.2} ms, max {:.2} ms",
        ms(percentile(&leaves, 0.5)),
        ms(percentile(&leaves, 1.0))
    );
    assert!(percentile(&joins, 0.99) <= Duration::from_millis(250));
    assert!(percentile(&joins, 1.0) <= Duration::from_millis(500));
    assert!(percentile(&leaves, 1.0) <= Duration::from_millis(500));
    // A fresh watcher on either node sees the 80 left.
    for node in &nodes {
        let (_, sync) = watcher(node).await;
        assert_eq!(sync["members"].as_array().map(Vec::len), Some(80));
    }
}

#[tokio::test]
async fn a_killed_nodes_members_resume_elsewhere_unannounced_and_the_others_leave_once_within_10_s()
{
    let (_redis, mut nodes, _) = cluster(2, &[]).await;
    let (mut watching, _) = watcher(&nodes[1]).await;
    // 50 members whose tabs will reconnect to node B, 10 whose tabs are closed meanwhile.
    let mut tabs = Vec::new();
    for i in 0..60 {
        let (client, _) = member(&nodes[0], &key(&format!("tab{i}")), &format!("user{i}")).await;
        tabs.push(client);
    }
    let mut joined = 0;
    while joined < 60 {
        expect_presence(&mut watching, "join").await;
        joined += 1;
    }
    // Let node A refresh them at least once.
    sleep(Duration::from_millis(2_500)).await;

    nodes[0].process.kill();
    let killed = Instant::now();
    drop(tabs);
    // The tabs notice and reconnect to node B (a client's backoff: say 300 ms), joining again
    // with their keys.
    sleep(Duration::from_millis(300)).await;
    let mut resumed = Vec::new();
    for i in 0..50 {
        let (client, sync) = member(&nodes[1], &key(&format!("tab{i}")), &format!("user{i}")).await;
        assert!(sync["members"].as_array().is_some(), "{sync}");
        resumed.push(client);
    }
    let all_resumed = killed.elapsed();

    // What the watcher sees for 10 s after the kill.
    let mut frames: Vec<(Duration, Value)> = Vec::new();
    let deadline = killed + Duration::from_secs(10);
    while let Some(frame) = next_presence(&mut watching, deadline).await {
        frames.push((killed.elapsed(), frame));
    }
    let mut leaves: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let mut others = Vec::new();
    for (at, frame) in &frames {
        match frame["action"].as_str() {
            Some("leave") => leaves
                .entry(frame["user"].as_str().unwrap_or_default().to_owned())
                .or_default()
                .push(*at),
            _ => others.push(frame.clone()),
        }
    }
    let last_leave = leaves.values().flatten().max().copied();
    println!(
        "node killed with 60 members: 50 resumed on the other node in {:.0} ms after the kill; \
         leaves seen: {} (users {:?}), last at {:?}; other presence frames: {}",
        ms(all_resumed),
        leaves.values().map(Vec::len).sum::<usize>(),
        leaves.keys().collect::<Vec<_>>(),
        last_leave,
        others.len()
    );
    assert!(others.is_empty(), "no join or update: {others:?}");
    let expected: Vec<String> = (50..60).map(|i| format!("user{i}")).collect();
    assert_eq!(
        leaves.keys().cloned().collect::<Vec<_>>(),
        expected,
        "0 leaves of the resumed users, one for each closed tab"
    );
    assert!(
        leaves.values().all(|at| at.len() == 1),
        "each announced once"
    );
    // Still: nothing more for a while (no late duplicate).
    let quiet = next_presence(&mut watching, Instant::now() + Duration::from_millis(1_500)).await;
    assert_eq!(quiet, None);
    let (_, sync) = watcher(&nodes[1]).await;
    assert_eq!(sync["members"].as_array().map(Vec::len), Some(50));
    drop(resumed);
}

#[tokio::test]
async fn two_nodes_sweeping_a_dead_nodes_members_announce_each_leave_once() {
    let (_redis, mut nodes, _) = cluster(3, &[]).await;
    let (mut on_a, _) = watcher(&nodes[0]).await;
    let (mut on_b, _) = watcher(&nodes[1]).await;
    let mut tabs = Vec::new();
    for i in 0..40 {
        let (client, _) = member(&nodes[2], &key(&format!("gone{i}")), &format!("user{i}")).await;
        tabs.push(client);
    }
    for watching in [&mut on_a, &mut on_b] {
        for _ in 0..40 {
            expect_presence(watching, "join").await;
        }
    }
    // Node C dies: nodes A and B both sweep (each every 250 ms) when its members expire.
    nodes[2].process.kill();
    let killed = Instant::now();
    drop(tabs);
    let deadline = killed + Duration::from_secs(10);
    let mut seen = Vec::new();
    for watching in [&mut on_a, &mut on_b] {
        let mut keys: BTreeMap<String, usize> = BTreeMap::new();
        let mut versions = Vec::new();
        while versions.len() < 40 {
            let Some(frame) = next_presence(watching, deadline).await else {
                break;
            };
            assert_eq!(frame["action"], "leave", "{frame}");
            *keys
                .entry(frame["key"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
            versions.push(frame["version"].as_u64().unwrap_or_default());
        }
        assert_eq!(keys.len(), 40, "every member left within 10 s");
        assert!(keys.values().all(|&n| n == 1), "each leave once: {keys:?}");
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "in version order: {versions:?}"
        );
        seen.push(versions);
    }
    let all_gone = killed.elapsed();
    for watching in [&mut on_a, &mut on_b] {
        let late = next_presence(watching, Instant::now() + Duration::from_millis(1_000)).await;
        assert_eq!(late, None, "no second leave");
    }
    assert_eq!(seen[0], seen[1], "both nodes' watchers saw the same diffs");
    let swept_a = nodes[0].counter("live_relay_presence_swept_total").await;
    let swept_b = nodes[1].counter("live_relay_presence_swept_total").await;
    println!(
        "a dead node's 40 members gone {:.1} s after the kill, swept {swept_a} by node A and \
         {swept_b} by node B, each announced once",
        all_gone.as_secs_f64()
    );
    assert_eq!(swept_a + swept_b, 40, "each removed by one sweep");
}

#[tokio::test]
async fn a_tab_that_moves_to_another_node_within_the_grace_period_is_announced_nowhere() {
    let (_redis, nodes, _) = cluster(2, &["--presence-grace-ms", "1500"]).await;
    let (mut on_a, _) = watcher(&nodes[0]).await;
    let (mut on_b, _) = watcher(&nodes[1]).await;
    let k = key("blip");
    let (tab, _) = member(&nodes[0], &k, "alice").await;
    for watching in [&mut on_a, &mut on_b] {
        expect_presence(watching, "join").await;
    }
    // A blip: the socket to node A is gone (no close frame), the tab is back on node B 300 ms later.
    drop(tab);
    sleep(Duration::from_millis(300)).await;
    let (_moved, sync) = member(&nodes[1], &k, "alice").await;
    let listed: Vec<&Value> = sync["members"]
        .as_array()
        .expect("members")
        .iter()
        .collect();
    assert_eq!(listed.len(), 1, "{sync}");
    assert_eq!(listed[0]["key"], k.as_str());
    // Past node A's grace period and a few sweeps: nothing at either watcher.
    let quiet_until = Instant::now() + Duration::from_millis(3_000);
    for watching in [&mut on_a, &mut on_b] {
        let frame = next_presence(watching, quiet_until).await;
        assert_eq!(frame, None, "a blip announces nothing");
    }
    let (_, sync) = watcher(&nodes[0]).await;
    assert_eq!(sync["members"].as_array().map(Vec::len), Some(1));
}
