//! Presence (docs/PROTOCOL.md, *Presence*; issue 26) end to end over WebSocket against the relay
//! in-process on loopback, with real WebSocket clients: joins seen by watchers (a `sync`, then
//! diffs with growing versions), updates, leaves (explicit: at once; a socket that ends: after the
//! grace period, unless resumed), several tabs of one user, identity from the token, the attacks
//! and limits of the wire contract, old clients and `--presence=false`.

mod common;

use common::tokens::{self, authed, hs, hs_config};
use common::{Client, Relay};
use live_relay::Config;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

const CH: &str = "resources/posts";

/// A presence key (16 characters or more).
fn key(name: &str) -> String {
    format!("{name:->16}")
}

/// An open relay whose members leave `grace_ms` after their socket ends.
async fn open_relay(grace_ms: u64) -> Relay {
    Relay::start(Config {
        presence_grace_ms: grace_ms,
        ..Config::default()
    })
    .await
}

async fn send_presence(client: &mut Client, frame: Value) {
    let mut frame = frame;
    frame["op"] = json!("presence");
    client.send_json(frame).await;
}

/// Sends a `join` as `key` (open mode: `user` said in the frame).
async fn join(client: &mut Client, id: u64, key: &str, user: &str, data: Value) {
    let frame = json!({"id": id, "action": "join", "channel": CH, "key": key, "user": user,
                       "data": data, "info": {"name": user}});
    send_presence(client, frame).await;
}

async fn watch(client: &mut Client, id: u64, channel: &str) {
    let frame = json!({"id": id, "action": "watch", "channel": channel});
    send_presence(client, frame).await;
}

/// The next frame, which must be a presence frame of `action`.
async fn expect_presence(client: &mut Client, action: &str) -> Value {
    let frame = client.recv_op("presence").await;
    assert_eq!(frame["action"], action, "{frame}");
    frame
}

/// The `closed` frame that follows a `join` or `watch` of `channel` refused for good with `code`
/// (the client's handles stop waiting for a `sync`).
async fn expect_closed(client: &mut Client, channel: &str, code: &str) {
    let frame = expect_presence(client, "closed").await;
    assert_eq!(
        (&frame["channel"], &frame["code"]),
        (&json!(channel), &json!(code)),
        "{frame}"
    );
}

/// The `sync` answering `id`.
async fn expect_sync(client: &mut Client, id: u64) -> Value {
    let frame = expect_presence(client, "sync").await;
    assert_eq!(frame["id"], id, "{frame}");
    assert_eq!(frame["channel"], CH, "{frame}");
    frame
}

fn version(frame: &Value) -> u64 {
    frame["version"].as_u64().expect("a version")
}

fn member_keys(sync: &Value) -> Vec<String> {
    let mut keys: Vec<String> = sync["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["key"].as_str().expect("key").to_owned())
        .collect();
    keys.sort();
    keys
}

/// A fresh watcher's view of the channel.
async fn members_now(relay: &Relay) -> Vec<String> {
    let mut look = relay.client().await;
    watch(&mut look, 99, CH).await;
    member_keys(&expect_sync(&mut look, 99).await)
}

/// Waits for the `leave` of `key`; how long it took.
async fn expect_leave_of(client: &mut Client, key: &str) -> Duration {
    let start = Instant::now();
    let frame = expect_presence(client, "leave").await;
    assert_eq!(frame["key"], key, "{frame}");
    start.elapsed()
}

/// Nothing but relay pings for `wait`.
async fn expect_no_presence(client: &mut Client, wait: Duration) {
    let end = Instant::now() + wait;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match client.next_within(left).await {
            None => return,
            Some(Message::Text(text)) => {
                let frame: Value = serde_json::from_str(&text).expect("JSON");
                assert!(
                    frame["op"] == "ping",
                    "expected no presence frame, got {frame}"
                );
            }
            Some(_) => {}
        }
    }
}

