//! `protocol: "simple"`: the client speaking the seed document's minimal WebSocket protocol to a
//! real Node `ws` server implementing exactly the seed's server side (tests/simple/server.mjs,
//! started by the harness with `--simple`). Filtering, multiplexing, unsubscribe, publish, and a
//! dropped connection that comes back with one `$resync` per subscription.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use wasm_live_provider::LiveClient;

wasm_bindgen_test_configure!(run_in_browser);

fn simple_ws() -> &'static str {
    match option_env!("LIVE_SIMPLE_WS") {
        Some(url) if !url.is_empty() => url,
        _ => panic!("LIVE_SIMPLE_WS is not set: run these tests with scripts/test-browser.sh"),
    }
}

fn simple_http() -> &'static str {
    match option_env!("LIVE_SIMPLE_HTTP") {
        Some(url) if !url.is_empty() => url,
        _ => panic!("LIVE_SIMPLE_HTTP is not set: run these tests with scripts/test-browser.sh"),
    }
}

fn simple_client() -> LiveClient {
    client_to(simple_ws(), &[("protocol", "simple".into())])
}

/// Publishes from the server side, as the seed's server would on a change.
async fn server_publish(channel: &str, kind: &str, payload: &str) {
    let body = format!(r#"{{"channel":"{channel}","type":"{kind}","payload":{payload}}}"#);
    fetch(
        "POST",
        &format!("{}/control/publish", simple_http()),
        Some(&body),
    )
    .await;
}

/// The frames the server received about `channel`: (connection number, the frame as JSON text).
async fn frames(channel: &str) -> Vec<(u32, String)> {
    let url = format!(
        "{}/control/frames?channel={}",
        simple_http(),
        String::from(js_sys::encode_uri_component(channel))
    );
    let text = fetch("GET", &url, None).await;
    let list: js_sys::Array = js_sys::JSON::parse(&text)
        .expect("JSON")
        .dyn_into()
        .expect("an array");
    list.iter()
        .map(|entry| {
            let conn = js_sys::Reflect::get(&entry, &"conn".into())
                .ok()
                .and_then(|c| c.as_f64())
                .unwrap_or(-1.0) as u32;
            let frame = js_sys::Reflect::get(&entry, &"frame".into()).expect("frame");
            let text = js_sys::JSON::stringify(&frame)
                .ok()
                .and_then(|s| s.as_string())
                .unwrap_or_default();
            (conn, text)
        })
        .collect()
}

/// Waits until the server has received `n` frames about `channel`; returns them.
async fn wait_frames(channel: &str, n: usize) -> Vec<(u32, String)> {
    for _ in 0..500 {
        let got = frames(channel).await;
        if got.len() >= n {
            return got;
        }
        sleep(10).await;
    }
    panic!(
        "the server did not receive {n} frames about {channel}: {:?}",
        frames(channel).await
    );
}

fn subscribe_frame(channel: &str) -> String {
    format!(r#"{{"action":"subscribe","channel":"{channel}"}}"#)
}

fn unsubscribe_frame(channel: &str) -> String {
    format!(r#"{{"action":"unsubscribe","channel":"{channel}"}}"#)
}

fn ids(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| s.to_string()).collect())
}

#[wasm_bindgen_test]
async fn simple_events_are_filtered_by_type_and_ids_over_one_subscribe_frame() {
    let ch = channel("simple-filter");
    let errors = Recorder::new();
    let c = client_to(
        simple_ws(),
        &[
            ("protocol", "simple".into()),
            ("onError", errors.function.clone().into()),
        ],
    );
    let list = Recorder::new();
    let one2 = Recorder::new();
    let creates = Recorder::new();
    let l = c.subscribe(ch.clone(), all(), None, list.function.clone());
    c.subscribe(ch.clone(), all(), ids(&["2"]), one2.function.clone());
    c.subscribe(
        ch.clone(),
        vec!["created".into()],
        None,
        creates.function.clone(),
    );
    wait_open(&c).await;
    let got = wait_frames(&ch, 1).await;
    assert_eq!(c.subscription_state(l), "subscribed");

    server_publish(&ch, "updated", r#"{"ids":[3]}"#).await;
    server_publish(&ch, "updated", r#"{"ids":["2"]}"#).await;
    server_publish(&ch, "created", r#"{"ids":[9]}"#).await;
    server_publish(&ch, "deleted", r#"{"ids":[2],"why":"gone"}"#).await;
    wait_until("the list to see four events", 5_000, || list.count() == 4).await;
    sleep(100).await;
    assert_eq!(
        list.types(),
        vec!["updated", "updated", "created", "deleted"]
    );
    assert_eq!(
        one2.types(),
        vec!["updated", "created", "deleted"],
        "ids [2] (compared as strings): not the update of 3; `created` passes"
    );
    assert_eq!(creates.types(), vec!["created"], "types [created]");
    assert_eq!(
        list.field(3, &["payload", "why"]).as_string().as_deref(),
        Some("gone")
    );
    assert_eq!(
        list.field(0, &["channel"]).as_string().as_deref(),
        Some(ch.as_str())
    );
    assert!(
        list.field(0, &["date"]).is_instance_of::<js_sys::Date>(),
        "dated on receipt, as the seed's client does"
    );
    let got_after = frames(&ch).await;
    assert_eq!(
        got_after,
        vec![(got[0].0, subscribe_frame(&ch))],
        "three subscriptions, one channel: exactly one subscribe frame, the seed's"
    );
    assert_eq!(stat(&c, "problems"), 0.0);

    // A broken server: frames that are not `{channel, type, payload}` are reported, counted and
    // dropped; the connection stays and the next event is delivered.
    let raw = |body: String| {
        let url = format!(
            "{}/control/raw?channel={}",
            simple_http(),
            String::from(js_sys::encode_uri_component(&ch))
        );
        async move { fetch("POST", &url, Some(&body)).await }
    };
    raw(format!(r#"{{"channel":"{ch}","payload":{{"ids":[2]}}}}"#)).await;
    raw("not json".into()).await;
    server_publish(&ch, "updated", r#"{"ids":[2]}"#).await;
    wait_until("the event after the broken frames", 5_000, || {
        list.count() == 5
    })
    .await;
    assert_eq!(stat(&c, "problems"), 2.0);
    assert_eq!(errors.count(), 2);
    let message = js_sys::Error::from(errors.field(0, &[])).message();
    assert!(
        String::from(message).contains("not a simple-protocol event (no `type`)"),
        "{:?}",
        errors.field(0, &["message"])
    );
    assert_eq!(one2.count(), 4);
    assert_eq!(c.state(), "open");
    c.close();
}

#[wasm_bindgen_test]
async fn simple_unsubscribe_frame_goes_out_when_the_last_subscription_ends() {
    let ch = channel("simple-unsub");
    let keep = channel("simple-keep");
    let c = simple_client();
    let a = Recorder::new();
    let b = Recorder::new();
    let other = Recorder::new();
    let sa = c.subscribe(ch.clone(), all(), None, a.function.clone());
    let sb = c.subscribe(ch.clone(), all(), None, b.function.clone());
    c.subscribe(keep.clone(), all(), None, other.function.clone());
    wait_open(&c).await;
    wait_frames(&ch, 1).await;
    wait_frames(&keep, 1).await;

    assert!(c.unsubscribe(sa));
    sleep(200).await;
    assert_eq!(
        frames(&ch).await.len(),
        1,
        "one subscription of the channel is left: no unsubscribe yet"
    );
    server_publish(&ch, "updated", "{}").await;
    wait_until("b to get the event", 5_000, || b.count() == 1).await;
    assert_eq!(a.count(), 0, "an ended subscription gets nothing");

    assert!(c.unsubscribe(sb));
    let got = wait_frames(&ch, 2).await;
    assert_eq!(got[1].1, unsubscribe_frame(&ch));
    assert_eq!(got[0].0, got[1].0, "on the same connection");
    server_publish(&ch, "updated", "{}").await;
    server_publish(&keep, "updated", "{}").await;
    wait_until("the other channel's event", 5_000, || other.count() == 1).await;
    assert_eq!(b.count(), 1);
    assert_eq!(c.state(), "open", "another channel keeps the connection");
    c.close();
}

#[wasm_bindgen_test]
async fn simple_publish_reaches_another_client() {
    let ch = channel("simple-publish");
    let publisher = simple_client();
    let reader = simple_client();
    let got = Recorder::new();
    reader.subscribe(ch.clone(), all(), ids(&["5"]), got.function.clone());
    wait_open(&reader).await;
    wait_frames(&ch, 1).await;

    let ack = JsFuture::from(publisher.publish(
        ch.clone(),
        "updated".into(),
        r#"{"ids":[5],"title":"hi"}"#.into(),
        js_sys::Date::now(),
        Some(r#"{"ignored":true}"#.into()),
    ))
    .await
    .expect("resolves once the frame is on the socket");
    assert_eq!(
        js_sys::Reflect::get(&ack, &"seq".into())
            .ok()
            .and_then(|s| s.as_f64()),
        Some(0.0),
        "no ack in the simple protocol: seq 0"
    );
    wait_until("the other client to get the event", 5_000, || {
        got.count() == 1
    })
    .await;
    assert_eq!(got.types(), vec!["updated"]);
    assert_eq!(
        got.field(0, &["payload", "title"]).as_string().as_deref(),
        Some("hi")
    );
    let frames = frames(&ch).await;
    assert_eq!(
        frames.last().map(|f| f.1.as_str()),
        Some(format!(r#"{{"action":"publish","channel":"{ch}","type":"updated","payload":{{"ids":[5],"title":"hi"}}}}"#).as_str()),
        "the seed's publish frame: no date, meta, id or key"
    );
    publisher.close();
    reader.close();
}

#[wasm_bindgen_test]
async fn simple_server_drop_reconnects_resubscribes_and_resyncs_each_subscription() {
    let ch = channel("simple-drop");
    let ch2 = channel("simple-drop2");
    let c = simple_client();
    let a = Recorder::new();
    let b = Recorder::new();
    let d = Recorder::new();
    c.subscribe(ch.clone(), all(), None, a.function.clone());
    c.subscribe(ch.clone(), all(), ids(&["1"]), b.function.clone());
    c.subscribe(ch2.clone(), all(), None, d.function.clone());
    wait_open(&c).await;
    let first = wait_frames(&ch, 1).await;
    wait_frames(&ch2, 1).await;
    server_publish(&ch, "updated", r#"{"ids":[1]}"#).await;
    wait_until("the first event", 5_000, || {
        a.count() == 1 && b.count() == 1
    })
    .await;

    fetch("POST", &format!("{}/control/drop", simple_http()), None).await;
    wait_until("a $resync for every subscription", 10_000, || {
        [&a, &b, &d]
            .iter()
            .all(|r| r.types().iter().any(|t| t == "$resync"))
    })
    .await;
    for r in [&a, &b, &d] {
        let i = r
            .types()
            .iter()
            .position(|t| t == "$resync")
            .expect("resync");
        let reason = r
            .field(i, &["meta", "reason"])
            .as_string()
            .unwrap_or_default();
        assert!(reason.contains("simple protocol"), "{reason}");
        assert_eq!(r.field(i, &["meta", "resync"]), JsValue::TRUE);
    }
    let again = wait_frames(&ch, 2).await;
    assert_eq!(again[1].1, subscribe_frame(&ch), "subscribed again");
    assert_ne!(again[1].0, first[0].0, "on a new connection");
    wait_frames(&ch2, 2).await;
    wait_open(&c).await;

    server_publish(&ch, "deleted", r#"{"ids":[1]}"#).await;
    server_publish(&ch2, "created", "{}").await;
    wait_until("events to flow again", 5_000, || {
        a.count() == 3 && b.count() == 3 && d.count() == 2
    })
    .await;
    assert_eq!(a.types(), vec!["updated", "$resync", "deleted"]);
    assert_eq!(b.types(), vec!["updated", "$resync", "deleted"]);
    assert_eq!(d.types(), vec!["$resync", "created"]);
    assert_eq!(stat(&c, "connections"), 2.0);
    assert_eq!(stat(&c, "resyncs"), 2.0, "one per channel");
    c.close();
}

/// The JS entry refuses these combinations with a `TypeError` saying why (tests/packed/misuse.test.mjs);
/// a `LiveClient` created directly with them throws its one generic error rather than misbehave.
#[wasm_bindgen_test]
fn simple_protocol_options_that_cannot_work_are_refused() {
    let refused = |extra: &[(&str, JsValue)]| {
        let e = new_client(&simple_ws().into(), extra)
            .err()
            .expect("an error");
        let message = String::from(e.unchecked_into::<js_sys::Error>().message());
        assert!(message.starts_with("LiveClient: "), "{message}");
    };
    refused(&[("protocol", "v2".into())]);
    refused(&[("protocol", "simple".into()), ("transport", "sse".into())]);
    refused(&[("protocol", "simple".into()), ("transport", "auto".into())]);
    refused(&[("protocol", "simple".into()), ("token", "t".into())]);
    refused(&[
        ("protocol", "simple".into()),
        ("scopeQuery", "scopes=a".into()),
    ]);
    assert!(new_client(&simple_ws().into(), &[("protocol", "v1".into())]).is_ok());
}
