//! The cluster under network faults (issue 23): a fault proxy (`common::fault_proxy`) between
//! node A and a real `redis-server`, node B straight to it. A publisher sends a numbered stream,
//! alternately through B and through A, with a key per number: a `503` is never sent again (it
//! must mean "not published"), an outcome-unknown `504` is sent again with the same key, through
//! B, until it is answered. Clients written to the protocol, homed on A and on B, fail over to the
//! other node whenever their connection ends and resume with `since`.
//!
//! For every scenario, every client must receive every number answered `200` exactly once, in seq
//! order, with no `recovered: false`; no number answered `503` ever appears; node A counts at
//! most one outage per fault, and its clients are told within 3 s of a partition. Figures are
//! printed with `--nocapture` (docs/SCALING.md's failure table).

mod common;

use common::fault_proxy::{FaultProxy, Mode};
use common::redis::RedisServer;
use common::{Relay, PATIENCE};
use futures_util::{SinkExt, StreamExt};
use live_relay::Config;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

const CHANNEL: &str = "stream";
/// One number every this long.
const PUBLISH_EVERY: Duration = Duration::from_millis(25);

/// Node A (behind the proxy), node B, their Redis and the proxy.
struct Cluster {
    _redis: RedisServer,
    proxy: FaultProxy,
    a: Relay,
    b: Relay,
    started: Instant,
}

impl Cluster {
    async fn start() -> Cluster {
        let redis = RedisServer::start();
        let proxy = FaultProxy::start(([127, 0, 0, 1], redis.port).into()).await;
        let node = |url: String| Config {
            redis: Some(url),
            ping_ms: 1000,
            ..Config::default()
        };
        let a = Relay::start(node(proxy.redis_url())).await;
        let b = Relay::start(node(redis.url())).await;
        Cluster {
            _redis: redis,
            proxy,
            a,
            b,
            started: Instant::now(),
        }
    }

