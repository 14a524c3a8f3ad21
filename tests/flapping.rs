//! Availability under a flapping network (issue 12, item 2), in a real browser: a client with the
//! default options reaches a real relay through the harness's proxy, which cuts every connection
//! 300-700 ms after accepting it (RST or FIN at random) and holds every byte during three
//! blackholes, while two publishers on the relay's direct URL send 200 numbered events a second
//! for 15 s. The events the
//! client missed while cut off must come back as replays from the relay's history, not as
//! resyncs (app refetches), and once the last blackhole ends deliveries must not stall.
//! Run by `scripts/test-browser.sh` (see tests/harness/relay-harness.mjs).
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use js_sys::{Date, Reflect};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// Events published, one every [`EVERY_MS`]: 200 a second for 15 s.
const EVENTS: usize = 3_000;
const EVERY_MS: f64 = 5.0;
/// Blackholes as (start, length) in ms from the first publish: 2, 3 and 2 s. The relay runs
/// with `--ping-ms 1000` and closes a connection silent for two intervals, so a blackhole longer
/// than 2 s also costs the connection; what the client missed must still fit in the relay's
/// 1,000-event history (5 s at 200 events a second).
const BLACKHOLES: [(f64, i32); 3] = [(2_000.0, 2_000), (6_000.0, 3_000), (10_500.0, 2_000)];
/// The share of the events that must arrive one by one (live or replayed), not through a resync.
const MIN_REPLAYED: f64 = 0.95;
/// The longest wait between two deliveries once the last blackhole has ended.
const MAX_GAP_MS: f64 = 3_000.0;

/// What the app's callback got, and when.
struct Delivery {
    at: f64,
    /// `payload.n` of an event, or `None` for a `$resync`.
    n: Option<i64>,
}

