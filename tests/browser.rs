//! Browser tests of the wasm client against a real `live-relay` process.
//!
//! Run by `scripts/test-browser.sh` (through `tests/harness/relay-harness.mjs`), which starts the
//! relay, exposes a control endpoint that can restart it, and passes both URLs at compile time.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use js_sys::{Array, Reflect};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use wasm_live_provider::LiveClient;

wasm_bindgen_test_configure!(run_in_browser);

fn client() -> LiveClient {
    client_to(relay_ws(), &[])
}

#[wasm_bindgen_test]
async fn one_provider_publishes_the_other_receives() {
    let ch = channel("two-providers");
    let (a, b) = (client(), client());
    let got = Recorder::new();
    b.subscribe(ch.clone(), all(), None, got.function.clone());
    wait_open(&b).await;
    sleep(50).await; // let the subscribe frame reach the relay

    let meta = r#"{"dataProviderName":"default"}"#.to_owned();
    let ack = JsFuture::from(a.publish(
        ch.clone(),
        "updated".into(),
        r#"{"ids":[7],"title":"hi"}"#.into(),
        1.7e12,
        Some(meta),
    ))
    .await
    .expect("acked");
    let seq = Reflect::get(&ack, &"seq".into())
        .expect("seq")
        .as_f64()
        .expect("a number");
    assert!(seq >= 1.0);

    wait_until("b to receive the event", 5_000, || got.count() == 1).await;
    assert_eq!(
        got.field(0, &["channel"]).as_string().as_deref(),
        Some(ch.as_str())
    );
    assert_eq!(
        got.field(0, &["type"]).as_string().as_deref(),
        Some("updated")
    );
    assert_eq!(
        got.field(0, &["payload", "title"]).as_string().as_deref(),
        Some("hi")
    );
    assert_eq!(
        got.field(0, &["meta", "dataProviderName"])
            .as_string()
            .as_deref(),
        Some("default")
    );
    let ids: Array = got.field(0, &["payload", "ids"]).unchecked_into();
    assert_eq!(
        ids.get(0).as_f64(),
        Some(7.0),
        "the payload reaches the app as it was published"
    );
    let date = got.field(0, &["date"]);
    assert!(date.is_instance_of::<js_sys::Date>(), "date is a Date");
    assert_eq!(date.unchecked_into::<js_sys::Date>().get_time(), 1.7e12);
    a.close();
    b.close();
}

#[wasm_bindgen_test]
async fn id_filter_drops_other_records_but_passes_created() {
    let ch = channel("ids");
    let c = client();
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
    sleep(50).await;

    publish(&c, &ch, "updated", r#"{"ids":[3]}"#).await;
    publish(&c, &ch, "created", r#"{"ids":[3]}"#).await;
    publish(&c, &ch, "updated", r#"{"ids":[2]}"#).await;
    wait_until("the list subscription to see all three", 5_000, || {
        list.count() == 3
    })
    .await;
    assert_eq!(
        one2.count(),
        2,
        "ids [2] gets `created` for 3 and `updated` for 2, not `updated` for 3"
    );
    assert_eq!(
        one2.field(0, &["type"]).as_string().as_deref(),
        Some("created")
    );
    assert_eq!(
        one2.field(1, &["type"]).as_string().as_deref(),
        Some("updated")
    );
    c.close();
}

#[wasm_bindgen_test]
async fn unsubscribe_stops_delivery() {
    let ch = channel("unsubscribe");
    let c = client();
    let kept = Recorder::new();
    let dropped = Recorder::new();
    c.subscribe(ch.clone(), all(), None, kept.function.clone());
    let id = c.subscribe(ch.clone(), all(), None, dropped.function.clone());
    wait_open(&c).await;
    sleep(50).await;
    publish(&c, &ch, "updated", "{}").await;
    wait_until("both to receive the first event", 5_000, || {
        kept.count() == 1 && dropped.count() == 1
    })
    .await;

    assert!(c.unsubscribe(id));
    assert!(
        !c.unsubscribe(id),
        "a second unsubscribe reports it was already gone"
    );
    publish(&c, &ch, "updated", "{}").await;
    wait_until(
        "the kept subscription to receive the second event",
        5_000,
        || kept.count() == 2,
    )
    .await;
    assert_eq!(dropped.count(), 1, "no delivery after unsubscribe");
    assert_eq!(c.subscription_count(), 1);
    c.close();
}

#[wasm_bindgen_test]
async fn relay_restart_resyncs_once_and_delivery_resumes() {
    let ch = channel("restart");
    let states = Rc::new(RefCell::new(Vec::<String>::new()));
    let errors = Rc::new(RefCell::new(Vec::<String>::new()));
    let sink = states.clone();
    let on_state = Closure::<dyn FnMut(JsValue)>::new(move |s: JsValue| {
        let name = Reflect::get(&s, &"state".into())
            .ok()
            .and_then(|v| v.as_string());
        sink.borrow_mut().push(name.unwrap_or_default());
    });
    let error_sink = errors.clone();
    let on_error = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        error_sink.borrow_mut().push(format!("{e:?}"));
    });
    let c = client_to(
        relay_ws(),
        &[
            ("onStateChange", on_state.as_ref().clone()),
            ("onError", on_error.as_ref().clone()),
        ],
    );
    let list = Recorder::new();
    let one = Recorder::new();
    c.subscribe(ch.clone(), all(), None, list.function.clone());
    c.subscribe(
        ch.clone(),
        vec!["deleted".into()],
        Some(vec!["9".into()]),
        one.function.clone(),
    );
    wait_open(&c).await;
    sleep(50).await;
    publish(&c, &ch, "updated", r#"{"ids":[1]}"#).await;
    wait_until("the first event", 5_000, || list.count() == 1).await;

    // Kill the relay process and start a new one (new epoch, no history) on the same port.
    harness_do("restart").await;
    wait_until("the resync after the restart", 10_000, || {
        list.count() == 2 && one.count() == 1
    })
    .await;
    assert!(
        states.borrow().iter().any(|s| s == "reconnecting"),
        "{:?}",
        states.borrow()
    );
    assert_eq!(list.types(), vec!["updated", "$resync"]);
    assert_eq!(
        one.types(),
        vec!["$resync"],
        "a resync reaches every subscription, whatever its filter"
    );
    assert_eq!(list.field(1, &["meta", "resync"]).as_bool(), Some(true));
    let reason = list
        .field(1, &["meta", "reason"])
        .as_string()
        .unwrap_or_default();
    assert!(reason.contains("restarted"), "{reason}");

    publish(&c, &ch, "updated", r#"{"ids":[2]}"#).await;
    wait_until("delivery after the restart", 5_000, || list.count() == 3).await;
    sleep(100).await;
    assert_eq!(
        list.types(),
        vec!["updated", "$resync", "updated"],
        "exactly one resync"
    );
    assert!(
        errors.borrow().is_empty(),
        "a restart is not an error: {:?}",
        errors.borrow()
    );
    c.close();
    drop((on_state, on_error));
}
