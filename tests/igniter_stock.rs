//! `flavor: "igniter"` against a stock Igniter.js app (tests/igniter/stock-server.mjs, started by the
//! harness): every channel is registered by the app's own controllers (`posts.list`, `posts.show`),
//! nothing is auto-registered. A channel the app never registered is refused (Igniter's HTTP 500),
//! reported and dropped while the others flow; dotted revalidation keys match TanStack keys written
//! either way; a change of the channel set costs no resync and no event; a server that was down is
//! reached again within the Igniter backoff cap.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;
use wasm_live_provider::LiveClient;

wasm_bindgen_test_configure!(run_in_browser);

fn stock() -> &'static str {
    match option_env!("LIVE_IGNITER_STOCK_URL") {
        Some(url) if !url.is_empty() => url,
        _ => panic!(
            "LIVE_IGNITER_STOCK_URL is not set: run these tests with scripts/test-browser.sh"
        ),
    }
}

fn stream_url() -> String {
    format!("{}/api/v1/sse/events", stock())
}

/// An Igniter client with the library's defaults for this flavor (no test backoff), reporting
/// errors to `errors`.
fn stock_client(errors: &Recorder) -> LiveClient {
    let url = stream_url();
    let opts = [
        ("transport", "sse".into()),
        ("sseUrl", url.clone().into()),
        ("flavor", "igniter".into()),
        ("onError", errors.function.clone().into()),
    ];
    new_client(&url.into(), &opts).expect("client")
}

