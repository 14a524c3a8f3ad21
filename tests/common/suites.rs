//! Delivery and filtering suites, run over every transport (tests/browser.rs: WebSocket;
//! tests/sse.rs: Server-Sent Events), so that both filter identically.

use super::*;
use js_sys::{Array, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_live_provider::LiveClient;

pub async fn one_provider_publishes_the_other_receives(make: fn() -> LiveClient) {
    let ch = channel("two-providers");
    let (a, b) = (make(), make());
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

pub async fn id_filter_drops_other_records_but_passes_created(make: fn() -> LiveClient) {
    let ch = channel("ids");
    let c = make();
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

pub async fn unsubscribe_stops_delivery(make: fn() -> LiveClient) {
    let ch = channel("unsubscribe");
    let c = make();
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