    /// Milliseconds since the cluster started: the clock of the events' `t`.
    fn ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn outages_of_a(&self) -> u64 {
        let metrics = self.a.metrics().await;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("live_relay_redis_outages "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    }

    async fn wait_healthy(&self, relay: &Relay) {
        let deadline = Instant::now() + PATIENCE * 2;
        loop {
            let ok = relay
                .http
                .get(relay.url("/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "{} never healthy", relay.addr);
            sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What the publisher learnt: the numbers published (answered 200, perhaps after resends), and
/// those refused with 503 (never sent again).
#[derive(Debug, Default)]
struct Published {
    ok: BTreeSet<u64>,
    refused: BTreeSet<u64>,
    unknown: u64,
    sent_via_a: u64,
}

/// Publishes numbers until `stop`, alternately through B (even) and A (odd).
fn publisher(cluster: &Arc<Cluster>, stop: Arc<tokio::sync::Notify>) -> JoinHandle<Published> {
    let cluster = Arc::clone(cluster);
    tokio::spawn(async move {
        let mut book = Published::default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a client");
        let post = |relay: &Relay, n: u64, t: u64| {
            let request = http.post(relay.url("/publish")).json(&json!({
                "channel": CHANNEL, "type": "updated", "key": format!("n-{n}"),
                "payload": { "n": n, "t": t },
            }));
            async move {
                match request.send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                }
            }
        };
        let mut n = 0;
        loop {
            let stopped = stop.notified();
            tokio::pin!(stopped);
            stopped.as_mut().enable();
            n += 1;
            let via_a = n % 2 == 1;
            book.sent_via_a += u64::from(via_a);
            let node = if via_a { &cluster.a } else { &cluster.b };
            let mut status = post(node, n, cluster.ms()).await;
            if status == 504 {
                book.unknown += 1;
                // Outcome unknown: sent again with its key (through B) until it is answered.
                while status != 200 {
                    sleep(Duration::from_millis(100)).await;
                    status = post(&cluster.b, n, cluster.ms()).await;
                }
            }
            match status {
                200 => {
                    book.ok.insert(n);
                }
                503 => {
                    book.refused.insert(n);
                }
                other => panic!("publish {n}: HTTP {other}"),
            }
            tokio::select! {
                _ = &mut stopped => return book,
                _ = sleep(PUBLISH_EVERY) => {}
            }
        }
    })
}

/// What one client saw.
#[derive(Debug, Default)]
struct Seen {
    /// The numbers received, in order, each with its delivery latency (ms) and the node.
    numbers: Vec<(u64, u64, char)>,
    seqs: Vec<u64>,
    resyncs: u64,
    /// When a connection to A ended with a close code, ms on the cluster clock, and the code.
    closes_on_a: Vec<(u64, Option<u16>)>,
    connections: u64,
}

/// A client homed on `home` ('a' or 'b') that fails over to the other node whenever its
/// connection ends, resuming with `since`; `moves` asks it to drop its connection and go to
/// the given node (the scenario of a client moving onto the cut-off node).
fn client(
    cluster: &Arc<Cluster>,
    home: char,
    seen: Arc<Mutex<Seen>>,
    moves: Arc<Mutex<Option<char>>>,
) -> JoinHandle<()> {
    let cluster = Arc::clone(cluster);
    tokio::spawn(async move {
        let mut node = home;
        let mut position: Option<(String, u64)> = None;
        loop {
            let relay = if node == 'a' { &cluster.a } else { &cluster.b };
            let url = format!("ws://{}/ws", relay.addr);
            let mut request =
                tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
                    .expect("a request");
            request.headers_mut().insert(
                "sec-websocket-protocol",
                "wlp.v1".parse().expect("a header"),
            );
            let Ok((mut ws, _)) = tokio_tungstenite::connect_async(request).await else {
                // Refused (503 while A is down): the other node.
                node = if node == 'a' { 'b' } else { 'a' };
                sleep(Duration::from_millis(50)).await;
                continue;
            };
            seen.lock().expect("lock").connections += 1;
            let entry = match &position {
                Some((epoch, seq)) => {
                    json!({ "channel": CHANNEL, "since": { "epoch": epoch, "seq": seq } })
                }
                None => json!({ "channel": CHANNEL }),
            };
            let subscribe = json!({ "op": "subscribe", "channels": [entry] }).to_string();
            let mut epoch = String::new();
            let mut code = None;
            let mut sent = false;
            let mut moved = false;
            loop {
                if let Some(to) = moves.lock().expect("lock").take() {
                    node = to;
                    moved = true;
                    break;
                }
                let frame = match timeout(Duration::from_millis(100), ws.next()).await {
                    Err(_) => continue,
                    Ok(Some(Ok(Message::Text(text)))) => {
                        serde_json::from_str::<Value>(&text).expect("JSON")
                    }
                    Ok(Some(Ok(Message::Close(frame)))) => {
                        code = frame.map(|f| u16::from(f.code));
                        break;
                    }
                    Ok(Some(Ok(_))) => continue,
                    Ok(None | Some(Err(_))) => break,
                };
                match frame["op"].as_str() {
                    Some("hello") => {
                        epoch = frame["epoch"].as_str().unwrap_or_default().to_owned();
                        if !sent {
                            sent = true;
                            if ws.send(Message::text(subscribe.as_str())).await.is_err() {
                                break;
                            }
                        }
                    }
                    Some("ping") => {
                        let _ = ws.send(Message::text(r#"{"op":"pong"}"#)).await;
                    }
                    Some("subscribed") => {
                        let answer = &frame["channels"][0];
                        if answer["recovered"] == false {
                            seen.lock().expect("lock").resyncs += 1;
                        }
                        let seq = answer["seq"].as_u64().unwrap_or(0);
                        if position.is_none() || answer["recovered"] == false {
                            position = Some((epoch.clone(), seq));
                        }
                    }
                    Some("event") => {
                        let seq = frame["seq"].as_u64().expect("seq");
                        let n = frame["payload"]["n"].as_u64().expect("n");
                        let t = frame["payload"]["t"].as_u64().expect("t");
                        let latency = cluster.ms().saturating_sub(t);
                        let mut seen = seen.lock().expect("lock");
                        seen.numbers.push((n, latency, node));
                        seen.seqs.push(seq);
                        position = Some((epoch.clone(), seq));
                    }
                    _ => {}
                }
            }
            if moved {
                continue;
            }
            if node == 'a' {
                seen.lock()
                    .expect("lock")
                    .closes_on_a
                    .push((cluster.ms(), code));
            }
            // Fail over to the other node.
            node = if node == 'a' { 'b' } else { 'a' };
            sleep(Duration::from_millis(50)).await;
        }
    })
}

/// One scenario's figures.
#[derive(Debug)]
#[allow(dead_code)] // printed
struct Figures {
    published: usize,
    refused: usize,
    unknown: u64,
    lost: usize,
    duplicated: usize,
    resyncs: u64,
    outages: u64,
    told_within_ms: Option<u64>,
    /// Delivery latency on A of the events published through B (ms).
    p50_ms_on_a: u64,
    p99_ms_on_a: u64,
}

/// Runs a scenario: the stream and four clients (two homed on each node), `fault` applied after
/// 1 s of calm; when it returns, 2 s more of stream, then every client must catch up.
async fn scenario<F, Fut>(name: &str, fault: F) -> Figures
where
    F: FnOnce(Arc<Cluster>, Vec<Arc<Mutex<Option<char>>>>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let cluster = Arc::new(Cluster::start().await);
    let outages_before = cluster.outages_of_a().await;
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut seens = Vec::new();
    let mut moves = Vec::new();
    let mut clients = Vec::new();
    for home in ['a', 'a', 'b', 'b'] {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mv = Arc::new(Mutex::new(None));
        clients.push(client(&cluster, home, Arc::clone(&seen), Arc::clone(&mv)));
        seens.push(seen);
        moves.push(mv);
    }
    sleep(Duration::from_millis(500)).await;
    let stream = publisher(&cluster, Arc::clone(&stop));
    sleep(Duration::from_secs(1)).await;
    let fault_at = cluster.ms();
    fault(Arc::clone(&cluster), moves).await;
    cluster.proxy.set(Mode::Pass);
    cluster.wait_healthy(&cluster.a).await;
    sleep(Duration::from_secs(2)).await;
    stop.notify_one();
    let book = stream.await.expect("the publisher");
    // Every client catches up with everything published.
    let deadline = Instant::now() + PATIENCE * 2;
    loop {
        let behind = seens.iter().any(|s| {
            let seen = s.lock().expect("lock");
            let got: BTreeSet<u64> = seen.numbers.iter().map(|(n, _, _)| *n).collect();
            !book.ok.is_subset(&got)
        });
        if !behind || Instant::now() > deadline {
            break;
        }
        sleep(Duration::from_millis(50)).await;
    }
    sleep(Duration::from_millis(300)).await;
    for c in &clients {
        c.abort();
    }
    let outages = cluster.outages_of_a().await - outages_before;
    let (mut lost, mut duplicated, mut resyncs) = (0, 0, 0);
    let mut told: Option<u64> = None;
    let mut latencies = Vec::new();
    for (i, seen) in seens.iter().enumerate() {
        let seen = seen.lock().expect("lock");
        let numbers: Vec<u64> = seen.numbers.iter().map(|(n, _, _)| *n).collect();
        let unique: BTreeSet<u64> = numbers.iter().copied().collect();
        let appeared_refused: Vec<&u64> = book.refused.intersection(&unique).collect();
        assert!(
            appeared_refused.is_empty(),
            "{name}: client {i} received numbers answered 503: {appeared_refused:?}"
        );
        lost += book.ok.difference(&unique).count();
        duplicated += numbers.len() - unique.len();
        resyncs += seen.resyncs;
        assert!(
            seen.seqs.windows(2).all(|w| w[0] < w[1]),
            "{name}: client {i}: seqs out of order"
        );
        if i < 2 {
            if let Some((at, _)) = seen.closes_on_a.iter().find(|(at, _)| *at >= fault_at) {
                let after = at - fault_at;
                told = Some(told.map_or(after, |t| t.max(after)));
            }
        }
        // Delivery through the link from Redis: events published through B (even numbers),
        // received on A. (Those published through A cross the link twice by design.)
        latencies.extend(
            seen.numbers
                .iter()
                .filter(|(n, _, node)| *node == 'a' && n % 2 == 0)
                .map(|(_, ms, _)| *ms),
        );
    }
    latencies.sort_unstable();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let figures = Figures {
        published: book.ok.len(),
        refused: book.refused.len(),
        unknown: book.unknown,
        lost,
        duplicated,
        resyncs,
        outages,
        told_within_ms: told,
        p50_ms_on_a: pick(0.5),
        p99_ms_on_a: pick(0.99),
    };
    println!("network fault `{name}`: {figures:?}");
    assert_eq!(
        (figures.lost, figures.duplicated, figures.resyncs),
        (0, 0, 0),
        "{name}: lost, duplicated, resyncs: {figures:?}"
    );
    assert!(figures.published > 50, "{name}: {figures:?}");
    figures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5_s_partition() {
    let figures = scenario("5 s partition", |cluster, _| async move {
        cluster.proxy.set(Mode::BlackHole);
        sleep(Duration::from_secs(5)).await;
    })
    .await;
    assert_eq!(figures.outages, 1, "{figures:?}");
    let told = figures.told_within_ms.expect("A's clients were told");
    assert!(told <= 3000, "told after {told} ms: {figures:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_s_partition() {
    let figures = scenario("30 s partition", |cluster, _| async move {
        cluster.proxy.set(Mode::BlackHole);
        sleep(Duration::from_secs(30)).await;
    })
    .await;
    assert_eq!(figures.outages, 1, "{figures:?}");
    let told = figures.told_within_ms.expect("A's clients were told");
    assert!(told <= 3000, "told after {told} ms: {figures:?}");
}

/// Slower than the command timeout (2 s): publishes through A time out while their scripts are
/// still on the way, and run when the link delivers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_slower_than_the_command_timeout() {
    let figures = scenario(
        "link slower than the command timeout",
        |cluster, _| async move {
            cluster.proxy.set(Mode::Delay(Duration::from_millis(2700)));
            sleep(Duration::from_secs(6)).await;
        },
    )
    .await;
    assert!(figures.outages >= 1, "{figures:?}");
}

/// 300 ms added each way: the node stays up and its clients' events arrive within the added
/// latency plus 50 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_ms_slow_link() {
    let figures = scenario("300 ms slow link", |cluster, _| async move {
        cluster.proxy.set(Mode::Delay(Duration::from_millis(300)));
        sleep(Duration::from_secs(5)).await;
    })
    .await;
    assert_eq!(figures.outages, 0, "{figures:?}");
    assert!(figures.p99_ms_on_a <= 350, "{figures:?}");
}

/// Only the node → Redis direction slow: events from Redis reach A's clients at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_slow_towards_redis_only() {
    let figures = scenario("300 ms slow towards Redis only", |cluster, _| async move {
        cluster
            .proxy
            .set(Mode::DelayToTarget(Duration::from_millis(300)));
        sleep(Duration::from_secs(5)).await;
    })
    .await;
    assert_eq!(figures.outages, 0, "{figures:?}");
    assert!(figures.p99_ms_on_a <= 50, "{figures:?}");
}

/// 1 s off, 1 s on, ten times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_link() {
    let figures = scenario(
        "flapping (1 s off / 1 s on, x10)",
        |cluster, _| async move {
            for _ in 0..10 {
                cluster.proxy.set(Mode::BlackHole);
                sleep(Duration::from_secs(1)).await;
                cluster.proxy.set(Mode::Pass);
                sleep(Duration::from_secs(1)).await;
            }
        },
    )
    .await;
    assert!(figures.outages <= 10, "{figures:?}");
}

/// A client of B moves onto A just after A's link went silent (A has not noticed yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moving_onto_the_cut_off_node() {
    let figures = scenario(
        "client moving onto the cut-off node",
        |cluster, moves| async move {
            cluster.proxy.set(Mode::BlackHole);
            sleep(Duration::from_millis(200)).await;
            for mv in &moves[2..] {
                *mv.lock().expect("lock") = Some('a');
            }
            sleep(Duration::from_secs(5)).await;
        },
    )
    .await;
    assert_eq!(figures.outages, 1, "{figures:?}");
}

/// A NAT or firewall forgets the open flows: they go silent, new ones get through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_flow() {
    let figures = scenario("lost flow", |cluster, _| async move {
        cluster.proxy.set(Mode::DropOpenFlows);
        sleep(Duration::from_secs(5)).await;
    })
    .await;
    assert_eq!(figures.outages, 1, "{figures:?}");
}

/// Item 3: a command still in flight on the dead connection, timing out after the node has
/// reconnected on a new one, does not take the node down a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fault_is_one_outage() {
    let cluster = Arc::new(Cluster::start().await);
    let before = cluster.outages_of_a().await;
    cluster.proxy.set(Mode::BlackHole);
    sleep(Duration::from_millis(1500)).await;
    // Sent into the black hole just before the node notices: it times out 2 s later.
    let in_flight = {
        let cluster = Arc::clone(&cluster);
        tokio::spawn(async move {
            cluster
                .a
                .publish(json!({ "channel": CHANNEL, "type": "updated", "key": "late" }))
                .await
                .0
        })
    };
    // The node notices, the link heals at once, the node reconnects.
    let deadline = Instant::now() + PATIENCE;
    while cluster
        .a
        .http
        .get(cluster.a.url("/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "A never noticed");
        sleep(Duration::from_millis(10)).await;
    }
    cluster.proxy.set(Mode::Pass);
    cluster.wait_healthy(&cluster.a).await;
    let mut client = cluster.a.client().await;
    client
        .send_json(json!({ "op": "subscribe", "channels": [{ "channel": CHANNEL }] }))
        .await;
    while client.recv().await["op"] != "subscribed" {}
    let status = in_flight.await.expect("the publish");
    assert_eq!(status, 504, "its outcome is unknown");
    sleep(Duration::from_millis(500)).await;
    assert_eq!(
        cluster.outages_of_a().await - before,
        1,
        "one fault, one outage"
    );
    // The client connected after the reconnect is still served.
    client.send_json(json!({ "op": "ping" })).await;
    loop {
        let frame = client.recv().await;
        if frame["op"] == "pong" {
            break;
        }
        assert_eq!(frame["op"], "ping", "{frame}");
    }
}

/// `INFO commandstats`: how many times Redis ran `command`.
fn calls(redis: &RedisServer, command: &str) -> u64 {
    let stats = redis.cli(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Item 5: the heartbeat sends only what changed in a node's subscriber counts (it rewrote the
/// whole hash every second), and a removed channel leaves the hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_sends_changes_only() {
    let redis = RedisServer::start();
    let node = Relay::start(Config {
        redis: Some(redis.url()),
        redis_prefix: "hb".into(),
        ..Config::default()
    })
    .await;
    let mut client = node.client().await;
    client.subscribe(&["c1", "c2"]).await;
    sleep(Duration::from_millis(1500)).await;
    let before = calls(&redis, "hset");
    sleep(Duration::from_millis(3200)).await;
    assert_eq!(
        calls(&redis, "hset"),
        before,
        "three heartbeats, nothing changed"
    );
    client
        .send_json(json!({ "op": "unsubscribe", "channels": [{ "channel": "c2" }] }))
        .await;
    sleep(Duration::from_millis(1500)).await;
    let nodes = redis.cli(&["ZRANGE", "hb:nodes", "0", "-1"]);
    let key = format!("hb:n:{}", nodes.lines().next().expect("the node"));
    let counts = redis.cli(&["HGETALL", &key]);
    assert_eq!(counts.lines().collect::<Vec<_>>(), ["c1", "1"], "{counts}");
    node.stop().await;
}

/// Item 5: a channel untracked after a fan-out gap is unsubscribed from Redis (it stayed
/// `SUBSCRIBE`d, its messages read and ignored, for as long as the connection lived).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_unsubscribes_what_it_untracked() {
    let redis = RedisServer::start();
    let node = Relay::start(Config {
        redis: Some(redis.url()),
        redis_prefix: "gap".into(),
        history_ttl_ms: 1000,
        ..Config::default()
    })
    .await;
    let mut client = node.client().await;
    client.subscribe(&["c"]).await;
    let numsub = || redis.cli(&["PUBSUB", "NUMSUB", "gap:p:c"]);
    assert_eq!(numsub().lines().nth(1), Some("1"));
    let epoch = node.epoch().await;
    // A message numbered 5 while the node has 0: messages were lost.
    let frame = r#"{"op":"event","channel":"c","type":"x","payload":{},"date":0,"seq":5}"#;
    redis.cli(&["PUBLISH", "gap:p:c", &format!("{epoch}\n5\n\n{frame}")]);
    let (_, code) = client.until_close_code().await;
    assert_eq!(code, Some(1013), "its clients resume from the history");
    let deadline = Instant::now() + PATIENCE;
    while numsub().lines().nth(1) != Some("0") {
        assert!(Instant::now() < deadline, "still subscribed: {}", numsub());
        sleep(Duration::from_millis(50)).await;
    }
    node.stop().await;
}
