//! A cluster in a real browser: three relay nodes on one Redis, started by the harness
//! (`LIVE_CLUSTER_WS`, `LIVE_CLUSTER_HTTP`). A node is killed by its pid under a numbered stream
//! published on another node; the client, given two of the nodes' URLs, moves to the other one and
//! resumes. Run by `scripts/test-browser.sh` (see tests/harness/relay-harness.mjs).
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The nodes' URLs (`LIVE_CLUSTER_WS` or `LIVE_CLUSTER_HTTP`, comma-separated).
fn nodes(list: Option<&'static str>, name: &str) -> Vec<&'static str> {
    let list = list.unwrap_or_default();
    let nodes: Vec<&'static str> = list.split(',').filter(|u| !u.is_empty()).collect();
    assert_eq!(
        nodes.len(),
        3,
        "{name} must list three cluster nodes: the harness could not start Redis or a node (see its log)"
    );
    nodes
}

/// Publishes a numbered event on `node` over HTTP, as a backend would.
async fn publish_on(node: &str, channel: &str, n: usize) {
    let body = format!(
        r#"{{"channel":"{channel}","type":"updated","key":"{channel}-{n}","payload":{{"ids":[{n}],"n":{n}}}}}"#
    );
    fetch("POST", &format!("{node}/publish"), Some(&body)).await;
}

#[wasm_bindgen_test]
async fn a_killed_node_hands_its_clients_to_another_with_nothing_lost() {
    const BEFORE: usize = 20;
    const DURING: usize = 20;
    const AFTER: usize = 20;
    let ws = nodes(option_env!("LIVE_CLUSTER_WS"), "LIVE_CLUSTER_WS");
    let http = nodes(option_env!("LIVE_CLUSTER_HTTP"), "LIVE_CLUSTER_HTTP");
    let ch = channel("cluster");
    // The client knows nodes A and C; the backend publishes on node B.
    let c = client_to_relays(&[ws[0], ws[2]], &[]);
    let got = Recorder::new();
    c.subscribe(ch.clone(), all(), None, got.function.clone());
    wait_open(&c).await;
    assert_eq!(stats_url(&c), ws[0], "connected to node A first");
    sleep(50).await;

    let mut n = 0;
    for _ in 0..BEFORE {
        publish_on(http[1], &ch, n).await;
        n += 1;
    }
    wait_until("the events before the kill", 10_000, || {
        got.count() >= BEFORE
    })
    .await;

    harness_do("cluster/kill/0").await;
    let killed_at = js_sys::Date::now();
    // Published while the client finds node C: only the shared history can give them to it.
    for _ in 0..DURING {
        publish_on(http[1], &ch, n).await;
        n += 1;
    }
    let resumed = wait_for(10_000, || {
        c.state() == "open" && stat(&c, "connections") == 2.0 && got.count() >= BEFORE + DURING
    })
    .await;
    let resumed_after = js_sys::Date::now() - killed_at;
    for _ in 0..AFTER {
        publish_on(http[1], &ch, n).await;
        n += 1;
    }
    let published = n;
    wait_for(10_000, || got.count() >= published).await;
    // Anything extra (a duplicate) would arrive now.
    sleep(300).await;

    let received = numbers(&got);
    let (lost, duplicates) = lost_and_duplicated(&received, published);
    let report = format!(
        r#"{{"test":"cluster_node_killed","published":{published},"received":{},"lost":{lost},"duplicates":{duplicates},"resyncs":{},"connections":{},"resumed_after_ms":{resumed_after}}}"#,
        received.len(),
        stat(&c, "resyncs"),
        stat(&c, "connections"),
    );
    fetch("POST", &format!("{}/report", harness()), Some(&report)).await;
    assert!(resumed, "not resumed on node C within 10 s: {report}");
    assert_eq!(stats_url(&c), ws[2], "the client moved to node C");
    assert_eq!((lost, duplicates), (0, 0), "{report}");
    assert_eq!(stat(&c, "resyncs"), 0.0, "{report}");
    assert_eq!(
        received,
        (0..published as i64).collect::<Vec<_>>(),
        "in order"
    );
    c.close();
}
