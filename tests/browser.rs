//! Browser tests of the wasm client against a real `live-relay` process.
//!
//! Run by `scripts/test-browser.sh` (through `tests/harness/relay-harness.mjs`), which starts the
//! relay, exposes a control endpoint that can restart it, and passes both URLs at compile time.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use js_sys::Reflect;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;
use wasm_live_provider::LiveClient;

wasm_bindgen_test_configure!(run_in_browser);

fn client() -> LiveClient {
    client_to(relay_ws(), &[])
}

#[wasm_bindgen_test]
async fn one_provider_publishes_the_other_receives() {
    suites::one_provider_publishes_the_other_receives(client).await;
}

#[wasm_bindgen_test]
async fn id_filter_drops_other_records_but_passes_created() {
    suites::id_filter_drops_other_records_but_passes_created(client).await;
}

#[wasm_bindgen_test]
async fn unsubscribe_stops_delivery() {
    suites::unsubscribe_stops_delivery(client).await;
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

/// The JS entry checks the options and names the one at fault (tests/packed/misuse.test.mjs); what
/// `LiveClient::new` gets from it is read without a second set of checks, and odd input never
/// panics: what cannot work is one generic error, anything else of the wrong type a default.
#[wasm_bindgen_test]
fn odd_options_reaching_the_client_are_one_error_or_a_default_never_a_panic() {
    let refused = |url: JsValue, options: JsValue| {
        let Err(error) = LiveClient::new(url, &options) else {
            panic!("the options were accepted");
        };
        let message = Reflect::get(&error, &"message".into())
            .ok()
            .and_then(|m| m.as_string())
            .unwrap_or_default();
        assert!(message.starts_with("LiveClient: "), "{message}");
    };
    refused(string_array(&[]), options(&[]).into());
    refused(JsValue::from(3), options(&[]).into());
    refused(JsValue::UNDEFINED, JsValue::NULL);
    refused(
        "ws://a/ws".into(),
        options(&[("transport", "pigeon".into())]).into(),
    );

    // Wrong types are left at their defaults; endpoints missing from a list are empty.
    let odd = LiveClient::new(
        js_sys::Array::of2(&"ws://a/ws".into(), &3.into()).into(),
        &options(&[
            ("backoffMinMs", "10".into()),
            ("backoffMaxMs", f64::NAN.into()),
            ("maxFrameBytes", (-1).into()),
            ("onError", 5.into()),
            ("getToken", "t".into()),
            ("sseUrl", JsValue::NULL),
            ("publishUrl", string_array(&["http://a/publish"])),
        ]),
    );
    let odd = odd.unwrap_or_else(|e| panic!("refused: {e:?}"));
    assert_eq!(odd.state(), "idle");
    odd.close();
    let primitive = LiveClient::new("ws://a/ws".into(), &JsValue::from(5));
    primitive
        .unwrap_or_else(|e| panic!("refused: {e:?}"))
        .close();

    // Several relays, with the endpoints the JS entry derives.
    let ok = new_client(&string_array(&["ws://a/ws", "ws://b/ws"]), &[]);
    let ok = ok.unwrap_or_else(|e| panic!("refused: {e:?}"));
    assert_eq!(
        stats_url(&ok),
        "ws://a/ws",
        "nothing tried yet: the first URL"
    );
    ok.close();
}

/// Issue 11: an `event` frame is parsed in JS and its callbacks are called from JS. What a
/// callback throws still reaches `onError` (and the next callback still gets the event); a
/// callback that unsubscribes a later one stops it at once; one that closes the client stops
/// the rest. A float id (which JS hands to the engine as text) filters as before.
#[wasm_bindgen_test]
async fn callbacks_called_from_js_keep_their_contract() {
    let ch = channel("js-delivery");
    let errors = Rc::new(RefCell::new(Vec::<String>::new()));
    let sink = errors.clone();
    let on_error = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        let message = Reflect::get(&e, &"message".into())
            .ok()
            .and_then(|m| m.as_string());
        sink.borrow_mut().push(message.unwrap_or_default());
    });
    let c = Rc::new(client_to(
        relay_ws(),
        &[("onError", on_error.as_ref().clone())],
    ));
    let thrower = js_sys::Function::new_with_args("e", "throw new Error('boom ' + e.type)");
    c.subscribe(ch.clone(), all(), None, thrower);
    let after_thrower = Recorder::new();
    c.subscribe(ch.clone(), all(), None, after_thrower.function.clone());
    // A callback that ends the next subscription when it sees `deleted`.
    let victim = Rc::new(RefCell::new(0u32));
    let (client, target) = (c.clone(), victim.clone());
    let unsubscriber = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        let kind = Reflect::get(&e, &"type".into())
            .ok()
            .and_then(|t| t.as_string());
        if kind.as_deref() == Some("deleted") {
            client.unsubscribe(*target.borrow());
        }
    });
    c.subscribe(
        ch.clone(),
        all(),
        None,
        unsubscriber.as_ref().clone().into(),
    );
    let unsubscribed = Recorder::new();
    *victim.borrow_mut() = c.subscribe(ch.clone(), all(), None, unsubscribed.function.clone());
    let by_float = Recorder::new();
    c.subscribe(
        ch.clone(),
        all(),
        Some(vec!["2.5".into()]),
        by_float.function.clone(),
    );
    wait_open(&c).await;
    sleep(50).await;

    publish(&c, &ch, "updated", r#"{"ids":[1]}"#).await;
    publish(&c, &ch, "updated", r#"{"ids":[2.5]}"#).await;
    publish(&c, &ch, "deleted", r#"{"ids":[1]}"#).await;
    wait_until("three events", 5_000, || after_thrower.count() == 3).await;
    assert_eq!(after_thrower.types(), vec!["updated", "updated", "deleted"]);
    assert_eq!(
        unsubscribed.types(),
        vec!["updated", "updated"],
        "unsubscribed by an earlier callback of the same event"
    );
    assert_eq!(by_float.count(), 1, "the float id 2.5 matched once");
    assert_eq!(
        *errors.borrow(),
        vec!["boom updated", "boom updated", "boom deleted"],
        "each throw reached onError"
    );

    // A callback that closes its client: the callbacks after it get nothing.
    let ch2 = channel("js-delivery-close");
    let client = c.clone();
    let closer = Closure::<dyn FnMut(JsValue)>::new(move |_: JsValue| client.close());
    c.subscribe(ch2.clone(), all(), None, closer.as_ref().clone().into());
    let after_close = Recorder::new();
    c.subscribe(ch2.clone(), all(), None, after_close.function.clone());
    sleep(100).await;
    http_publish(&ch2, "updated", r#"{"ids":[1]}"#).await;
    wait_until("the client to close", 5_000, || c.state() == "closed").await;
    sleep(50).await;
    assert_eq!(
        after_close.count(),
        0,
        "nothing after the callback that closed the client"
    );
    drop((on_error, unsubscriber, closer));
}

/// The browser shell reads every WebSocket frame from the object `JSON.parse` made of it; the
/// engine reads SSE frames (and the tests' frames) from their text. Both must decode the same
/// frame, and refuse the same frames with the same words.
#[wasm_bindgen_test]
fn frames_read_from_the_parsed_object_decode_as_from_their_text() {
    const SAME: &[&str] = &[
        // Every op, well formed.
        r#"{"op":"hello","version":1,"epoch":"e1","ping_ms":25000}"#,
        r#"{"op":"subscribed","channels":[{"channel":"posts","seq":4},{"channel":"a","since":{"epoch":"e","seq":2},"recovered":true},{"channel":"b","recovered":false,"seq":null}]}"#,
        r#"{"op":"subscribed","channels":[]}"#,
        r#"{"op":"event","channel":"posts","seq":3,"type":"created","payload":{"ids":[1,"2",2.5]},"date":1712345678901}"#,
        r#"{"op":"event","channel":"posts","seq":3,"type":"x","payload":[1,{"a":"é\n"}],"date":-1.5,"meta":{"k":[true,null]}}"#,
        r#"{"op":"event","channel":"posts","seq":3,"type":"x","payload":"text","date":1e300,"meta":7}"#,
        r#"{"op":"skip","channel":"posts","seq":9}"#,
        r#"{"op":"ack","id":7,"seq":12}"#,
        r#"{"op":"authed","sub":"u1","ttl_ms":60000}"#,
        r#"{"op":"authed"}"#,
        r#"{"op":"error","code":"forbidden","message":"no","channel":"secret"}"#,
        r#"{"op":"error","code":"rate_limited","message":"slow down","id":3}"#,
        r#"{"op":"ping"}"#,
        r#"{"op":"pong","extra":{"ignored":[1,2]}}"#,
        r#"{"op":"ping","id":null,"channel":null}"#,
        // Refused, with the same words.
        r#"{}"#,
        r#"{"op":"nope"}"#,
        r#"{"op":7}"#,
        r#"{"op":"hello","version":1,"epoch":"e1"}"#,
        r#"{"op":"hello","version":-1,"epoch":"e1","ping_ms":1}"#,
        r#"{"op":"hello","version":4294967296,"epoch":"e1","ping_ms":1}"#,
        r#"{"op":"hello","version":1,"epoch":5,"ping_ms":1}"#,
        r#"{"op":"ack","id":1.5,"seq":1}"#,
        r#"{"op":"ack","id":1}"#,
        r#"{"op":"event","channel":"c","seq":1,"type":"t","payload":{}}"#,
        r#"{"op":"event","channel":"c","seq":1,"type":"t","payload":{},"date":"2024-01-01"}"#,
        r#"{"op":"event","channel":"c","seq":1,"type":"t","payload":null,"date":1}"#,
        r#"{"op":"event","channel":"c","seq":-1,"type":"t","payload":{},"date":1}"#,
        r#"{"op":"event","seq":1,"type":"t","payload":{},"date":1}"#,
        r#"{"op":"subscribed","channels":{}}"#,
        r#"{"op":"subscribed","channels":[{"seq":1}]}"#,
        r#"{"op":"subscribed","channels":[{"channel":"a","since":{"seq":1}}]}"#,
        r#"{"op":"subscribed","channels":[{"channel":"a","since":{"epoch":"e"}}]}"#,
        r#"{"op":"subscribed","channels":[{"channel":"a","recovered":1}]}"#,
        r#"{"op":"subscribed","channels":[{"channel":"a","seq":"1"}]}"#,
        r#"{"op":"subscribed"}"#,
        r#"{"op":"error","code":"x"}"#,
        r#"{"op":"authed","ttl_ms":"soon"}"#,
        "[]",
        "42",
        "\"hello\"",
        "null",
    ];
    for text in SAME {
        let (from_text, from_object) = wasm_live_provider::decoded_both_ways(text);
        assert_eq!(from_object, from_text, "{text}");
    }
    // Where a parsed value cannot tell: `JSON.parse` keeps a repeated key's last value, and has
    // already rounded a whole number past 2^53.
    let (from_text, from_object) =
        wasm_live_provider::decoded_both_ways(r#"{"op":"ack","id":1,"id":2,"seq":1}"#);
    assert_eq!(from_text, "not a valid frame: duplicate field `id`");
    assert!(from_object.contains("id: 2"), "{from_object}");
    let (from_text, from_object) =
        wasm_live_provider::decoded_both_ways(r#"{"op":"ack","id":9007199254740993,"seq":1}"#);
    assert!(from_text.contains("id: 9007199254740993"), "{from_text}");
    assert_eq!(from_object, "not a valid frame: `id`: number too large");
    // Not JSON: the shell words what `JSON.parse` said (tests/hostile.rs counts such frames).
    let (_, from_object) = wasm_live_provider::decoded_both_ways(r#"{"op":"ping""#);
    assert_eq!(from_object, "not JSON");
}

/// The two frame readers under random frames (issue 27): 5,000 frames of every op, each with the
/// fields its op requires and any of the others, then (one in two) one field, at the top or in a
/// `channels` entry or its `since`, removed or replaced by a value of another JSON type (strings
/// with escapes, whole and fractional numbers, negative ones, 2^53 - 1, `null`, arrays, objects). Both
/// readers decode each the same, or refuse it with the same words. One fault per frame: with two,
/// the readers may name either first (the text is read in order, the parsed object field by
/// field). Left out: what a parsed value cannot tell (a repeated key, a whole number from 2^53, a
/// whole number written with a fraction or an exponent, `2.0`).
#[wasm_bindgen_test]
fn both_frame_readers_agree_on_random_frames() {
    use serde_json::{json, Map, Value};
    let mut state: u64 = 0x2700_2700_2700_2701;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    fn scalar(pick: usize) -> Value {
        let strings = ["", "a", "posts", "é\n\"\\", "\u{1F600}", "created", "e1"];
        match pick % 14 {
            0 => Value::Null,
            1 => json!(true),
            2 => json!(0),
            3 => json!(7),
            4 => json!(-1),
            5 => json!(1.5),
            6 => json!(9_007_199_254_740_991u64),
            7 => json!(4_294_967_296u64),
            8 => json!(-2.5e-3),
            9 => json!(25_000),
            10 => json!([1, "2", 3.5]),
            11 => json!({ "ids": [1, "a"], "k": null }),
            _ => json!(strings[pick % strings.len()]),
        }
    }
    /// Replaces (or removes) one member of `object`, or one inside `channels`.
    fn corrupt(object: &mut Map<String, Value>, next: &mut dyn FnMut(usize) -> usize) {
        let keys: Vec<String> = object.keys().cloned().collect();
        if keys.is_empty() {
            return;
        }
        let key = &keys[next(keys.len())];
        let nested = match object.get_mut(key) {
            Some(Value::Array(list)) if key == "channels" && !list.is_empty() && next(2) == 0 => {
                let i = next(list.len());
                list[i].as_object_mut()
            }
            Some(Value::Object(inner)) if key == "since" && next(2) == 0 => Some(inner),
            _ => None,
        };
        match nested {
            Some(inner) => corrupt(inner, next),
            None if next(4) == 0 => {
                object.remove(key);
            }
            None => {
                object.insert(key.clone(), scalar(next(14)));
            }
        }
    }
    let entry = |next: &mut dyn FnMut(usize) -> usize| {
        let mut e = Map::new();
        e.insert("channel".into(), json!(["posts", "a", "é"][next(3)]));
        if next(2) == 0 {
            e.insert("seq".into(), json!(next(100)));
        }
        if next(2) == 0 {
            e.insert("since".into(), json!({ "epoch": "e", "seq": next(9) }));
            e.insert("recovered".into(), json!(next(2) == 0));
        }
        Value::Object(e)
    };
    for round in 0..5_000 {
        let op = [
            "hello",
            "subscribed",
            "event",
            "skip",
            "ack",
            "error",
            "authed",
            "ping",
            "pong",
        ][next(9)];
        let channels = Value::Array((0..next(4)).map(|_| entry(&mut next)).collect());
        let (payload, date) = (json!({ "ids": [1, "2"] }), json!(1_712_345_678_901.5));
        let mut frame = Map::new();
        frame.insert("op".into(), json!(op));
        let mut field = |name: &str, value: Value, required: bool| {
            if required || next(3) == 0 {
                frame.insert(name.into(), value);
            }
        };
        match op {
            "hello" => {
                field("version", json!(1), true);
                field("epoch", json!("e1"), true);
                field("ping_ms", json!(25_000), true);
            }
            "subscribed" => field("channels", channels, true),
            "event" => {
                field("channel", json!("posts"), true);
                field("seq", json!(3), true);
                field("type", json!("created"), true);
                field("payload", payload, true);
                field("date", date, true);
                field("meta", json!({ "k": [true, null] }), false);
            }
            "skip" => {
                field("channel", json!("posts"), true);
                field("seq", json!(9), true);
            }
            "ack" => {
                field("id", json!(7), true);
                field("seq", json!(12), true);
            }
            "error" => {
                field("code", json!("forbidden"), true);
                field("message", json!("no"), true);
                field("id", json!(3), false);
                field("channel", json!("secret"), false);
            }
            "authed" => {
                field("sub", json!("u1"), false);
                field("ttl_ms", json!(60_000), false);
            }
            _ => field("extra", json!({ "ignored": [1, 2] }), false),
        }
        if next(2) == 0 {
            corrupt(&mut frame, &mut next);
        }
        let text = Value::Object(frame).to_string();
        let (from_text, from_object) = wasm_live_provider::decoded_both_ways(&text);
        assert_eq!(from_object, from_text, "round {round}: {text}");
    }
}
