//! Leaks (issue 12, item 6): 10,000 WebSocket connections come and go against a `live-relay`
//! process, in 20 batches of 500 (under the usual 1,024-descriptor soft limit on both sides);
//! each subscribes to a channel of its own and to one of ten shared channels, gets an event
//! published while it is connected, and leaves with a close frame, by dropping its socket, or
//! by vanishing mid-subscribe. Afterwards the relay's `/metrics` gauges (connections, channels,
//! subscriptions) are back to zero, it holds no more file descriptors than after the first five
//! batches (within 2), and its resident memory (`VmRSS` of `/proc/<pid>/status`)
//! is back to the most it reached in the first five batches, within a tolerance (see
//! [`RSS_TOLERANCE_KIB`]), and no longer growing in the second half of the run.
//! Figures are printed with `--nocapture`.

mod common;

use common::process::RelayProcess;
use common::{Relay, PATIENCE};
use futures_util::SinkExt;
use serde_json::json;
use std::time::Duration;
use tokio::time::{sleep, Instant};

const BATCHES: usize = 20;
const PER_BATCH: usize = 500;
/// Batches run before the baseline is taken: the allocator's arenas, the runtime's worker
/// buffers and the broker's maps have grown to their working size by then.
const WARM_UP: usize = 5;
const SHARED_CHANNELS: usize = 10;
/// How far the resident memory may end above the baseline (the most it reached in the warm-up:
/// glibc's per-thread arenas settle at different sizes from run to run, 22-32 MiB here). 8 MiB
/// over the 7,500 connections after the baseline is about 1 KiB a connection: one connection's
/// state (socket buffers, WebSocket codec, outbound queue, subscription entries) is tens of KiB,
/// so keeping even one in ten would show; what is left is allocator slack, which does not grow
/// with the count (the check below also compares the first half of the run with its end).
const RSS_TOLERANCE_KIB: u64 = 8 * 1024;

/// The relay process, killed when the test ends.
/// A relay process and a client of it.
struct Process {
    process: RelayProcess,
    relay: Relay,
}

fn start_relay() -> Process {
    // The default per-IP limit (1,000) stays on: a batch is under it, and a count it leaked
    // would refuse connections within a few batches.
    let process = RelayProcess::start(&[]);
    let relay = Relay::at(process.addr);
    Process { process, relay }
}

/// `VmRSS` of the process, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS line in /proc/{pid}/status"))
}

/// How many file descriptors the process has open.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/fd: {e}"))
        .count()
}

/// A sample of the relay's `/metrics` (`live_relay_<name>`), 0 when absent.
async fn gauge(relay: &Relay, name: &str) -> u64 {
    let text = relay.metrics().await;
    let prefix = format!("live_relay_{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("{prefix}{v}: not a number"))
        })
        .unwrap_or(0.0) as u64
}

