//! Browser tests of the wasm client against a real `live-relay` process.
//!
//! Run by `scripts/test-browser.sh` (through `tests/harness/relay-harness.mjs`), which starts the
//! relay, exposes a control endpoint that can restart it, and passes both URLs at compile time.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Function, Reflect};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use wasm_live_provider::LiveClient;

wasm_bindgen_test_configure!(run_in_browser);

fn relay_ws() -> &'static str {
    match option_env!("LIVE_RELAY_WS") {
        Some(url) => url,
        None => panic!("LIVE_RELAY_WS is not set: run these tests with scripts/test-browser.sh"),
    }
}

fn harness() -> &'static str {
    match option_env!("LIVE_HARNESS_URL") {
        Some(url) => url,
        None => panic!("LIVE_HARNESS_URL is not set: run these tests with scripts/test-browser.sh"),
    }
}

/// A unique channel per test, so tests sharing the relay do not see each other's events.
fn channel(name: &str) -> String {
    format!("test/{name}/{}", js_sys::Math::random().to_bits())
}

async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        let set_timeout: Function = Reflect::get(&global, &"setTimeout".into())
            .expect("setTimeout exists")
            .unchecked_into();
        set_timeout
            .call2(&JsValue::NULL, &resolve, &JsValue::from(ms))
            .expect("setTimeout works");
    });
    JsFuture::from(promise).await.expect("sleep resolves");
}

/// Waits until `cond` holds, checking every 20 ms, for at most `timeout_ms`.
async fn wait_until(what: &str, timeout_ms: i32, cond: impl Fn() -> bool) {
    let mut waited = 0;
    while !cond() {
        assert!(
            waited < timeout_ms,
            "timed out after {timeout_ms} ms waiting for {what}"
        );
        sleep(20).await;
        waited += 20;
    }
}

/// A callback that records the events it receives.
struct Recorder {
    events: Rc<RefCell<Vec<JsValue>>>,
    function: Function,
}

impl Recorder {
    fn new() -> Self {
        let events = Rc::new(RefCell::new(Vec::new()));
        let sink = events.clone();
        let function =
            Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| sink.borrow_mut().push(e))
                .into_js_value()
                .unchecked_into();
        Recorder { events, function }
    }
    fn count(&self) -> usize {
        self.events.borrow().len()
    }
    fn field(&self, i: usize, path: &[&str]) -> JsValue {
        let mut v = self.events.borrow()[i].clone();
        for key in path {
            v = Reflect::get(&v, &JsValue::from_str(key)).expect("field readable");
        }
        v
    }
}

fn client() -> LiveClient {
    let options = js_sys::Object::new();
    // Quick retries, so the restart test does not wait for the default backoff.
    Reflect::set(&options, &"backoffMinMs".into(), &50.into()).expect("set");
    Reflect::set(&options, &"backoffMaxMs".into(), &500.into()).expect("set");
    LiveClient::new(relay_ws().to_owned(), &options).expect("client")
}

fn all() -> Vec<String> {
    vec!["*".to_owned()]
}

async fn publish(client: &LiveClient, channel: &str, kind: &str, payload: &str) -> JsValue {
    let date = js_sys::Date::now();
    JsFuture::from(client.publish(channel.into(), kind.into(), payload.into(), date, None))
        .await
        .expect("the relay acks the publish")
}

async fn wait_open(c: &LiveClient) {
    wait_until("the connection to open", 5_000, || c.state() == "open").await;
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
async fn relay_restart_does_not_throw_and_delivery_resumes() {
    let ch = channel("restart");
    let states = Rc::new(RefCell::new(Vec::<String>::new()));
    let errors = Rc::new(RefCell::new(0u32));
    let options = js_sys::Object::new();
    Reflect::set(&options, &"backoffMinMs".into(), &50.into()).expect("set");
    Reflect::set(&options, &"backoffMaxMs".into(), &500.into()).expect("set");
    let sink = states.clone();
    let on_state = Closure::<dyn FnMut(JsValue)>::new(move |s: JsValue| {
        let name = Reflect::get(&s, &"state".into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default();
        sink.borrow_mut().push(name);
    });
    let error_count = errors.clone();
    let on_error =
        Closure::<dyn FnMut(JsValue)>::new(move |_e: JsValue| *error_count.borrow_mut() += 1);
    Reflect::set(&options, &"onStateChange".into(), on_state.as_ref()).expect("set");
    Reflect::set(&options, &"onError".into(), on_error.as_ref()).expect("set");
    let c = LiveClient::new(relay_ws().to_owned(), &options).expect("client");
    let got = Recorder::new();
    c.subscribe(ch.clone(), all(), None, got.function.clone());
    wait_open(&c).await;

    // Kill the relay process and start a new one on the same port.
    let window = web_sys::window().expect("a window");
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    let url = format!("{}/restart", harness());
    let response = JsFuture::from(window.fetch_with_str_and_init(&url, &init))
        .await
        .expect("harness answers");
    let response: web_sys::Response = response.unchecked_into();
    assert!(response.ok(), "the harness restarted the relay");

    wait_until("the client to notice and come back", 10_000, || {
        states.borrow().iter().any(|s| s == "reconnecting") && c.state() == "open"
    })
    .await;
    sleep(100).await; // the resubscribe frame follows hello
    publish(&c, &ch, "updated", r#"{"ids":[1]}"#).await;
    wait_until("delivery after the restart", 5_000, || got.count() == 1).await;
    assert_eq!(
        *errors.borrow(),
        0,
        "a restart is not an error: nothing malformed came in"
    );
    c.close();
    drop((on_state, on_error));
}
