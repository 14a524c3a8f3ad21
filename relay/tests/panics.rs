//! A panic in one connection's handling ends that connection only: the process and every other
//! connection go on serving (the relay's `server` profile builds with `panic = "unwind"`; with the
//! wasm's `panic = "abort"` it killed them all). The panic is set off by the test-only hook of
//! `relay/src/test_hooks.rs`. `make test` runs this against `target/server/live-relay` too
//! (`RELAY_BINARY_UNDER_TEST`).

mod common;

use common::process::RelayProcess;
use common::Relay;
use serde_json::json;

#[tokio::test]
async fn a_panicking_connection_leaves_the_others_and_the_process_serving() {
    let mut process =
        RelayProcess::start_with_env(&[], &[("LIVE_RELAY_TEST_PANIC_CHANNEL", "boom")]);
    let relay = Relay::at(process.addr);
    let mut bystander = relay.client().await;
    bystander.subscribe(&["news"]).await;

    let mut victim = relay.client().await;
    victim
        .send_json(json!({ "op": "subscribe", "channels": [{ "channel": "boom" }] }))
        .await;
    let (frames, code) = victim.until_close_code().await;
    assert!(frames.is_empty(), "{frames:?}");
    assert_eq!(code, None, "the panicking connection just ends");

    // The process is alive, serves new connections, and the bystander still receives.
    assert!(
        process
            .child
            .try_wait()
            .expect("the process state")
            .is_none(),
        "the relay process died"
    );
    let (status, _) = relay
        .publish(json!({ "channel": "news", "type": "updated" }))
        .await;
    assert_eq!(status, 200);
    let event = bystander.recv_op("event").await;
    assert_eq!(event["channel"], "news");
    bystander.assert_alive().await;
    let mut newcomer = relay.client().await;
    newcomer.subscribe(&["news"]).await;
    assert_eq!(relay.health().await["connections"], 2);
    process.kill();
}