/// Creates a post through the app's own mutation (it publishes `created` on `posts.list` and
/// revalidates `posts.list`); returns its id.
async fn create_post(title: &str) -> i64 {
    let body = format!(r#"{{"title":"{title}"}}"#);
    let text = fetch("POST", &format!("{}/api/v1/posts/", stock()), Some(&body)).await;
    let answer = js_sys::JSON::parse(&text).unwrap_or(JsValue::NULL);
    Reflect::get(&answer, &"data".into())
        .and_then(|d| Reflect::get(&d, &"id".into()))
        .ok()
        .and_then(|id| id.as_f64())
        .unwrap_or_else(|| panic!("the app did not create a post: {text}")) as i64
}

fn text(v: &JsValue) -> String {
    if let Some(s) = v.as_string() {
        return s;
    }
    js_sys::JSON::stringify(v)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default()
}

/// `payload.ids[0]` of every event `got` received.
fn first_ids(got: &Recorder) -> Vec<i64> {
    (0..got.count())
        .map(|i| {
            let ids = got.field(i, &["payload", "ids"]);
            Reflect::get(&ids, &0.into())
                .ok()
                .and_then(|v| v.as_f64())
                .map_or(-1, |v| v as i64)
        })
        .collect()
}

#[wasm_bindgen_test]
async fn a_refused_channel_is_reported_and_dropped_while_the_others_flow() {
    let errors = Recorder::new();
    let c = stock_client(&errors);
    let list = Recorder::new();
    let refine = Recorder::new();
    let list_id = c.subscribe("posts.list".into(), all(), None, list.function.clone());
    let refine_id = c.subscribe(
        "resources/posts".into(),
        all(),
        None,
        refine.function.clone(),
    );
    wait_open(&c).await;

    assert_eq!(errors.count(), 1, "one error for the refused channel");
    assert_eq!(text(&errors.field(0, &["code"])), "refused");
    assert_eq!(text(&errors.field(0, &["channel"])), "resources/posts");
    let message = text(&errors.field(0, &["message"]));
    assert!(
        message.contains("`resources/posts`") && message.contains("HTTP 500"),
        "the error names the channel and the status: {message}"
    );
    assert_eq!(c.subscription_state(refine_id), "forbidden");
    assert_eq!(c.subscription_state(list_id), "subscribed");
    assert!(stat(&c, "problems") >= 1.0, "counted in stats.problems");

    let id = create_post("refused-test").await;
    wait_until("the created event on posts.list", 5_000, || {
        list.count() == 1
    })
    .await;
    assert_eq!(list.types(), vec!["created"]);
    assert_eq!(first_ids(&list), vec![id]);
    assert_eq!(refine.count(), 0);

    // Not retried in a loop: a while later, still one error and the same connection.
    let connections = stat(&c, "connections");
    sleep(1_500).await;
    assert_eq!(errors.count(), 1, "reported once");
    assert_eq!(stat(&c, "connections"), connections, "no reconnects");
    assert_eq!(c.state(), "open");

    // Refused while open: the new stream fails, the one in use goes on, nothing is resynced.
    let users = Recorder::new();
    let users_id = c.subscribe(
        "resources/users".into(),
        all(),
        None,
        users.function.clone(),
    );
    wait_until("the second refusal", 5_000, || errors.count() == 2).await;
    assert_eq!(text(&errors.field(1, &["channel"])), "resources/users");
    wait_open(&c).await;
    assert_eq!(c.subscription_state(users_id), "forbidden");
    let id = create_post("refused-while-open").await;
    wait_until("the next created event", 5_000, || list.count() == 2).await;
    assert_eq!(first_ids(&list)[1], id);
    assert_eq!(stat(&c, "resyncs"), 0.0, "posts.list was never interrupted");
    assert_eq!(list.types(), vec!["created", "created"]);
    c.close();
}

#[wasm_bindgen_test]
async fn dotted_revalidation_keys_match_tanstack_keys_written_either_way() {
    let errors = Recorder::new();
    let c = stock_client(&errors);
    let got = Recorder::new();
    c.subscribe("$revalidate".into(), all(), None, got.function.clone());
    wait_open(&c).await;
    create_post("keys-test").await;
    wait_until("the revalidation", 5_000, || got.count() == 1).await;
    let keys = got.field(0, &["payload", "keys"]);
    assert_eq!(text(&keys), r#"[["posts.list"],["posts","list"]]"#);
    // TanStack Query's prefix match (element by element), as `invalidateQueries({ queryKey })` does.
    let keys: Vec<Vec<String>> = js_sys::Array::from(&keys)
        .iter()
        .map(|k| js_sys::Array::from(&k).iter().map(|p| text(&p)).collect())
        .collect();
    let refetched = |query: &[&str]| {
        keys.iter()
            .any(|k| k.len() <= query.len() && k.iter().zip(query).all(|(a, b)| a == b))
    };
    assert!(refetched(&["posts", "list", r#"{"page":1}"#]));
    assert!(refetched(&["posts.list", r#"{"page":1}"#]));
    assert!(!refetched(&["posts", "show", "1"]));
    assert!(!refetched(&["posts.show", "1"]));
    assert_eq!(errors.count(), 0);
    c.close();
}

#[wasm_bindgen_test]
async fn a_channel_change_costs_no_resync_and_no_event() {
    let errors = Recorder::new();
    let c = stock_client(&errors);
    let list = Recorder::new();
    let revalidations = Recorder::new();
    c.subscribe("posts.list".into(), all(), None, list.function.clone());
    c.subscribe(
        "$revalidate".into(),
        all(),
        None,
        revalidations.function.clone(),
    );
    wait_open(&c).await;
    let connections = stat(&c, "connections");

    // Posts are created back to back while the channel set changes twice (a subscription to
    // `posts.show`, then its end): each reopens the stream.
    let show = Recorder::new();
    let mut created = Vec::new();
    let mut show_id = None;
    for i in 0..16 {
        if i == 3 {
            show_id = Some(c.subscribe("posts.show".into(), all(), None, show.function.clone()));
        }
        if i == 10 {
            if let Some(id) = show_id.take() {
                c.unsubscribe(id);
            }
        }
        created.push(create_post(&format!("overlap-{i}")).await);
        sleep(25).await;
    }
    wait_until("every created event", 5_000, || {
        list.count() >= created.len()
    })
    .await;
    sleep(300).await;
    assert_eq!(first_ids(&list), created, "each event once, in order");
    assert!(
        list.types().iter().all(|t| t == "created"),
        "{:?}",
        list.types()
    );
    assert!(
        (0..revalidations.count())
            .all(|i| text(&revalidations.field(i, &["type"])) == "revalidate"),
        "no `$resync`: nothing refetches everything"
    );
    assert_eq!(
        revalidations.count(),
        created.len(),
        "one revalidation per post"
    );
    assert_eq!(stat(&c, "resyncs"), 0.0);
    assert!(
        stat(&c, "duplicates") >= 1.0,
        "events arrived on both streams during the overlaps, and were dropped once"
    );
    assert!(
        stat(&c, "connections") >= connections + 2.0,
        "the stream was reopened for each change"
    );
    assert_eq!(errors.count(), 0);
    c.close();
}

#[wasm_bindgen_test]
async fn a_server_that_was_down_is_reached_again_quickly() {
    let errors = Recorder::new();
    let states = Recorder::new();
    let url = stream_url();
    let opts = [
        ("transport", "sse".into()),
        ("flavor", "igniter".into()),
        ("onError", errors.function.clone().into()),
        ("onStateChange", states.function.clone().into()),
    ];
    let c = new_client(&url.into(), &opts).expect("client");
    let list = Recorder::new();
    c.subscribe("posts.list".into(), all(), None, list.function.clone());
    wait_open(&c).await;
    sleep(300).await; // useful for a while: the backoff starts from the smallest delay

    let outage_ms = 6_000;
    fetch(
        "POST",
        &format!("{}/__outage?ms={outage_ms}", stock()),
        None,
    )
    .await;
    let cut = js_sys::Date::now();
    let before = states.count();
    wait_until("the loss to be noticed", 3_000, || c.state() != "open").await;
    wait_until("the server to be reached again", outage_ms + 10_000, || {
        c.state() == "open"
    })
    .await;
    let back_after = js_sys::Date::now() - cut - f64::from(outage_ms);
    let delays: Vec<f64> = (before..states.count())
        .filter_map(|i| states.field(i, &["delayMs"]).as_f64())
        .collect();
    let longest = delays.iter().copied().fold(0.0, f64::max);
    assert!(
        delays.len() >= 3,
        "several attempts during the outage: {delays:?}"
    );
    // Igniter keeps no history, so a longer wait saves nothing: the delays stay within its cap.
    assert!(
        longest <= 2_000.0,
        "every reconnect delay within 2 s with Igniter: {delays:?}"
    );
    assert!(
        back_after < 3_000.0,
        "open again {back_after:.0} ms after a {outage_ms} ms outage ended (delays {delays:?})"
    );
    let id = create_post("after-outage").await;
    wait_until("an event after the outage", 5_000, || {
        first_ids(&list).contains(&id)
    })
    .await;
    assert_eq!(errors.count(), 0, "an outage refuses no channel");
    c.close();
}