#[tokio::test]
async fn a_join_is_seen_by_a_watcher_as_a_sync_then_diffs_with_growing_versions() {
    let relay = open_relay(5_000).await;
    let mut watcher = relay.client().await;
    watch(&mut watcher, 1, CH).await;
    let sync = expect_sync(&mut watcher, 1).await;
    assert_eq!(sync["members"], json!([]), "{sync}");
    let v0 = version(&sync);

    let mut alice = relay.client().await;
    let k = key("alice");
    join(&mut alice, 7, &k, "42", json!({"id": 3, "mode": "edit"})).await;
    let own = expect_sync(&mut alice, 7).await;
    let m = &own["members"][0];
    assert_eq!(
        (&m["key"], &m["user"], &m["info"], &m["data"]),
        (
            &json!(k),
            &json!("42"),
            &json!({"name": "42"}),
            &json!({"id": 3, "mode": "edit"})
        ),
        "{own}"
    );
    let since = m["since"].as_u64().expect("since");
    let now_ms = tokens::now() as u64 * 1000;
    assert!(
        since + 10_000 > now_ms && since < now_ms + 10_000,
        "{since}"
    );

    let joined = expect_presence(&mut watcher, "join").await;
    assert_eq!(joined["member"]["key"], k, "{joined}");
    assert_eq!(joined["member"]["data"], json!({"id": 3, "mode": "edit"}));
    let v1 = version(&joined);
    assert!(v1 > v0, "{v1} > {v0}");
    assert!(version(&own) >= v1, "the joiner's sync includes its join");

    send_presence(
        &mut alice,
        json!({"id": 8, "action": "update", "channel": CH, "data": {"id": 3, "mode": "view"}}),
    )
    .await;
    let updated = expect_presence(&mut watcher, "update").await;
    assert_eq!(updated["member"]["data"], json!({"id": 3, "mode": "view"}));
    let v2 = version(&updated);
    assert!(v2 > v1);
    // The updater sees its own diff like anyone (an update is not answered otherwise).
    let echoed = expect_presence(&mut alice, "update").await;
    assert_eq!(version(&echoed), v2);

    send_presence(
        &mut alice,
        json!({"id": 9, "action": "leave", "channel": CH}),
    )
    .await;
    let took = expect_leave_of(&mut watcher, &k).await;
    assert!(
        took < Duration::from_millis(500),
        "an explicit leave is immediate: {took:?}"
    );
    // Alice stopped watching: she gets nothing of the channel any more.
    let mut bob = relay.client().await;
    join(&mut bob, 1, &key("bob"), "7", json!({})).await;
    expect_sync(&mut bob, 1).await;
    expect_presence(&mut watcher, "join").await;
    alice.assert_alive().await;
    relay.stop().await;
}

