//! Reliability in a real browser: a real relay behind a TCP proxy the harness breaks on request.
//! Run by `scripts/test-browser.sh` (see tests/harness/relay-harness.mjs).
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use js_sys::Reflect;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const CUTS: usize = 100;
const EVENTS_PER_CUT: usize = 3;

type Delays = Rc<RefCell<Vec<f64>>>;

/// Records the reconnect delays announced in state changes.
fn delay_recorder() -> (Delays, Closure<dyn FnMut(JsValue)>) {
    let delays = Rc::new(RefCell::new(Vec::new()));
    let sink = delays.clone();
    let on_state = Closure::<dyn FnMut(JsValue)>::new(move |s: JsValue| {
        if let Some(d) = Reflect::get(&s, &"delayMs".into())
            .ok()
            .and_then(|v| v.as_f64())
        {
            sink.borrow_mut().push(d);
        }
    });
    (delays, on_state)
}

#[wasm_bindgen_test]
async fn a_hundred_cuts_lose_and_duplicate_nothing() {
    let ch = channel("cuts");
    let (delays, on_state) = delay_recorder();
    let c = client_to(proxy_ws(), &[("onStateChange", on_state.as_ref().clone())]);
    let got = Recorder::new();
    c.subscribe(ch.clone(), all(), None, got.function.clone());
    wait_open(&c).await;
    sleep(50).await;

    // A numbered stream from a backend. Each round waits for a fresh connection, publishes two
    // events, cuts the connection (often with events in flight), and publishes one more while the
    // client is reconnecting.
    let connections = |c: &wasm_live_provider::LiveClient| {
        Reflect::get(&c.stats(), &"connections".into())
            .ok()
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0) as usize
    };
    let mut n = 0;
    for cut in 0..CUTS {
        wait_until("a fresh connection", 10_000, || {
            connections(&c) == cut + 1 && c.state() == "open"
        })
        .await;
        for i in 0..EVENTS_PER_CUT {
            if i == EVENTS_PER_CUT - 1 {
                harness_do("proxy/cut").await;
            }
            http_publish(&ch, "updated", &format!(r#"{{"n":{n}}}"#)).await;
            n += 1;
        }
    }
    let published = n;
    wait_until("every event after the last cut", 30_000, || {
        got.count() >= published
    })
    .await;
    sleep(300).await; // anything extra (a duplicate) would arrive now

    let received: Vec<i64> = (0..got.count())
        .map(|i| {
            got.field(i, &["payload", "n"])
                .as_f64()
                .map_or(-1, |v| v as i64)
        })
        .collect();
    let expected: Vec<i64> = (0..published as i64).collect();
    let stats = c.stats();
    let stat = |k: &str| {
        Reflect::get(&stats, &k.into())
            .ok()
            .and_then(|v| v.as_f64())
            .unwrap_or(-1.0)
    };
    let d = delays.borrow().clone();
    let (min, max) = d
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    let mean = d.iter().sum::<f64>() / d.len().max(1) as f64;
    let (lost, duplicates) = lost_and_duplicated(&received, published);
    let report = format!(
        r#"{{"test":"a_hundred_cuts","cuts":{CUTS},"published":{published},"received":{},"lost":{lost},"duplicates":{duplicates},"resyncs":{},"replayed_duplicates_dropped":{},"connections":{},"reconnect_delays_ms":{{"count":{},"min":{min},"mean":{mean:.1},"max":{max}}}}}"#,
        received.len(),
        stat("resyncs"),
        stat("duplicates"),
        stat("connections"),
        d.len(),
    );
    fetch("POST", &format!("{}/report", harness()), Some(&report)).await;
    assert_eq!(received, expected, "every event once, in order");
    assert_eq!(stat("resyncs"), 0.0, "the relay's history covers every gap");
    assert!(
        stat("connections") >= CUTS as f64,
        "the proxy really cut the connection {CUTS} times"
    );
    assert!(
        d.iter().all(|x| *x <= 200.0),
        "delays stay under backoffMaxMs: {d:?}"
    );
    c.close();
    drop(on_state);
}

#[wasm_bindgen_test]
async fn a_publish_while_offline_waits_and_is_acked_after_reconnect() {
    let ch = channel("offline-publish");
    let watcher = client_to(relay_ws(), &[]);
    let got = Recorder::new();
    watcher.subscribe(ch.clone(), all(), None, got.function.clone());
    wait_open(&watcher).await;

    let c = client_to(proxy_ws(), &[]);
    c.subscribe(channel("keepalive"), all(), None, Recorder::new().function);
    wait_open(&c).await;
    harness_do("proxy/down").await;
    wait_until("the client to notice", 5_000, || {
        c.state() == "reconnecting"
    })
    .await;

    let settled = Rc::new(RefCell::new(None::<Result<JsValue, JsValue>>));
    let sink = settled.clone();
    let promise = c.publish(
        ch.clone(),
        "created".into(),
        r#"{"ids":[1]}"#.into(),
        js_sys::Date::now(),
        None,
    );
    wasm_bindgen_futures::spawn_local(async move {
        let result = JsFuture::from(promise).await;
        *sink.borrow_mut() = Some(result);
    });
    sleep(500).await;
    assert!(
        settled.borrow().is_none(),
        "still queued while the relay is unreachable"
    );
    assert_eq!(got.count(), 0);

    harness_do("proxy/up").await;
    wait_until("the ack after reconnecting", 10_000, || {
        settled.borrow().is_some()
    })
    .await;
    let ack = settled
        .borrow_mut()
        .take()
        .expect("settled")
        .expect("acked, not rejected");
    assert!(Reflect::get(&ack, &"seq".into())
        .ok()
        .and_then(|v| v.as_f64())
        .is_some());
    wait_until("the event to reach the other client", 5_000, || {
        got.count() == 1
    })
    .await;
    sleep(200).await;
    assert_eq!(got.count(), 1, "published once");
    c.close();
    watcher.close();
}

#[wasm_bindgen_test]
async fn a_publish_the_relay_never_acks_rejects_with_a_timeout() {
    let ch = channel("timeout");
    let c = client_to(proxy_ws(), &[("publishTimeoutMs", 300.into())]);
    c.subscribe(ch.clone(), all(), None, Recorder::new().function);
    wait_open(&c).await;
    harness_do("proxy/stall").await;
    let started = js_sys::Date::now();
    let result = JsFuture::from(c.publish(ch, "updated".into(), "{}".into(), started, None)).await;
    let waited = js_sys::Date::now() - started;
    harness_do("proxy/unstall").await;
    let error = result.expect_err("no ack: the promise rejects");
    let field = |k: &str| {
        Reflect::get(&error, &k.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    assert_eq!(field("name"), "LivePublishError");
    assert_eq!(field("code"), "timeout");
    assert!(field("message").contains("300 ms"), "{}", field("message"));
    assert!(
        (250.0..3_000.0).contains(&waited),
        "rejected after {waited} ms"
    );
    c.close();
}

#[wasm_bindgen_test]
async fn a_refused_first_url_fails_over_to_the_second() {
    let ch = channel("failover-refused");
    // Nothing listens at the first URL: the connection is refused.
    let states = Recorder::new();
    let c = client_to_relays(
        &[closed_ws(), relay_ws()],
        &[("onStateChange", states.function.clone().into())],
    );
    let got = Recorder::new();
    let started = js_sys::Date::now();
    c.subscribe(ch.clone(), all(), None, got.function.clone());
    wait_open(&c).await;
    let opened_after = js_sys::Date::now() - started;
    assert_eq!(
        stats_url(&c),
        relay_ws(),
        "connected through the second URL"
    );
    let names: Vec<String> = (0..states.count())
        .map(|i| states.field(i, &["state"]).as_string().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        vec!["connecting", "reconnecting", "connecting", "open"],
        "one refused attempt, then the second URL"
    );
    sleep(50).await;
    for n in 0..3 {
        http_publish(&ch, "updated", &format!(r#"{{"n":{n}}}"#)).await;
    }
    wait_until("the events through the second relay", 5_000, || {
        got.count() >= 3
    })
    .await;
    assert_eq!(numbers(&got), vec![0, 1, 2]);
    assert_eq!(stat(&c, "connections"), 1.0, "one connection reached hello");
    assert_eq!(stat(&c, "resyncs"), 0.0);
    let report = format!(
        r#"{{"test":"a_refused_first_url_fails_over_to_the_second","open_after_ms":{opened_after}}}"#
    );
    fetch("POST", &format!("{}/report", harness()), Some(&report)).await;
    c.close();
}

#[wasm_bindgen_test]
async fn a_lost_relay_fails_over_to_the_next_url_and_resumes_without_loss() {
    const BEFORE: usize = 5;
    const DURING: usize = 5;
    const AFTER: usize = 5;
    let ch = channel("failover-lost");
    // Both URLs reach the same relay process (so the same epoch, as nodes of one cluster do);
    // the first goes through the proxy the harness can take down.
    let c = client_to_relays(&[proxy_ws(), relay_ws()], &[]);
    let got = Recorder::new();
    c.subscribe(ch.clone(), all(), None, got.function.clone());
    wait_open(&c).await;
    assert_eq!(stats_url(&c), proxy_ws());
    sleep(50).await;

    let mut n = 0;
    for _ in 0..BEFORE {
        http_publish(&ch, "updated", &format!(r#"{{"n":{n}}}"#)).await;
        n += 1;
    }
    wait_until("the events before the loss", 5_000, || {
        got.count() >= BEFORE
    })
    .await;

    // Events the client cannot get from the first relay: held in the stalled proxy...
    harness_do("proxy/stall").await;
    for _ in 0..DURING {
        http_publish(&ch, "updated", &format!(r#"{{"n":{n}}}"#)).await;
        n += 1;
    }
    sleep(100).await;
    let before_loss = got.count();
    // ...then the first relay goes away for good: its connection is reset (the held events with
    // it) and it refuses new ones. The second relay must replay them from the position.
    harness_do("proxy/down").await;
    let lost_at = js_sys::Date::now();
    // Waits that do not panic before the proxy is restored for the tests after this one.
    let reopened = wait_for(10_000, || {
        c.state() == "open" && stat(&c, "connections") == 2.0
    })
    .await;
    let reopened_after = js_sys::Date::now() - lost_at;
    let url_after = stats_url(&c);
    for _ in 0..AFTER {
        http_publish(&ch, "updated", &format!(r#"{{"n":{n}}}"#)).await;
        n += 1;
    }
    let published = n;
    wait_for(10_000, || got.count() >= published).await;
    // Anything extra (a duplicate) would arrive now.
    sleep(300).await;
    harness_do("proxy/unstall").await;
    harness_do("proxy/up").await;
    assert!(reopened, "no connection through the second URL within 10 s");

    let received = numbers(&got);
    let (lost, duplicates) = lost_and_duplicated(&received, published);
    let report = format!(
        r#"{{"test":"a_lost_relay_fails_over","published":{published},"received":{},"lost":{lost},"duplicates":{duplicates},"resyncs":{},"replayed_duplicates_dropped":{},"connections":{},"reopened_after_ms":{reopened_after}}}"#,
        received.len(),
        stat(&c, "resyncs"),
        stat(&c, "duplicates"),
        stat(&c, "connections"),
    );
    fetch("POST", &format!("{}/report", harness()), Some(&report)).await;
    assert_eq!(url_after, relay_ws(), "the client moved to the second URL");
    assert_eq!(before_loss, BEFORE, "nothing passed the stalled proxy");
    assert_eq!(
        received,
        (0..published as i64).collect::<Vec<_>>(),
        "every event once, in order"
    );
    assert_eq!(stat(&c, "resyncs"), 0.0, "resumed from its position");
    assert_eq!(stat(&c, "connections"), 2.0);
    c.close();
}