#[wasm_bindgen_test::wasm_bindgen_test]
async fn a_flapping_link_with_default_options_replays_instead_of_resyncing() {
    let ch = channel("flapping");
    let deliveries = Rc::new(RefCell::new(Vec::<Delivery>::new()));
    let sink = deliveries.clone();
    let on_event = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        let kind = Reflect::get(&e, &"type".into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default();
        let n = Reflect::get(&e, &"payload".into())
            .and_then(|p| Reflect::get(&p, &"n".into()))
            .ok()
            .and_then(|v| v.as_f64())
            .map(|v| v as i64);
        let n = if kind == "$resync" {
            None
        } else {
            Some(n.unwrap_or(-1))
        };
        sink.borrow_mut().push(Delivery { at: Date::now(), n });
    });
    let delays = Rc::new(RefCell::new(Vec::<f64>::new()));
    let delay_sink = delays.clone();
    let on_state = Closure::<dyn FnMut(JsValue)>::new(move |s: JsValue| {
        if let Some(d) = Reflect::get(&s, &"delayMs".into())
            .ok()
            .and_then(|v| v.as_f64())
        {
            delay_sink.borrow_mut().push(d);
        }
    });
    // The default options: no backoff overrides (unlike `client_to`).
    let c = new_client(
        &proxy_ws().into(),
        &[("onStateChange", on_state.as_ref().clone())],
    )
    .expect("a client with the default options");
    c.subscribe(
        ch.clone(),
        all(),
        None,
        on_event
            .as_ref()
            .unchecked_ref::<js_sys::Function>()
            .clone(),
    );
    wait_open(&c).await;
    let publishers = [client_to(relay_ws(), &[]), client_to(relay_ws(), &[])];
    for p in &publishers {
        p.subscribe(
            channel("flapping-publisher"),
            all(),
            None,
            Recorder::new().function,
        );
        wait_open(p).await;
    }
    sleep(50).await;

    let started_flapping = fetch("POST", &format!("{}/proxy/flap", harness()), None).await;
    assert!(
        started_flapping.contains("\"flapping\":true"),
        "the harness's proxy flaps: {started_flapping}"
    );
    let t0 = Date::now();
    // The blackholes, at their times, beside the publisher.
    let blackholes_done = Rc::new(RefCell::new(false));
    let done = blackholes_done.clone();
    wasm_bindgen_futures::spawn_local(async move {
        for (start, ms) in BLACKHOLES {
            let wait = t0 + start - Date::now();
            if wait > 0.0 {
                sleep(wait as i32).await;
            }
            harness_do(&format!("proxy/blackhole?ms={ms}")).await;
        }
        *done.borrow_mut() = true;
    });
    let last_blackhole_end = t0 + BLACKHOLES[2].0 + f64::from(BLACKHOLES[2].1);

    // The backend: numbered events, one every 5 ms, alternately from two publishers (the relay
    // takes 100 publishes a second from one connection); the relay's acks give each its `seq`,
    // the order the subscriber must see.
    let seqs = Rc::new(RefCell::new(vec![None::<i64>; EVENTS]));
    let failures = Rc::new(RefCell::new(Vec::<String>::new()));
    let mut published_at = Vec::with_capacity(EVENTS);
    // A page that stalls (a loaded machine) catches up by at most 250 ms of events, so that a
    // publisher never bursts past the relay's 200 publishes: the schedule slips instead.
    let mut slipped = 0.0;
    for n in 0..EVENTS {
        let now = Date::now();
        let late = now - (t0 + slipped + n as f64 * EVERY_MS);
        if late > 250.0 {
            slipped += late - 250.0;
        }
        let due = t0 + slipped + n as f64 * EVERY_MS;
        if due - now >= 1.0 {
            sleep((due - now) as i32).await;
        }
        published_at.push(Date::now());
        let promise = publishers[n % 2].publish(
            ch.clone(),
            "updated".into(),
            format!(r#"{{"n":{n}}}"#),
            Date::now(),
            None,
        );
        let (seqs, failures) = (seqs.clone(), failures.clone());
        wasm_bindgen_futures::spawn_local(async move {
            match JsFuture::from(promise).await {
                Ok(ack) => {
                    seqs.borrow_mut()[n] = Reflect::get(&ack, &"seq".into())
                        .ok()
                        .and_then(|v| v.as_f64())
                        .map(|v| v as i64)
                }
                Err(e) => failures.borrow_mut().push(format!("publish {n}: {e:?}")),
            }
        });
    }
    let publish_ms = Date::now() - t0;
    // No assertion before the proxy is steady again (the suites after this one share it).
    let acked = wait_for(10_000, || {
        seqs.borrow().iter().all(Option::is_some) || !failures.borrow().is_empty()
    })
    .await;
    // Event `n` is the `seq_of[n]`-th of the channel, from 0.
    let seq_of: Vec<i64> = seqs.borrow().iter().map(|s| s.unwrap_or(0) - 1).collect();
    let blackholes_over = wait_for(10_000, || *blackholes_done.borrow()).await;
    let last = EVENTS as i64 - 1;
    let settled = wait_for(15_000, || {
        deliveries
            .borrow()
            .last()
            .and_then(|d| d.n)
            .is_some_and(|n| seq_of.get(n as usize) == Some(&last))
    })
    .await;
    let proxy_counts = fetch("POST", &format!("{}/proxy/steady", harness()), None).await;
    assert!(
        acked && failures.borrow().is_empty(),
        "publishes not acked: {:?}",
        failures.borrow()
    );
    let mut sorted = seq_of.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..EVENTS as i64).collect::<Vec<_>>(),
        "every publish numbered once, from 1, on a channel of its own"
    );
    assert!(
        blackholes_over,
        "the harness did not take the three blackholes"
    );
    sleep(300).await; // anything extra (a duplicate) would arrive now

    let got = std::mem::take(&mut *deliveries.borrow_mut());
    // Every event not delivered must lie in a stretch of the stream that a `$resync` covers: a
    // resync was delivered after the event before it and before the event after it (in `seq`).
    let mut received = Vec::new();
    let mut resyncs = 0;
    let mut by_resync = 0;
    let mut lost = Vec::new();
    let mut resync_since_last = false;
    let mut expected = 0i64;
    for d in got.iter() {
        match d.n {
            None => {
                resyncs += 1;
                resync_since_last = true;
            }
            Some(n) => {
                let n = seq_of.get(n as usize).copied().unwrap_or(-1);
                if n > expected {
                    if resync_since_last {
                        by_resync += (n - expected) as usize;
                    } else {
                        lost.extend(expected..n);
                    }
                }
                received.push(n);
                expected = expected.max(n + 1);
                resync_since_last = false;
            }
        }
    }
    if expected <= last {
        if resync_since_last {
            by_resync += (last + 1 - expected) as usize;
        } else {
            lost.extend(expected..=last);
        }
    }
    let in_order = received.windows(2).all(|w| w[0] < w[1]);
    let (_, duplicates) = lost_and_duplicated(&received, EVENTS);
    let gap = |from: f64| {
        let mut previous = from;
        let mut longest = 0.0f64;
        for d in got.iter().filter(|d| d.at >= from) {
            longest = longest.max(d.at - previous);
            previous = d.at;
        }
        longest
    };
    let longest_gap = gap(got.first().map_or(t0, |d| d.at.min(t0)));
    let longest_gap_after = gap(last_blackhole_end);
    // How late each event came, by when it was published.
    let mut latest_after = 0.0f64;
    let mut latest = 0.0f64;
    for d in got.iter() {
        if let Some(n) = d.n.filter(|n| (0..=last).contains(n)) {
            let late = d.at - published_at[n as usize];
            latest = latest.max(late);
            if published_at[n as usize] >= last_blackhole_end {
                latest_after = latest_after.max(late);
            }
        }
    }
    let replayed = received.len() as f64 / EVENTS as f64;
    let connections = stat(&c, "connections");
    let max_delay = delays.borrow().iter().fold(0.0f64, |m, d| m.max(*d));
    let report = format!(
        r#"{{"test":"flapping","published":{EVENTS},"publish_ms":{publish_ms:.0},"schedule_slipped_ms":{slipped:.0},"delivered_live_or_replay":{},"delivered_by_resync":{by_resync},"resync_events":{resyncs},"lost":{},"duplicates":{duplicates},"in_order":{in_order},"replayed_share":{replayed:.4},"longest_gap_ms":{longest_gap:.0},"longest_gap_after_blackholes_ms":{longest_gap_after:.0},"latest_event_ms":{latest:.0},"latest_event_after_blackholes_ms":{latest_after:.0},"connections":{},"client_resyncs":{},"replayed_duplicates_dropped":{},"reconnect_delays":{},"max_reconnect_delay_ms":{max_delay:.0},"proxy":{proxy_counts}}}"#,
        received.len(),
        lost.len(),
        connections,
        stat(&c, "resyncs"),
        stat(&c, "duplicates"),
        delays.borrow().len(),
    );
    fetch("POST", &format!("{}/report", harness()), Some(&report)).await;
    c.close();
    for p in &publishers {
        p.close();
    }

    assert!(settled, "the last event never arrived: {report}");
    assert!(lost.is_empty(), "events lost without a resync: {lost:?}");
    assert!(in_order && duplicates == 0, "in order, once each: {report}");
    assert!(
        replayed >= MIN_REPLAYED,
        "at least {MIN_REPLAYED} of the events delivered live or replayed, not through a resync: {report}"
    );
    assert!(
        longest_gap_after <= MAX_GAP_MS,
        "no delivery gap over {MAX_GAP_MS} ms once the blackholes ended: {report}"
    );
    // The proxy really cut the link over and over (about ten times: the blackholes take 7 s).
    let proxy_count = |k: &str| {
        js_sys::JSON::parse(&proxy_counts)
            .and_then(|v| Reflect::get(&v, &k.into()))
            .ok()
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0)
    };
    let cuts = proxy_count("cuts_rst") + proxy_count("cuts_fin");
    assert!(
        cuts >= 5.0 && connections >= cuts,
        "the proxy cut the connection at least 5 times and the client came back each time: {report}"
    );
    drop(on_event);
    drop(on_state);
}
