//! Authentication against a real relay with `--jwt-secret` (started by the harness, which also mints
//! its tokens): in-band refresh under a numbered stream, forbidden channels, SSE through a ticket, and
//! a failing `getToken`. Run by `scripts/test-browser.sh` (see tests/harness/relay-harness.mjs).
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use js_sys::{Function, Promise, Reflect};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use wasm_bindgen_test::*;
use wasm_live_provider::LiveClient;

wasm_bindgen_test_configure!(run_in_browser);

fn auth_env(value: Option<&'static str>, name: &str) -> &'static str {
    match value {
        Some(url) if !url.is_empty() => url,
        Some(_) => panic!(
            "{name} is empty: the harness could not start live-relay with --jwt-secret (see its log)"
        ),
        None => panic!("{name} is not set: run these tests with scripts/test-browser.sh"),
    }
}

/// The WebSocket endpoint of the relay with authentication on.
fn auth_ws() -> &'static str {
    auth_env(option_env!("LIVE_AUTH_RELAY_WS"), "LIVE_AUTH_RELAY_WS")
}

/// The HTTP base of the relay with authentication on.
fn auth_http() -> &'static str {
    auth_env(option_env!("LIVE_AUTH_RELAY_HTTP"), "LIVE_AUTH_RELAY_HTTP")
}

/// A token from the harness (`sub=u1&ttl_ms=2000&channels=test/*&publish=…`).
async fn mint(query: &str) -> String {
    fetch("GET", &format!("{}/token?{query}", harness()), None).await
}

/// A `getToken` function that mints tokens with `query`, counts its calls and can be made to fail.
struct TokenGetter {
    calls: Rc<Cell<u32>>,
    failing: Rc<Cell<bool>>,
    function: Function,
}

impl TokenGetter {
    fn new(query: &str) -> Self {
        let calls = Rc::new(Cell::new(0));
        let failing = Rc::new(Cell::new(false));
        let (c, f, q) = (calls.clone(), failing.clone(), query.to_owned());
        let function = Closure::<dyn FnMut() -> Promise>::new(move || {
            c.set(c.get() + 1);
            if f.get() {
                return Promise::reject(&js_sys::Error::new("the token service is down").into());
            }
            let q = q.clone();
            future_to_promise(async move { Ok(JsValue::from(mint(&q).await)) })
        })
        .into_js_value()
        .unchecked_into();
        TokenGetter {
            calls,
            failing,
            function,
        }
    }
}