/// Waits until the relay counts no connection, subscription or channel.
async fn wait_empty(relay: &Relay, batch: usize) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let open = (
            gauge(relay, "connections").await,
            gauge(relay, "subscriptions").await,
            gauge(relay, "channels").await,
        );
        if open == (0, 0, 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after batch {batch} the relay still counts (connections, subscriptions, channels) = {open:?}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// One batch: `PER_BATCH` connections at once, an event on every shared channel while they are
/// all subscribed, then every connection goes, a third each way.
async fn batch(relay: &Relay, batch: usize) {
    let mut tasks = Vec::with_capacity(PER_BATCH);
    for i in 0..PER_BATCH {
        let relay = Relay::at(relay.addr);
        tasks.push(tokio::spawn(async move {
            let mut client = relay.client().await;
            let own = format!("leak/own/{batch}/{i}");
            let shared = format!("leak/shared/{}", i % SHARED_CHANNELS);
            if i % 3 == 2 {
                // Gone before the answer: the relay must clean up a half-done subscribe.
                client
                    .send_json(json!({ "op": "subscribe", "channels": [{ "channel": own }, { "channel": shared }] }))
                    .await;
                return None;
            }
            client.subscribe(&[&own, &shared]).await;
            Some(client)
        }));
    }
    let mut clients = Vec::new();
    for task in tasks {
        if let Some(client) = task.await.expect("a connection task") {
            clients.push(client);
        }
    }
    for c in 0..SHARED_CHANNELS {
        let (status, body) = relay
            .publish(json!({ "channel": format!("leak/shared/{c}"), "type": "updated", "payload": { "batch": batch } }))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    for (i, mut client) in clients.into_iter().enumerate() {
        let event = client.recv_op("event").await;
        assert_eq!(event["payload"]["batch"], batch, "{event}");
        if i % 2 == 0 {
            client.ws.close(None).await.expect("a close frame");
            client.until_closed().await;
        } else {
            client.ws.flush().await.expect("flush");
            drop(client);
        }
    }
    wait_empty(relay, batch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_connections_come_and_go_and_the_relay_returns_to_its_baseline() {
    let process = start_relay();
    let relay = &process.relay;
    let pid = process.process.child.id();
    let started = Instant::now();
    let at_start = rss_kib(pid);
    let mut rss = Vec::new();
    let mut baseline = 0;
    let mut baseline_fds = 0;
    for b in 0..BATCHES {
        batch(relay, b).await;
        sleep(Duration::from_millis(50)).await;
        rss.push(rss_kib(pid));
        if b + 1 == WARM_UP {
            baseline = rss.iter().copied().max().unwrap_or(0);
            baseline_fds = fds(pid);
        }
    }
    let end = rss_kib(pid);
    let end_fds = fds(pid);
    let middle = rss[..=BATCHES / 2].iter().copied().max().unwrap_or(0);
    let history = gauge(relay, "history_events").await;
    println!(
        "relay leaks: {} connections in {BATCHES} batches of {PER_BATCH} in {:.1} s; VmRSS KiB: at start {at_start}, baseline (the most in the first {WARM_UP} batches) {baseline}, most in the first half {middle}, end {end} (end - baseline {} KiB, tolerance {RSS_TOLERANCE_KIB}); after each batch {rss:?}; gauges at the end: connections 0, subscriptions 0, channels 0, history_events {history}; open file descriptors: baseline {baseline_fds}, end {end_fds}",
        BATCHES * PER_BATCH,
        started.elapsed().as_secs_f64(),
        end as i64 - baseline as i64,
    );
    assert_eq!(
        history,
        (BATCHES * SHARED_CHANNELS) as u64,
        "the history holds exactly the events published"
    );
    assert!(
        end_fds <= baseline_fds + 2,
        "the relay holds {end_fds} file descriptors, {baseline_fds} after {WARM_UP} batches"
    );
    assert!(
        end <= baseline + RSS_TOLERANCE_KIB,
        "VmRSS grew from {baseline} KiB after {WARM_UP} batches to {end} KiB after {BATCHES} (tolerance {RSS_TOLERANCE_KIB} KiB): {rss:?}"
    );
    assert!(
        end <= middle + RSS_TOLERANCE_KIB / 2,
        "VmRSS still growing in the second half of the run: {middle} KiB -> {end} KiB: {rss:?}"
    );
}

/// Publishes once on each of `count` channels named `prefix/<n>`, over one WebSocket connection
/// (pipelined, 1,000 publishes in flight), and checks every ack.
async fn publish_once_on_each(relay: &Relay, prefix: &str, count: usize) {
    let mut client = relay.client().await;
    for start in (0..count).step_by(1000) {
        let end = (start + 1000).min(count);
        for n in start..end {
            client
                .ws
                .feed(tokio_tungstenite::tungstenite::Message::text(
                    json!({ "op": "publish", "id": n, "channel": format!("{prefix}/{n}"), "type": "updated", "payload": { "ids": [n] } })
                        .to_string(),
                ))
                .await
                .expect("feed");
        }
        client.ws.flush().await.expect("flush");
        let mut acks = start;
        while acks < end {
            // The relay's `ping` (every 25 s) may come between two acks on a slow machine.
            let frame = client.recv().await;
            match frame["op"].as_str() {
                Some("ping") => client.send(r#"{"op":"pong"}"#).await,
                _ => {
                    assert_eq!(frame["op"], "ack", "{frame}");
                    acks += 1;
                }
            }
        }
    }
}

/// Item 9 of issue 22: 100,000 channels published on once, by names the publisher makes up (or
/// per-record channels in normal use), are forgotten once their history has expired: the relay's
/// known channels go back to 0 after every round, and new rounds of 100,000 new names do not
/// grow its memory (before, every channel ever published on kept its entry). The relay runs with
/// one malloc arena, so that what is measured is the relay's memory, not how glibc spreads it
/// over threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_published_once_are_forgotten_and_memory_does_not_grow() {
    const CHANNELS: usize = 100_000;
    /// Rounds run; the baseline is the most memory of the first `WARM_UP_ROUNDS` (the allocator's
    /// free lists settle over the first rounds: 26, 32, 33 MiB here, then flat; keeping the
    /// channels would add about 20 MiB a round, 40 MiB over the two rounds after the warm-up).
    const ROUNDS: usize = 5;
    const WARM_UP_ROUNDS: usize = 3;
    /// glibc's heap may still take one more step after the warm-up and then stay flat (a
    /// clean-clone run: 28.5 MiB after rounds 2-3, 33.4 MiB after rounds 4-5, a 4.8 MiB step), so
    /// the tolerance is half of what one round of kept channels would add, not the few MiB of a
    /// quiet run.
    const TOLERANCE_KIB: u64 = 10 * 1024;
    let process = RelayProcess::start_with_env(
        &["--publish-rate", "0", "--history-ttl-ms", "1000"],
        &[("MALLOC_ARENA_MAX", "1")],
    );
    let relay = Relay::at(process.addr);
    let pid = process.child.id();
    let at_start = rss_kib(pid);
    let mut after = Vec::new();
    for round in 0..ROUNDS {
        publish_once_on_each(&relay, &format!("round-{round}"), CHANNELS).await;
        let peak = rss_kib(pid);
        let deadline = Instant::now() + PATIENCE;
        while gauge(&relay, "channels_known").await > 0 {
            assert!(
                Instant::now() < deadline,
                "round {round}: channels still known"
            );
            sleep(Duration::from_millis(100)).await;
        }
        after.push((peak, rss_kib(pid)));
    }
    println!(
        "relay forgets channels: {CHANNELS} channels published once per round; VmRSS KiB at start {at_start}, (peak, after the sweep) per round {after:?}"
    );
    // Whether glibc gives freed memory back after a sweep varies from run to run (after-sweep
    // values of 22-32 MiB here), so the baseline is the most the warm-up reached, peak or not.
    let baseline = after[..WARM_UP_ROUNDS]
        .iter()
        .map(|(peak, swept)| *peak.max(swept))
        .max()
        .unwrap_or(0);
    let end = after[ROUNDS - 1].1;
    assert!(
        end <= baseline + TOLERANCE_KIB,
        "VmRSS grew from {baseline} KiB after {WARM_UP_ROUNDS} rounds to {end} KiB after {ROUNDS}: {after:?}"
    );
}
