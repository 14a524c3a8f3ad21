//! The Server-Sent Events transport in a real browser against the real relay: the same delivery and
//! filter suites as the WebSocket, resume after the stream is cut, revalidation with and without
//! scopes, the fallback from a refused WebSocket, and failover from a refused first stream URL.
//! Run by `scripts/test-browser.sh` (see tests/harness/relay-harness.mjs).
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use js_sys::Reflect;
use wasm_bindgen_test::*;
use wasm_live_provider::LiveClient;

wasm_bindgen_test_configure!(run_in_browser);

fn sse() -> LiveClient {
    sse_client_to(relay_http(), &[])
}

#[wasm_bindgen_test]
async fn sse_one_provider_publishes_the_other_receives() {
    suites::one_provider_publishes_the_other_receives(sse).await;
}

#[wasm_bindgen_test]
async fn sse_id_filter_drops_other_records_but_passes_created() {
    suites::id_filter_drops_other_records_but_passes_created(sse).await;
}

#[wasm_bindgen_test]
async fn sse_unsubscribe_stops_delivery() {
    suites::unsubscribe_stops_delivery(sse).await;
}

#[wasm_bindgen_test]
async fn sse_multiplexes_channels_and_reopens_for_new_ones() {
    let (a, b) = (channel("sse-a"), channel("sse-b"));
    let c = sse();
    let got_a = Recorder::new();
    let got_b = Recorder::new();
    c.subscribe(a.clone(), all(), None, got_a.function.clone());
    wait_open(&c).await;
    // A channel added later: the stream reopens with both, resuming `a` from its position.
    c.subscribe(b.clone(), all(), None, got_b.function.clone());
    sleep(300).await;
    wait_open(&c).await;
    http_publish(&a, "updated", r#"{"n":1}"#).await;
    http_publish(&b, "updated", r#"{"n":2}"#).await;
    wait_until("both channels over one stream", 5_000, || {
        got_a.count() == 1 && got_b.count() == 1
    })
    .await;
    c.close();
}

#[wasm_bindgen_test]
async fn sse_resumes_after_the_stream_is_cut() {
    let ch = channel("sse-cut");
    let c = sse_client_to(&proxy_http(), &[]);
    let got = Recorder::new();
    c.subscribe(ch.clone(), all(), None, got.function.clone());
    wait_open(&c).await;
    let mut n = 0;
    for _ in 0..10 {
        http_publish(&ch, "updated", &format!(r#"{{"n":{n}}}"#)).await;
        n += 1;
        harness_do("proxy/cut").await;
        http_publish(&ch, "updated", &format!(r#"{{"n":{n}}}"#)).await;
        n += 1;
        sleep(50).await;
    }
    wait_until("every event after the cuts", 15_000, || got.count() >= n).await;
    sleep(200).await;
    let received: Vec<f64> = (0..got.count())
        .map(|i| got.field(i, &["payload", "n"]).as_f64().unwrap_or(-1.0))
        .collect();
    let expected: Vec<f64> = (0..n).map(|i| i as f64).collect();
    assert_eq!(received, expected, "every event once, in order, over SSE");
    c.close();
}

/// Listens to `$revalidate` like `onRevalidate` does.
fn revalidations(c: &LiveClient) -> Recorder {
    let r = Recorder::new();
    c.subscribe("$revalidate".into(), all(), None, r.function.clone());
    r
}

#[wasm_bindgen_test]
async fn revalidation_honours_scopes() {
    let scoped = sse_client_to(relay_http(), &[("scopeQuery", "scopes=user%3A1".into())]);
    let other = sse();
    let ws_scoped = client_to(relay_ws(), &[("scopeQuery", "scopes=user%3A1".into())]);
    let (got_scoped, got_other, got_ws) = (
        revalidations(&scoped),
        revalidations(&other),
        revalidations(&ws_scoped),
    );
    for c in [&scoped, &other, &ws_scoped] {
        wait_open(c).await;
    }
    sleep(100).await;
    let body = r#"{"keys":[["posts"],"users"],"scopes":["user:1"]}"#;
    fetch("POST", &format!("{}/revalidate", relay_http()), Some(body)).await;
    wait_until("the scoped clients", 5_000, || {
        got_scoped.count() == 1 && got_ws.count() == 1
    })
    .await;
    let keys = got_scoped.field(0, &["payload", "keys"]);
    assert_eq!(
        js_sys::JSON::stringify(&keys)
            .ok()
            .and_then(|s| s.as_string())
            .as_deref(),
        Some(r#"[["posts"],["users"]]"#)
    );

    fetch(
        "POST",
        &format!("{}/revalidate", relay_http()),
        Some(r#"{"keys":[["all"]]}"#),
    )
    .await;
    wait_until("everyone gets the unscoped one", 5_000, || {
        got_other.count() == 1 && got_scoped.count() == 2
    })
    .await;
    sleep(200).await;
    assert_eq!(
        got_other.count(),
        1,
        "the client without the scope never saw the scoped revalidation"
    );
    assert_eq!(
        Reflect::get(&got_other.events.borrow()[0], &"type".into())
            .ok()
            .and_then(|t| t.as_string())
            .as_deref(),
        Some("revalidate")
    );
    for c in [scoped, other, ws_scoped] {
        c.close();
    }
}

#[wasm_bindgen_test]
async fn auto_falls_back_to_sse_when_the_websocket_is_refused() {
    let ch = channel("fallback");
    let errors = Recorder::new();
    // Port 9 (discard) is closed on loopback: the WebSocket is refused at once.
    let c = client_to(
        "ws://127.0.0.1:9/ws",
        &[
            ("transport", "auto".into()),
            ("sseUrl", relay_sse().into()),
            ("publishUrl", format!("{}/publish", relay_http()).into()),
            ("onError", errors.function.clone().into()),
        ],
    );
    let got = Recorder::new();
    c.subscribe(ch.clone(), all(), None, got.function.clone());
    wait_until("the SSE fallback to open", 10_000, || c.state() == "open").await;
    publish(&c, &ch, "updated", "{}").await;
    wait_until("delivery over SSE", 5_000, || got.count() == 1).await;
    let said_fallback = (0..errors.count()).any(|i| {
        errors
            .field(i, &["message"])
            .as_string()
            .unwrap_or_default()
            .contains("Server-Sent Events")
    });
    assert!(said_fallback, "the fallback is reported through onError");
    c.close();
}

#[wasm_bindgen_test]
async fn sse_a_refused_first_stream_fails_over_to_the_second() {
    let ch = channel("sse-failover");
    // Nothing listens at the first relay: its stream (and its publish URL) are refused.
    let closed = closed_ws().replace("ws://", "http://");
    let closed = closed.trim_end_matches("/ws");
    let c = client_to_relays(
        &[&format!("{closed}/sse"), &relay_sse()],
        &[
            ("transport", "sse".into()),
            (
                "publishUrl",
                string_array(&[
                    &format!("{closed}/publish"),
                    &format!("{}/publish", relay_http()),
                ]),
            ),
        ],
    );
    let got = Recorder::new();
    c.subscribe(ch.clone(), all(), None, got.function.clone());
    wait_until("the stream through the second URL", 10_000, || {
        c.state() == "open"
    })
    .await;
    assert_eq!(stats_url(&c), relay_sse());
    // Publishes go to the second relay's publish URL too.
    publish(&c, &ch, "updated", "{}").await;
    wait_until("delivery over the second stream", 5_000, || {
        got.count() == 1
    })
    .await;
    assert_eq!(stat(&c, "resyncs"), 0.0);
    c.close();
}