/// POSTs an event to the auth relay's `/publish` as a backend holding `token`.
async fn publish_as(token: &str, channel: &str, payload: &str) {
    let body = format!(r#"{{"channel":"{channel}","type":"updated","payload":{payload}}}"#);
    let url = format!("{}/publish", auth_http());
    fetch_as(Some(token), "POST", &url, Some(&body)).await;
}

/// The `n` field of every recorded event, in order.
fn numbers(r: &Recorder) -> Vec<f64> {
    (0..r.count())
        .map(|i| r.field(i, &["payload", "n"]).as_f64().unwrap_or(-1.0))
        .collect()
}

fn stat(c: &LiveClient, name: &str) -> f64 {
    Reflect::get(&c.stats(), &name.into())
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(-1.0)
}

/// Publishes a numbered stream on `channel` for `ms` milliseconds; returns how many were published.
async fn numbered_stream(publisher: &str, channel: &str, first: usize, ms: f64) -> usize {
    let start = js_sys::Date::now();
    let mut n = first;
    while js_sys::Date::now() - start < ms {
        publish_as(publisher, channel, &format!(r#"{{"n":{n}}}"#)).await;
        n += 1;
        sleep(20).await;
    }
    n
}

/// Waits for the `n` events of a numbered stream, reports the figures to the harness as `test`
/// (`links` names what `stats.connections` counts: connections or streams) and returns the
/// numbers received, in order.
async fn report_stream(
    test: &str,
    links: &str,
    n: usize,
    got: &Recorder,
    calls: &std::cell::Cell<u32>,
    c: &LiveClient,
    errors: &Recorder,
) -> Vec<f64> {
    wait_until("every event", 10_000, || got.count() >= n).await;
    sleep(300).await;
    let received = numbers(got);
    let (lost, duplicated) = lost_and_duplicated(&received, n);
    let calls = calls.get();
    let report = format!(
        r#"{{"test":"{test}","published":{n},"received":{},"lost":{lost},"duplicated":{duplicated},"get_token_calls":{calls},"{links}":{},"errors":{}}}"#,
        received.len(),
        stat(c, "connections"),
        errors.count(),
    );
    fetch("POST", &format!("{}/report", harness()), Some(&report)).await;
    received
}

/// Lost and duplicated events of a numbered stream of `n`.
fn lost_and_duplicated(received: &[f64], n: usize) -> (usize, usize) {
    let distinct: std::collections::BTreeSet<i64> = received.iter().map(|x| *x as i64).collect();
    let lost = (0..n as i64).filter(|i| !distinct.contains(i)).count();
    (lost, received.len() - distinct.len())
}

#[wasm_bindgen_test]
async fn get_token_refreshes_in_band_under_a_numbered_stream() {
    let ch = channel("auth-refresh");
    let getter = TokenGetter::new("sub=u1&ttl_ms=2000&channels=test/*");
    let errors = Recorder::new();
    let c = client_to(
        auth_ws(),
        &[
            ("getToken", getter.function.clone().into()),
            ("onError", errors.function.clone().into()),
        ],
    );
    let got = Recorder::new();
    let sub = c.subscribe(ch.clone(), all(), None, got.function.clone());
    wait_open(&c).await;
    wait_until("the subscription to be confirmed", 5_000, || {
        c.subscription_state(sub) == "subscribed"
    })
    .await;
    let publisher = mint("sub=backend&ttl_ms=120000&publish=*").await;
    let n = numbered_stream(&publisher, &ch, 0, 10_000.0).await;
    let received = report_stream(
        "auth_refresh_ws",
        "connections",
        n,
        &got,
        &getter.calls,
        &c,
        &errors,
    )
    .await;
    let calls = getter.calls.get();
    let expected: Vec<f64> = (0..n).map(|i| i as f64).collect();
    assert_eq!(received, expected, "every event once, in order");
    assert!(
        calls >= 5,
        "2 s tokens over 10 s: refreshed several times, got {calls} getToken calls"
    );
    assert_eq!(
        stat(&c, "connections"),
        1.0,
        "refreshed in-band: the first connection carried the whole stream"
    );
    assert_eq!(errors.count(), 0, "no error on the way");
    c.close();
}

#[wasm_bindgen_test]
async fn a_forbidden_channel_reaches_on_error_and_its_state_while_allowed_ones_flow() {
    let allowed = channel("auth-allowed");
    let secret = format!("secret/{}", js_sys::Math::random().to_bits());
    let getter = TokenGetter::new("sub=u1&ttl_ms=60000&channels=test/*");
    let errors = Recorder::new();
    let c = client_to(
        auth_ws(),
        &[
            ("getToken", getter.function.clone().into()),
            ("onError", errors.function.clone().into()),
        ],
    );
    let (got_allowed, got_secret) = (Recorder::new(), Recorder::new());
    let a = c.subscribe(allowed.clone(), all(), None, got_allowed.function.clone());
    let s = c.subscribe(secret.clone(), all(), None, got_secret.function.clone());
    wait_open(&c).await;
    wait_until("the forbidden error", 5_000, || errors.count() >= 1).await;
    assert_eq!(
        errors.field(0, &["code"]).as_string().as_deref(),
        Some("forbidden")
    );
    assert_eq!(
        errors.field(0, &["channel"]).as_string().as_deref(),
        Some(secret.as_str())
    );
    assert_eq!(
        errors.field(0, &["name"]).as_string().as_deref(),
        Some("LiveProviderError")
    );
    assert_eq!(c.subscription_state(s), "forbidden");
    wait_until("the allowed channel confirmed", 5_000, || {
        c.subscription_state(a) == "subscribed"
    })
    .await;

    let publisher = mint("sub=backend&ttl_ms=60000&publish=*").await;
    for n in 0..3 {
        publish_as(&publisher, &allowed, &format!(r#"{{"n":{n}}}"#)).await;
        publish_as(&publisher, &secret, &format!(r#"{{"n":{n}}}"#)).await;
    }
    wait_until("the allowed channel's events", 5_000, || {
        got_allowed.count() == 3
    })
    .await;
    sleep(200).await;
    assert_eq!(numbers(&got_allowed), vec![0.0, 1.0, 2.0]);
    assert_eq!(got_secret.count(), 0, "nothing from the refused channel");

    // The token allows no publish: the relay's refusal reaches the promise.
    let refused = JsFuture::from(c.publish(
        allowed.clone(),
        "updated".into(),
        "{}".into(),
        js_sys::Date::now(),
        None,
    ))
    .await
    .expect_err("a publish the token does not allow is rejected");
    assert_eq!(
        Reflect::get(&refused, &"relayCode".into())
            .ok()
            .and_then(|v| v.as_string())
            .as_deref(),
        Some("forbidden")
    );
    assert_eq!(errors.count(), 1, "the forbidden channel is reported once");
    assert!(c.unsubscribe(s));
    assert_eq!(c.subscription_state(s), "ended");
    c.close();
}

#[wasm_bindgen_test]
async fn sse_with_get_token_opens_through_a_ticket_and_reopens_before_expiry() {
    let ch = channel("auth-sse");
    let getter = TokenGetter::new("sub=u1&ttl_ms=2000&channels=test/*&publish=test/*");
    let errors = Recorder::new();
    let c = client_to(
        &format!("{}/sse", auth_http()),
        &[
            ("transport", "sse".into()),
            ("sseUrl", format!("{}/sse", auth_http()).into()),
            ("publishUrl", format!("{}/publish", auth_http()).into()),
            ("getToken", getter.function.clone().into()),
            ("onError", errors.function.clone().into()),
        ],
    );
    let got = Recorder::new();
    let sub = c.subscribe(ch.clone(), all(), None, got.function.clone());
    wait_open(&c).await;
    wait_until("the subscription to be confirmed", 5_000, || {
        c.subscription_state(sub) == "subscribed"
    })
    .await;
    // The client's own publish goes over HTTP with its token.
    publish(&c, &ch, "updated", r#"{"n":0}"#).await;
    wait_until("the client's own publish", 5_000, || got.count() == 1).await;
    let publisher = mint("sub=backend&ttl_ms=120000&publish=*").await;
    let n = numbered_stream(&publisher, &ch, 1, 5_000.0).await;
    let received = report_stream(
        "auth_refresh_sse",
        "streams",
        n,
        &got,
        &getter.calls,
        &c,
        &errors,
    )
    .await;
    let calls = getter.calls.get();
    let expected: Vec<f64> = (0..n).map(|i| i as f64).collect();
    assert_eq!(
        received, expected,
        "every event once, in order, across reopens"
    );
    // 2 s tokens (2-3 s with whole-second `exp`) over 5 s: reopened at least once before expiry —
    // an expiry would have reached onError as `unauthorized`.
    assert!(calls >= 2, "tokens refreshed: {calls} getToken calls");
    assert!(
        stat(&c, "connections") >= 2.0,
        "the stream was reopened with a new ticket"
    );
    assert_eq!(errors.count(), 0, "no error on the way (no expiry)");
    c.close();
}

#[wasm_bindgen_test]
async fn a_rejecting_get_token_shows_reconnecting_and_recovers() {
    let ch = channel("auth-failing");
    let getter = TokenGetter::new("sub=u1&ttl_ms=60000&channels=test/*");
    getter.failing.set(true);
    let errors = Recorder::new();
    let states = Rc::new(RefCell::new(Vec::<(String, String)>::new()));
    let sink = states.clone();
    let on_state: Function = Closure::<dyn FnMut(JsValue)>::new(move |s: JsValue| {
        let get = |k: &str| {
            Reflect::get(&s, &k.into())
                .ok()
                .and_then(|v| v.as_string())
                .unwrap_or_default()
        };
        sink.borrow_mut().push((get("state"), get("reason")));
    })
    .into_js_value()
    .unchecked_into();
    let c = client_to(
        auth_ws(),
        &[
            ("getToken", getter.function.clone().into()),
            ("onError", errors.function.clone().into()),
            ("onStateChange", on_state.into()),
        ],
    );
    let got = Recorder::new();
    c.subscribe(ch.clone(), all(), None, got.function.clone());
    wait_until("two failed attempts", 5_000, || getter.calls.get() >= 2).await;
    assert!(
        states
            .borrow()
            .iter()
            .any(|(s, reason)| s == "reconnecting" && reason.contains("getToken")),
        "{:?}",
        states.borrow()
    );
    assert_eq!(
        errors.field(0, &["code"]).as_string().as_deref(),
        Some("get_token")
    );
    assert!(errors
        .field(0, &["message"])
        .as_string()
        .unwrap_or_default()
        .contains("the token service is down"));
    assert_ne!(c.state(), "open");
    getter.failing.set(false);
    wait_open(&c).await;
    let publisher = mint("sub=backend&ttl_ms=60000&publish=*").await;
    sleep(100).await;
    publish_as(&publisher, &ch, r#"{"n":0}"#).await;
    wait_until("delivery once getToken works", 5_000, || got.count() == 1).await;
    c.close();
}

#[wasm_bindgen_test]
async fn a_fixed_token_works_and_a_relay_without_authentication_accepts_it() {
    let token = mint("sub=u1&ttl_ms=60000&channels=test/*&publish=test/*").await;
    for url in [auth_ws(), relay_ws()] {
        let ch = channel("auth-fixed");
        let errors = Recorder::new();
        let c = client_to(
            url,
            &[
                ("token", token.clone().into()),
                ("onError", errors.function.clone().into()),
            ],
        );
        let got = Recorder::new();
        c.subscribe(ch.clone(), all(), None, got.function.clone());
        wait_open(&c).await;
        publish(&c, &ch, "updated", r#"{"n":0}"#).await;
        wait_until("delivery with a fixed token", 5_000, || got.count() == 1).await;
        assert_eq!(errors.count(), 0, "{url}: no error");
        c.close();
    }
}
