//! `flavor: "igniter"`: the SSE transport reading a real Igniter.js server (`@igniter-js/core` from npm,
//! tests/igniter/server.mjs, started by the harness) — channel events drive subscriptions with the
//! same id filtering, revalidations reach `$revalidate`.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use wasm_live_provider::LiveClient;

wasm_bindgen_test_configure!(run_in_browser);

fn igniter() -> &'static str {
    match option_env!("LIVE_IGNITER_URL") {
        Some(url) if !url.is_empty() => url,
        _ => panic!("LIVE_IGNITER_URL is not set: run these tests with scripts/test-browser.sh"),
    }
}

fn igniter_client() -> LiveClient {
    let url = format!("{}/api/v1/sse/events", igniter());
    client_to(
        &url,
        &[
            ("transport", "sse".into()),
            ("sseUrl", url.clone().into()),
            ("flavor", "igniter".into()),
        ],
    )
}

async fn control(path: &str, body: &str) {
    fetch("POST", &format!("{}/control/{path}", igniter()), Some(body)).await;
}

#[wasm_bindgen_test]
async fn igniter_channel_events_are_filtered_like_any_other() {
    let ch = channel("igniter").replace('/', ".");
    let c = igniter_client();
    let one2 = Recorder::new();
    let list = Recorder::new();
    c.subscribe(
        ch.clone(),
        all(),
        Some(vec!["2".into()]),
        one2.function.clone(),
    );
    c.subscribe(ch.clone(), all(), None, list.function.clone());
    wait_open(&c).await;
    sleep(100).await;
    control(
        "publish",
        &format!(r#"{{"channel":"{ch}","type":"updated","data":{{"ids":[3]}}}}"#),
    )
    .await;
    control(
        "publish",
        &format!(r#"{{"channel":"{ch}","type":"created","data":{{"ids":[3]}}}}"#),
    )
    .await;
    control(
        "publish",
        &format!(r#"{{"channel":"{ch}","data":{{"type":"updated","ids":[2]}}}}"#),
    )
    .await;
    wait_until("the list to see three events", 5_000, || list.count() == 3).await;
    assert_eq!(
        list.types(),
        vec!["updated", "created", "updated"],
        "named events and `data.type` of plain messages"
    );
    assert_eq!(
        one2.types(),
        vec!["created", "updated"],
        "ids [2]: not the update of 3"
    );
    assert!(list.field(0, &["date"]).is_instance_of::<js_sys::Date>());
    c.close();
}

#[wasm_bindgen_test]
async fn igniter_revalidations_reach_the_revalidate_channel() {
    let c = igniter_client();
    let got = Recorder::new();
    c.subscribe("$revalidate".into(), all(), None, got.function.clone());
    wait_open(&c).await;
    sleep(100).await;
    control("revalidate", r#"{"keys":["posts.list","users"]}"#).await;
    wait_until("the revalidation", 5_000, || got.count() == 1).await;
    let keys = got.field(0, &["payload", "keys"]);
    assert_eq!(
        js_sys::JSON::stringify(&keys)
            .ok()
            .and_then(|s| s.as_string())
            .as_deref(),
        Some(r#"[["posts.list"],["posts","list"],["users"]]"#),
        "dotted keys also split, for TanStack keys written either way"
    );
    c.close();
}