#[tokio::test]
async fn a_dropped_socket_stays_listed_for_the_grace_period_then_leaves_once() {
    let relay = open_relay(600).await;
    let mut watcher = relay.client().await;
    watch(&mut watcher, 1, CH).await;
    expect_sync(&mut watcher, 1).await;
    let mut alice = relay.client().await;
    let k = key("alice");
    join(&mut alice, 1, &k, "42", json!({})).await;
    expect_sync(&mut alice, 1).await;
    expect_presence(&mut watcher, "join").await;

    drop(alice);
    let dropped = Instant::now();
    sleep(Duration::from_millis(300)).await;
    assert_eq!(
        members_now(&relay).await,
        vec![k.clone()],
        "listed within the grace period"
    );
    expect_presence(&mut watcher, "leave").await;
    let took = dropped.elapsed();
    assert!(
        took >= Duration::from_millis(550) && took < Duration::from_millis(1_500),
        "gone after the grace period (600 ms) and a tick: {took:?}"
    );
    assert!(members_now(&relay).await.is_empty());
    expect_no_presence(&mut watcher, Duration::from_millis(500)).await;
    let metrics = relay.metrics().await;
    assert!(
        metrics.contains("live_relay_presence_swept_total 1"),
        "{metrics}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn a_socket_the_relay_closes_for_silence_also_gets_the_grace_period() {
    // Two ping intervals (2 × 200 ms) of silence close a connection; its member stays 800 ms more.
    let relay = Relay::start(Config {
        ping_ms: 200,
        presence_grace_ms: 800,
        ..Config::default()
    })
    .await;
    let mut watcher = relay.client().await;
    watch(&mut watcher, 1, CH).await;
    let mut silent = relay.client().await;
    let k = key("silent");
    join(&mut silent, 1, &k, "42", json!({})).await;
    expect_sync(&mut silent, 1).await;
    let joined = Instant::now();
    // The watcher keeps talking (so it stays) and collects what presence sends it.
    let mut seen = Vec::new();
    while joined.elapsed() < Duration::from_secs(4) {
        watcher.send(r#"{"op":"pong"}"#).await;
        if let Some(Message::Text(text)) = watcher.next_within(Duration::from_millis(50)).await {
            let frame: Value = serde_json::from_str(&text).expect("JSON");
            if frame["op"] == "presence" && frame["action"] != "sync" {
                seen.push((frame["action"].clone(), joined.elapsed()));
                if frame["action"] == "leave" {
                    break;
                }
            }
        }
    }
    let (action, at) = seen.last().cloned().expect("a leave");
    assert_eq!(action, "leave", "{seen:?}");
    assert!(
        at >= Duration::from_millis(1_150) && at < Duration::from_millis(2_500),
        "closed after ~400 ms of silence, then 800 ms of grace: {at:?}"
    );
    let (_, code) = silent.until_close_code().await;
    assert_eq!(code, Some(1008), "closed for silence");
    relay.stop().await;
}

#[tokio::test]
async fn a_closed_tab_is_listed_at_4_5_s_and_gone_by_7_s_with_the_default_grace() {
    let relay = Relay::default().await;
    let mut watcher = relay.client().await;
    watch(&mut watcher, 1, CH).await;
    expect_sync(&mut watcher, 1).await;
    let mut tab = relay.client().await;
    let k = key("tab");
    join(&mut tab, 1, &k, "42", json!({"id": 3})).await;
    expect_sync(&mut tab, 1).await;
    expect_presence(&mut watcher, "join").await;

    tab.ws.close(None).await.expect("close the tab");
    let closed = Instant::now();
    sleep(Duration::from_millis(4_500).saturating_sub(closed.elapsed())).await;
    assert_eq!(
        members_now(&relay).await,
        vec![k.clone()],
        "listed at 4.5 s"
    );
    let frame = timeout(
        Duration::from_millis(7_000).saturating_sub(closed.elapsed()),
        expect_presence(&mut watcher, "leave"),
    )
    .await
    .expect("gone by 7 s");
    assert_eq!(frame["key"], k);
    assert!(
        closed.elapsed() >= Duration::from_millis(4_900),
        "{:?}",
        closed.elapsed()
    );
    relay.stop().await;
}

#[tokio::test]
async fn a_resume_within_the_grace_period_on_a_new_connection_announces_nothing() {
    let relay = open_relay(1_500).await;
    let mut watcher = relay.client().await;
    watch(&mut watcher, 1, CH).await;
    expect_sync(&mut watcher, 1).await;
    let k = key("alice");
    let mut tab = relay.client().await;
    join(&mut tab, 1, &k, "42", json!({"id": 3})).await;
    expect_sync(&mut tab, 1).await;
    expect_presence(&mut watcher, "join").await;

    drop(tab); // a blip: the socket is gone without a close
    sleep(Duration::from_millis(300)).await;
    let mut again = relay.client().await;
    join(&mut again, 2, &k, "42", json!({"id": 3})).await;
    let sync = expect_sync(&mut again, 2).await;
    assert_eq!(member_keys(&sync), vec![k.clone()]);
    // Past the grace period of the first socket: still nothing at the watcher.
    expect_no_presence(&mut watcher, Duration::from_millis(2_000)).await;
    assert_eq!(members_now(&relay).await, vec![k.clone()]);
    let metrics = relay.metrics().await;
    assert!(
        metrics.contains("live_relay_presence_resumes_total 1"),
        "{metrics}"
    );

    // A resume with other data is one update, nothing else.
    drop(again);
    let mut third = relay.client().await;
    join(&mut third, 3, &k, "42", json!({"id": 4})).await;
    expect_sync(&mut third, 3).await;
    let updated = expect_presence(&mut watcher, "update").await;
    assert_eq!(updated["member"]["data"], json!({"id": 4}));
    expect_no_presence(&mut watcher, Duration::from_millis(2_000)).await;
    relay.stop().await;
}

#[tokio::test]
async fn two_tabs_of_one_user_are_two_members_and_closing_one_leaves_only_its_member() {
    let relay = open_relay(500).await;
    let mut watcher = relay.client().await;
    watch(&mut watcher, 1, CH).await;
    expect_sync(&mut watcher, 1).await;
    let (k1, k2) = (key("tab1"), key("tab2"));
    let mut tab1 = relay.client().await;
    let mut tab2 = relay.client().await;
    join(&mut tab1, 1, &k1, "alice", json!({})).await;
    expect_sync(&mut tab1, 1).await;
    join(&mut tab2, 1, &k2, "alice", json!({})).await;
    let sync = expect_sync(&mut tab2, 1).await;
    assert_eq!(member_keys(&sync), vec![k1.clone(), k2.clone()]);
    let users: Vec<&Value> = sync["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| &m["user"])
        .collect();
    assert_eq!(users, vec![&json!("alice"), &json!("alice")]);
    expect_presence(&mut watcher, "join").await;
    expect_presence(&mut watcher, "join").await;

    drop(tab1);
    expect_leave_of(&mut watcher, &k1).await;
    expect_no_presence(&mut watcher, Duration::from_millis(800)).await;
    assert_eq!(members_now(&relay).await, vec![k2]);
    relay.stop().await;
}

fn presence_auth_config() -> Config {
    Config {
        presence_grace_ms: 500,
        ..hs_config()
    }
}

/// Claims for `sub` allowed `channels`, with an `info` claim.
fn claims_with_info(sub: &str, channels: &[&str], info: Value) -> Value {
    let mut c = tokens::claims(sub, 600, channels, &[]);
    c["info"] = info;
    c
}

#[tokio::test]
async fn with_auth_the_user_and_info_are_the_tokens_and_a_channel_outside_channels_is_forbidden() {
    let relay = Relay::start(presence_auth_config()).await;
    let alice_token = hs(&claims_with_info(
        "alice",
        &["resources/*"],
        json!({"name": "Alice"}),
    ));
    let (mut watcher, _) = authed(&relay, &alice_token).await;
    watch(&mut watcher, 1, CH).await;
    expect_sync(&mut watcher, 1).await;

    // Mallory may not see or enter `secret/*`.
    let mallory_token = hs(&claims_with_info(
        "mallory",
        &["resources/*"],
        json!({"name": "Mallory"}),
    ));
    let (mut mallory, _) = authed(&relay, &mallory_token).await;
    let secret = json!({"id": 5, "action": "join", "channel": "secret/x", "key": key("m")});
    send_presence(&mut mallory, secret).await;
    let refused = mallory.expect_error("forbidden", "secret/x").await;
    assert_eq!(refused["id"], 5, "{refused}");
    assert!(
        refused.get("channel").is_none(),
        "not a subscription's refusal: {refused}"
    );
    expect_closed(&mut mallory, "secret/x", "forbidden").await;
    watch(&mut mallory, 6, "secret/x").await;
    assert_eq!(mallory.expect_error("forbidden", "secret/x").await["id"], 6);
    expect_closed(&mut mallory, "secret/x", "forbidden").await;
    let (mut insider, _) = authed(
        &relay,
        &hs(&claims_with_info("boss", &["secret/*"], json!({}))),
    )
    .await;
    watch(&mut insider, 1, "secret/x").await;
    let sync = insider.recv_op("presence").await;
    assert_eq!(sync["members"], json!([]), "mallory is invisible: {sync}");

    // The user and info the frame states are ignored.
    let k = key("mallory");
    let frame = json!({"id": 7, "action": "join", "channel": CH, "key": k, "user": "alice",
                       "info": {"name": "Alice", "admin": true}, "data": {"id": 1}});
    send_presence(&mut mallory, frame).await;
    let sync = expect_sync(&mut mallory, 7).await;
    assert_eq!(sync["members"][0]["user"], "mallory", "{sync}");
    assert_eq!(
        sync["members"][0]["info"],
        json!({"name": "Mallory"}),
        "{sync}"
    );
    let joined = expect_presence(&mut watcher, "join").await;
    assert_eq!(joined["member"]["user"], "mallory");

    // Another user's key is refused and changes nothing.
    let (mut alice, _) = authed(&relay, &alice_token).await;
    let frame = json!({"id": 8, "action": "join", "channel": CH, "key": k, "data": {}});
    send_presence(&mut alice, frame).await;
    assert_eq!(
        alice.expect_error("forbidden", "another user").await["id"],
        8
    );
    expect_closed(&mut alice, CH, "forbidden").await;
    expect_no_presence(&mut watcher, Duration::from_millis(300)).await;

    // A refreshed token that drops the channel ends mallory's presence there at once.
    let narrower = hs(&claims_with_info("mallory", &["other/*"], json!({})));
    mallory
        .send_json(json!({"op": "auth", "token": narrower}))
        .await;
    mallory.recv_op("authed").await;
    // Mallory's client is told: its handles stop showing a set it no longer sees.
    expect_closed(&mut mallory, CH, "forbidden").await;
    let took = expect_leave_of(&mut watcher, &k).await;
    assert!(took < Duration::from_millis(400), "{took:?}");
    let metrics = relay.metrics().await;
    assert!(
        metrics.contains(r#"live_relay_presence_refused_total{code="forbidden"} 3"#),
        "{metrics}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn a_token_without_sub_may_watch_but_not_join() {
    let relay = Relay::start(presence_auth_config()).await;
    let mut c = tokens::claims("x", 600, &["resources/*"], &[]);
    c.as_object_mut().expect("claims").remove("sub");
    let (mut anonymous, _) = authed(&relay, &hs(&c)).await;
    watch(&mut anonymous, 1, CH).await;
    expect_sync(&mut anonymous, 1).await;
    let frame = json!({"id": 2, "action": "join", "channel": CH, "key": key("anon")});
    send_presence(&mut anonymous, frame).await;
    assert_eq!(anonymous.expect_error("forbidden", "`sub`").await["id"], 2);
    // It still watches the channel: nothing is closed.
    anonymous.assert_alive().await;
    relay.stop().await;
}

#[tokio::test]
async fn a_token_whose_info_is_not_a_small_object_is_refused_naming_info_everywhere() {
    let relay = Relay::start(presence_auth_config()).await;
    let big = json!({"name": "x".repeat(1_100)});
    for (info, why) in [
        (json!("Alice"), "must be an object"),
        (json!(["Alice"]), "must be an object"),
        (json!(null), "must be an object"),
        (big, "at most 1024"),
    ] {
        let token = hs(&claims_with_info("alice", &["resources/*"], info.clone()));
        // WebSocket: `unauthorized`, then closed.
        let mut client = tokens::connect_with(&relay, Some(&token)).await;
        let (frames, code) = client.until_close_code().await;
        assert_eq!(code, Some(4001), "{info}: {frames:?}");
        let message = frames[0]["message"].as_str().expect("message");
        assert_eq!(frames[0]["code"], "unauthorized", "{info}");
        assert!(
            message.contains("`info`") && message.contains(why),
            "{message}"
        );
        // SSE ticket and HTTP publish: 401 naming it.
        for path in ["/sse/ticket", "/publish"] {
            let response = relay
                .http
                .post(relay.url(path))
                .bearer_auth(&token)
                .json(&json!({"channel": CH, "type": "t", "payload": {"ids": [1]}}))
                .send()
                .await
                .expect("POST");
            assert_eq!(response.status().as_u16(), 401, "{path} {info}");
            let body: Value = response.json().await.expect("JSON");
            let message = body["error"]["message"].as_str().expect("message");
            assert!(message.contains("`info`"), "{path}: {body}");
        }
    }
    let ok = hs(&claims_with_info(
        "alice",
        &["resources/*"],
        json!({"name": "Alice"}),
    ));
    authed(&relay, &ok).await;
    relay.stop().await;
}

#[tokio::test]
async fn a_full_set_refuses_the_next_join_and_sends_it_the_counts() {
    let relay = Relay::start(Config {
        presence_max_members: 2,
        ..Config::default()
    })
    .await;
    let mut a = relay.client().await;
    let mut b = relay.client().await;
    join(&mut a, 1, &key("a"), "alice", json!({})).await;
    expect_sync(&mut a, 1).await;
    join(&mut b, 1, &key("b"), "bob", json!({})).await;
    expect_sync(&mut b, 1).await;
    let mut c = relay.client().await;
    join(&mut c, 4, &key("c"), "carol", json!({})).await;
    let refused = c
        .expect_error("presence_full", "--presence-max-members")
        .await;
    assert_eq!(refused["id"], 4, "{refused}");
    let stats = expect_presence(&mut c, "stats").await;
    assert_eq!(
        (&stats["members"], &stats["users"]),
        (&json!(2), &json!(2)),
        "{stats}"
    );
    assert!(stats.get("version").is_none(), "{stats}");
    // Counts, not diffs: bob leaves, carol's next frame is `stats` again (at most once a second).
    send_presence(&mut b, json!({"id": 2, "action": "leave", "channel": CH})).await;
    let stats = expect_presence(&mut c, "stats").await;
    assert_eq!(stats["members"], 1, "{stats}");
    // There is room now: carol joins.
    join(&mut c, 5, &key("c"), "carol", json!({})).await;
    assert_eq!(member_keys(&expect_sync(&mut c, 5).await).len(), 2);
    relay.stop().await;
}

#[tokio::test]
async fn data_size_and_rate_and_channels_per_connection_are_limited_and_the_client_stays_served() {
    let relay = Relay::start(Config {
        presence_max_per_connection: 2,
        presence_max_data_bytes: 64,
        ..Config::default()
    })
    .await;
    let mut watcher = relay.client().await;
    watch(&mut watcher, 1, CH).await;
    expect_sync(&mut watcher, 1).await;
    let mut a = relay.client().await;
    let k = key("a");
    let big = json!({"note": "x".repeat(100)});
    join(&mut a, 1, &k, "alice", big.clone()).await;
    assert_eq!(a.expect_error("too_large", "64 bytes").await["id"], 1);
    expect_closed(&mut a, CH, "too_large").await;
    join(&mut a, 2, &k, "alice", json!({"n": 0})).await;
    expect_sync(&mut a, 2).await;
    expect_presence(&mut watcher, "join").await;
    let update =
        |n: u64| json!({"id": 10 + n, "action": "update", "channel": CH, "data": {"n": n}});
    send_presence(
        &mut a,
        json!({"id": 3, "action": "update", "channel": CH, "data": big}),
    )
    .await;
    assert_eq!(
        a.expect_error("too_large", "--presence-max-data-bytes")
            .await["id"],
        3
    );
    for n in 1..=5 {
        send_presence(&mut a, update(n)).await;
        expect_presence(&mut a, "update").await;
        assert_eq!(
            expect_presence(&mut watcher, "update").await["member"]["data"]["n"],
            n
        );
    }
    send_presence(&mut a, update(6)).await;
    assert_eq!(
        a.expect_error("rate_limited", "--presence-max-updates")
            .await["id"],
        16
    );
    expect_no_presence(&mut watcher, Duration::from_millis(300)).await;

    watch(&mut a, 20, "other/1").await;
    assert_eq!(a.recv_op("presence").await["id"], 20);
    watch(&mut a, 21, "other/2").await;
    let refused = a
        .expect_error("too_many_channels", "--presence-max-per-connection")
        .await;
    assert_eq!(refused["id"], 21);
    expect_closed(&mut a, "other/2", "too_many_channels").await;
    // Malformed and unknown frames: refused with their id, nothing else changes.
    send_presence(&mut a, json!({"id": 22, "action": "dance", "channel": CH})).await;
    assert_eq!(a.expect_error("bad_frame", "`action`").await["id"], 22);
    let frame = json!({"id": 23, "action": "update", "channel": "other/1", "data": {}});
    send_presence(&mut a, frame).await;
    assert_eq!(
        a.expect_error("bad_frame", "without having joined").await["id"],
        23
    );
    // Still served: pings, a leave that frees a slot, and a new watch.
    a.assert_alive().await;
    send_presence(
        &mut a,
        json!({"id": 24, "action": "leave", "channel": "other/1"}),
    )
    .await;
    watch(&mut a, 25, "other/2").await;
    assert_eq!(a.recv_op("presence").await["id"], 25);
    expect_no_presence(&mut watcher, Duration::from_millis(300)).await;
    let metrics = relay.metrics().await;
    for line in [
        r#"live_relay_presence_refused_total{code="too_large"} 2"#,
        r#"live_relay_presence_refused_total{code="rate_limited"} 1"#,
        r#"live_relay_presence_refused_total{code="too_many_channels"} 1"#,
        r#"live_relay_presence_events_total{action="update"} 5"#,
        r#"live_relay_presence_events_total{action="join"} 1"#,
        "live_relay_presence_members 1",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
    relay.stop().await;
}

#[tokio::test]
async fn a_connection_cycling_keys_is_rate_limited_and_open_mode_identity_is_bounded() {
    let relay = open_relay(500).await;
    let mut watcher = relay.client().await;
    watch(&mut watcher, 1, CH).await;
    expect_sync(&mut watcher, 1).await;
    let mut b = relay.client().await;
    for n in 0..5u64 {
        join(&mut b, n, &key(&format!("b{n}")), "bob", json!({})).await;
        expect_sync(&mut b, n).await;
        if n > 0 {
            expect_presence(&mut watcher, "leave").await;
        }
        expect_presence(&mut watcher, "join").await;
    }
    // A sixth member within 10 s: each key switch is a leave and a join for every watcher.
    join(&mut b, 5, &key("b5"), "bob", json!({})).await;
    let refused = b.expect_error("rate_limited", "new key").await;
    assert_eq!(refused["id"], 5, "{refused}");
    // Also after a leave; a join again with the key it holds is not a new member.
    join(&mut b, 6, &key("b4"), "bob", json!({})).await;
    expect_sync(&mut b, 6).await;
    send_presence(&mut b, json!({"id": 7, "action": "leave", "channel": CH})).await;
    expect_presence(&mut watcher, "leave").await;
    join(&mut b, 8, &key("b4"), "bob", json!({})).await;
    assert_eq!(b.expect_error("rate_limited", "new key").await["id"], 8);
    expect_no_presence(&mut watcher, Duration::from_millis(300)).await;

    // What an open-mode frame states of the user is bounded like the token's claim.
    let mut c = relay.client().await;
    let big = json!({"id": 1, "action": "join", "channel": CH, "key": key("c"),
                     "info": {"name": "x".repeat(1_100)}});
    send_presence(&mut c, big).await;
    assert_eq!(c.expect_error("too_large", "`info`").await["id"], 1);
    expect_closed(&mut c, CH, "too_large").await;
    let long = json!({"id": 2, "action": "join", "channel": CH, "key": key("c"),
                      "user": "u".repeat(300)});
    send_presence(&mut c, long).await;
    assert_eq!(c.expect_error("too_large", "`user`").await["id"], 2);
    expect_closed(&mut c, CH, "too_large").await;
    expect_no_presence(&mut watcher, Duration::from_millis(300)).await;
    relay.stop().await;
}

#[tokio::test]
async fn an_old_client_gets_no_presence_frame_and_reads_hello() {
    let relay = open_relay(500).await;
    let (mut old, hello) = relay.client_with_hello().await;
    assert_eq!(hello["features"], json!(["presence"]), "{hello}");
    assert!(
        live_protocol::frame::decode_server(&hello.to_string()).is_ok(),
        "the client's decoder reads {hello}"
    );
    old.subscribe(&[CH]).await;
    let mut other = relay.client().await;
    join(&mut other, 1, &key("o"), "u", json!({})).await;
    expect_sync(&mut other, 1).await;
    relay
        .publish(json!({"channel": CH, "type": "updated", "payload": {"ids": [1]}}))
        .await;
    assert_eq!(old.recv_op("event").await["seq"], 1);
    drop(other);
    expect_no_presence(&mut old, Duration::from_millis(1_000)).await;
    relay.stop().await;
}

#[tokio::test]
async fn presence_off_offers_no_feature_and_refuses_presence_frames() {
    let relay = Relay::start(Config {
        presence: false,
        ..Config::default()
    })
    .await;
    let (mut client, hello) = relay.client_with_hello().await;
    assert!(hello.get("features").is_none(), "{hello}");
    watch(&mut client, 3, CH).await;
    let refused = client.expect_error("bad_frame", "--presence=false").await;
    assert_eq!(refused["id"], 3);
    client.assert_alive().await;
    relay.stop().await;
}

#[tokio::test]
async fn a_connection_churning_watches_is_rate_limited_and_served_again_later() {
    let relay = open_relay(5_000).await;
    let mut watcher = relay.client().await;
    watch(&mut watcher, 1, CH).await;
    expect_sync(&mut watcher, 1).await;
    // 100 watch/leave frames at once on channels of their own (each watch a snapshot, and on a
    // cluster a Redis subscription): the first 32 are served, the others refused with their ids.
    let mut churn = relay.client().await;
    for n in 0..50u64 {
        let channel = format!("churn/{n}");
        watch(&mut churn, 2 * n, &channel).await;
        let leave = json!({"id": 2 * n + 1, "action": "leave", "channel": channel});
        send_presence(&mut churn, leave).await;
    }
    let (mut synced, mut refused) = (0, Vec::new());
    while synced + refused.len() < 16 + 68 {
        let Some(Message::Text(text)) = churn.next_within(Duration::from_secs(5)).await else {
            panic!("{synced} syncs and {} refusals only", refused.len());
        };
        let frame: Value = serde_json::from_str(&text).expect("JSON");
        match frame["op"].as_str() {
            Some("presence") => synced += 1,
            Some("error") => {
                assert_eq!(frame["code"], "rate_limited", "{frame}");
                let message = frame["message"].as_str().expect("a message");
                assert!(message.contains("presence frames"), "{frame}");
                refused.push(frame["id"].as_u64().expect("the frame's id"));
            }
            _ => {}
        }
    }
    assert_eq!(
        synced, 16,
        "32 frames at once: 16 watches answered (and 16 leaves done)"
    );
    assert_eq!(
        refused,
        (32..100).collect::<Vec<u64>>(),
        "each refusal names its frame"
    );
    let metrics = relay.metrics().await;
    let line = r#"live_relay_presence_refused_total{code="rate_limited"} 68"#;
    assert!(metrics.contains(line), "{line}\n{metrics}");
    // The other watcher saw none of it; a second later the connection is served again.
    expect_no_presence(&mut watcher, Duration::from_millis(200)).await;
    sleep(Duration::from_millis(1_100)).await;
    join(&mut churn, 500, &key("churner"), "carol", json!({})).await;
    expect_sync(&mut churn, 500).await;
    expect_presence(&mut watcher, "join").await;
    relay.stop().await;
}
