//! The session driven by hand with a fake clock: every input is explicit, every output checked.

use super::*;
use crate::engine::filter::TypeFilter;
use crate::engine::frame::{
    decode_client, encode_event, encode_hello, encode_subscribed, ChannelEntry, ClientFrame,
};
use serde_json::value::RawValue;

fn all() -> Filter {
    Filter::new(TypeFilter::All, None)
}

fn ids(v: &[&str]) -> Filter {
    Filter::new(
        TypeFilter::All,
        Some(v.iter().map(|s| s.to_string()).collect()),
    )
}

fn drain(s: &mut Session) -> Vec<Output> {
    core::iter::from_fn(|| s.poll_output()).collect()
}

fn sent(outputs: &[Output]) -> Vec<ClientFrame<'_>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(t) => Some(decode_client(t).expect("the session sends valid frames")),
            _ => None,
        })
        .collect()
}

fn channels_of(frame: &ClientFrame<'_>) -> Vec<String> {
    match frame {
        ClientFrame::Subscribe { channels } | ClientFrame::Unsubscribe { channels } => {
            channels.iter().map(|c| c.channel.to_string()).collect()
        }
        other => panic!("not a channel frame: {other:?}"),
    }
}

fn event(channel: &str, seq: u64, kind: &str, payload: &str) -> String {
    let raw = RawValue::from_string(payload.to_owned()).expect("test JSON");
    encode_event(channel, seq, kind, &raw, 1_700_000_000_000.0, None)
}

/// A session that has connected and received `hello`, with outputs drained.
fn open_session(subs: &[(&str, Filter)]) -> (Session, Vec<SubId>) {
    let mut s = Session::new(SessionConfig::default());
    let ids = subs
        .iter()
        .map(|(c, f)| s.subscribe(0, c, f.clone()))
        .collect();
    s.handle_open(1);
    s.handle_text(2, &encode_hello("e1", 25_000));
    let channels: Vec<&str> = s.registry().channels().collect::<Vec<_>>();
    let answer = subscribed(&channels.iter().map(|c| (*c, 0, None)).collect::<Vec<_>>());
    s.handle_text(3, &answer);
    drain(&mut s);
    (s, ids)
}

/// The relay's `subscribed` answer: (channel, seq, recovered).
fn subscribed(entries: &[(&str, u64, Option<bool>)]) -> String {
    let entries: Vec<ChannelEntry> = entries
        .iter()
        .map(|(c, seq, recovered)| ChannelEntry {
            seq: Some(*seq),
            recovered: *recovered,
            ..ChannelEntry::named(*c)
        })
        .collect();
    encode_subscribed(&entries)
}

/// The `since` positions of the first subscribe frame in `outputs`, by channel.
fn since_of(outputs: &[Output]) -> Vec<(String, Option<(String, u64)>)> {
    match sent(outputs).first() {
        Some(ClientFrame::Subscribe { channels }) => channels
            .iter()
            .map(|c| {
                (
                    c.channel.to_string(),
                    c.since.as_ref().map(|p| (p.epoch.to_string(), p.seq)),
                )
            })
            .collect(),
        other => panic!("no subscribe frame: {other:?}"),
    }
}

fn delivered(outputs: &[Output]) -> Vec<(Vec<SubId>, String)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Deliver { subs, event } => {
                Some((subs.clone(), format!("{}#{}", event.kind, event.seq)))
            }
            Output::Resync { subs, .. } => Some((subs.clone(), "resync".to_owned())),
            _ => None,
        })
        .collect()
}

/// Drops the connection and brings it back (timer fired, hello with `epoch`); returns the outputs.
fn reconnect(s: &mut Session, now: Millis, epoch: &str) -> Vec<Output> {
    s.handle_close(now, "cut");
    drain(s);
    let wake = s.poll_timeout().expect("a retry is scheduled");
    s.handle_timeout(wake);
    drain(s);
    s.handle_text(wake + 1, &encode_hello(epoch, 25_000));
    drain(s)
}

#[test]
fn connects_lazily_and_subscribes_every_channel_in_one_frame() {
    let mut s = Session::new(SessionConfig::default());
    assert!(
        drain(&mut s).is_empty(),
        "no connection before there is something to do"
    );
    s.subscribe(0, "a", all());
    s.subscribe(0, "b", all());
    s.subscribe(0, "a", ids(&["1"]));
    let out = drain(&mut s);
    assert_eq!(
        out,
        vec![Output::Connect, Output::State(ConnectionState::Connecting)]
    );

    s.handle_open(5);
    s.handle_text(6, &encode_hello("e1", 25_000));
    let out = drain(&mut s);
    assert_eq!(out[0], Output::State(ConnectionState::Open));
    let frames = sent(&out);
    assert_eq!(frames.len(), 1, "{out:?}");
    assert_eq!(channels_of(&frames[0]), vec!["a", "b"]);
}

#[test]
fn identical_channels_share_one_server_subscription() {
    let (mut s, _) = open_session(&[("a", all())]);
    let x = s.subscribe(10, "a", ids(&["1"]));
    assert!(
        drain(&mut s).is_empty(),
        "a second subscription on `a` sends nothing"
    );
    let y = s.subscribe(10, "b", all());
    assert_eq!(channels_of(&sent(&drain(&mut s))[0]), vec!["b"]);
    assert!(s.unsubscribe(11, x));
    assert!(drain(&mut s).is_empty(), "`a` still has a subscriber");
    assert!(s.unsubscribe(11, y));
    let out = drain(&mut s);
    assert!(matches!(sent(&out)[0], ClientFrame::Unsubscribe { .. }));
    assert!(!s.unsubscribe(11, y), "unsubscribing twice is a no-op");
}

/// The shell's clock (`performance.now()`) is read only when the time matters: not to add a
/// subscription to a channel already subscribed, nor to end one while others remain.
#[test]
fn the_clock_is_read_only_when_the_time_matters() {
    let (mut s, first) = open_session(&[("a", all())]);
    let reads = core::cell::Cell::new(0);
    let clock = || {
        reads.set(reads.get() + 1);
        10
    };
    let x = s.subscribe_clocked(clock, "a", ids(&["1"]));
    assert!(s.unsubscribe_clocked(clock, x));
    assert!(!s.unsubscribe_clocked(clock, x));
    assert_eq!(reads.get(), 0);
    assert!(drain(&mut s).is_empty());
    // The last one: the idle-close deadline is counted from now.
    assert!(s.unsubscribe_clocked(clock, first[0]));
    assert_eq!(reads.get(), 1);
    assert_eq!(s.poll_timeout(), Some(10 + 5_000));
    // A first subscription again: it cancels the idle close, and `a`'s is sent at once.
    s.subscribe_clocked(clock, "a", all());
    assert_eq!(reads.get(), 1);
    assert_eq!(channels_of(&sent(&drain(&mut s))[1]), vec!["a"]);
    assert!(s.poll_timeout() > Some(10 + 5_000));
    // An idle session connects: that needs the time.
    let mut idle = Session::new(SessionConfig::default());
    idle.subscribe_clocked(clock, "a", all());
    assert_eq!(reads.get(), 2);
}

#[test]
fn routes_events_by_type_and_id() {
    let (mut s, subs) = open_session(&[
        ("posts", all()),
        ("posts", ids(&["2"])),
        (
            "posts",
            Filter::new(TypeFilter::from_types(["deleted"]), None),
        ),
        ("users", all()),
    ]);
    s.handle_text(10, &event("posts", 1, "updated", r#"{"ids":[3]}"#));
    s.handle_text(11, &event("posts", 2, "updated", r#"{"ids":["2"]}"#));
    s.handle_text(12, &event("posts", 3, "created", r#"{"ids":[9]}"#));
    s.handle_text(13, &event("nobody", 1, "created", r#"{}"#));
    let delivered: Vec<(Vec<SubId>, u64)> = drain(&mut s)
        .into_iter()
        .filter_map(|o| match o {
            Output::Deliver { subs, event } => Some((subs, event.seq)),
            _ => None,
        })
        .collect();
    assert_eq!(
        delivered,
        vec![
            (vec![subs[0]], 1),
            (vec![subs[0], subs[1]], 2),
            (vec![subs[0], subs[1]], 3)
        ]
    );
}

#[test]
fn delivered_event_keeps_payload_and_meta_raw() {
    let (mut s, _) = open_session(&[("c", all())]);
    let payload = RawValue::from_string(r#"{"ids":[1],"title":"é \"q\""}"#.into()).expect("json");
    let meta = RawValue::from_string(r#"{"dataProviderName":"x"}"#.into()).expect("json");
    s.handle_text(
        3,
        &encode_event("c", 1, "updated", &payload, 12.0, Some(&meta)),
    );
    let Some(Output::Deliver { event, .. }) = s.poll_output() else {
        panic!("no delivery")
    };
    assert_eq!(event.payload, payload.get());
    assert_eq!(event.meta.as_deref(), Some(meta.get()));
    assert_eq!(event.ids, Some(vec!["1".to_string()]));
    assert_eq!(event.date, 12.0);
}

#[test]
fn malformed_frames_are_reported_not_fatal() {
    let (mut s, subs) = open_session(&[("c", all())]);
    s.handle_text(3, "{not json");
    s.handle_text(3, r#"{"op":"event","channel":"c"}"#);
    s.handle_text(3, &event("c", 1, "updated", r#"{"ids":"oops"}"#));
    let out = drain(&mut s);
    let problems = out
        .iter()
        .filter(|o| matches!(o, Output::Problem(_)))
        .count();
    assert_eq!(problems, 3, "{out:?}");
    assert_eq!(s.problems(), 3);
    // Malformed ids: delivered without id filtering rather than lost.
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Deliver { subs: d, .. } if d == &subs)));
    assert_eq!(s.state(), &ConnectionState::Open);
}

#[test]
fn reconnects_with_backoff_and_resubscribes() {
    let (mut s, _) = open_session(&[("a", all()), ("b", all())]);
    s.handle_close(100, "network down");
    let out = drain(&mut s);
    let Some(Output::State(ConnectionState::Reconnecting {
        attempt,
        delay_ms,
        reason,
    })) = out.last()
    else {
        panic!("{out:?}")
    };
    assert_eq!((*attempt, reason.as_str()), (1, "network down"));
    let delay_ms = delay_ms.expect("a retry is scheduled");
    assert!(delay_ms <= 500);
    let wake = s.poll_timeout().expect("a retry is scheduled");
    assert_eq!(wake, 100 + delay_ms);

    // The retry fails too: the next delay may be longer.
    s.handle_timeout(wake);
    assert_eq!(
        drain(&mut s),
        vec![Output::Connect, Output::State(ConnectionState::Connecting)]
    );
    s.handle_close(wake + 1, "refused");
    let out = drain(&mut s);
    let Some(Output::State(ConnectionState::Reconnecting {
        attempt: 2,
        delay_ms,
        ..
    })) = out.last()
    else {
        panic!("{out:?}")
    };
    assert!(delay_ms.is_some_and(|d| d <= 1000));

    let wake = s.poll_timeout().expect("scheduled");
    s.handle_timeout(wake);
    drain(&mut s);
    s.handle_text(wake + 2, &encode_hello("e2", 25_000));
    let out = drain(&mut s);
    assert_eq!(channels_of(&sent(&out)[0]), vec!["a", "b"]);
}

#[test]
fn answers_pings_and_detects_a_dead_link() {
    let (mut s, _) = open_session(&[("a", all())]);
    s.handle_text(1000, r#"{"op":"ping"}"#);
    let out = drain(&mut s);
    assert!(matches!(&sent(&out)[..], [ClientFrame::Pong]), "{out:?}");
    let deadline = s.poll_timeout().expect("liveness deadline");
    assert_eq!(deadline, 1000 + 25_000 + 10_000);
    s.handle_timeout(deadline - 1);
    assert!(drain(&mut s).is_empty());
    s.handle_timeout(deadline);
    let out = drain(&mut s);
    assert_eq!(out[0], Output::Disconnect);
    assert!(matches!(
        out.last(),
        Some(Output::State(ConnectionState::Reconnecting { .. }))
    ));
}

#[test]
fn gives_up_on_a_connection_that_never_says_hello() {
    let mut s = Session::new(SessionConfig::default());
    s.subscribe(0, "a", all());
    s.handle_open(1);
    drain(&mut s);
    assert_eq!(s.poll_timeout(), Some(10_000));
    s.handle_timeout(10_000);
    let out = drain(&mut s);
    assert_eq!(out[0], Output::Disconnect);
    assert!(matches!(
        out.last(),
        Some(Output::State(ConnectionState::Reconnecting { .. }))
    ));
}

#[test]
fn publish_waits_for_the_connection_and_settles_on_ack() {
    let mut s = Session::new(SessionConfig::default());
    let id = s
        .publish(0, "c", "created", r#"{"ids":[1]}"#, 5.0, None)
        .expect("valid");
    assert_eq!(
        drain(&mut s),
        vec![Output::Connect, Output::State(ConnectionState::Connecting)]
    );
    s.handle_text(1, &encode_hello("e", 25_000));
    let out = drain(&mut s);
    let frames = sent(&out);
    assert!(
        matches!(&frames[..], [ClientFrame::Publish { id: i, .. }] if *i == id),
        "{frames:?}"
    );
    s.handle_text(2, &format!(r#"{{"op":"ack","id":{id},"seq":9}}"#));
    assert_eq!(drain(&mut s), vec![Output::PublishAcked { id, seq: 9 }]);
    // Nothing left to do: the connection closes after the idle delay.
    assert_eq!(s.poll_timeout(), Some(2 + 5_000));
    s.handle_timeout(5_002);
    assert_eq!(
        drain(&mut s),
        vec![Output::Disconnect, Output::State(ConnectionState::Idle)]
    );
}

#[test]
fn publish_failures_are_settled_with_a_reason() {
    let (mut s, _) = open_session(&[("c", all())]);
    assert!(matches!(
        s.publish(0, "c", "x", "{oops", 0.0, None),
        Err(PublishError::InvalidJson {
            field: "payload",
            ..
        })
    ));
    let timed = s
        .publish(10, "c", "updated", "{}", 0.0, None)
        .expect("valid");
    drain(&mut s);
    s.handle_timeout(10 + 10_000);
    assert_eq!(
        drain(&mut s),
        vec![Output::PublishFailed {
            id: timed,
            error: PublishError::Timeout { after_ms: 10_000 }
        }]
    );

    let rejected = s
        .publish(20_000, "c", "updated", "{}", 0.0, None)
        .expect("valid");
    drain(&mut s);
    s.handle_text(
        20_001,
        &format!(r#"{{"op":"error","code":"bad_channel","message":"too long","id":{rejected}}}"#),
    );
    let out = drain(&mut s);
    assert!(
        matches!(&out[..], [Output::PublishFailed { id, error: PublishError::Rejected { code, .. } }]
            if *id == rejected && *code == Code::Relay(ErrorCode::BadChannel)),
        "{out:?}"
    );
}

#[test]
fn the_offline_publish_queue_is_bounded_and_drops_the_oldest() {
    let cfg = SessionConfig {
        publish_queue: 2,
        ..SessionConfig::default()
    };
    let mut s = Session::new(cfg);
    let a = s.publish(0, "c", "x", "{}", 0.0, None).expect("valid");
    let b = s.publish(0, "c", "x", "{}", 0.0, None).expect("valid");
    let c = s.publish(0, "c", "x", "{}", 0.0, None).expect("valid");
    let out = drain(&mut s);
    assert!(out.contains(&Output::PublishFailed {
        id: a,
        error: PublishError::QueueFull { capacity: 2 }
    }));
    s.handle_text(1, &encode_hello("e", 25_000));
    let ids: Vec<u64> = sent(&drain(&mut s))
        .iter()
        .filter_map(|f| match f {
            ClientFrame::Publish { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![b, c]);
}

#[test]
fn close_settles_everything_and_stops_delivery() {
    let (mut s, _) = open_session(&[("c", all())]);
    let p = s.publish(1, "c", "x", "{}", 0.0, None).expect("valid");
    drain(&mut s);
    s.close("app closed it");
    let out = drain(&mut s);
    assert_eq!(out[0], Output::Disconnect);
    assert!(out.contains(&Output::PublishFailed {
        id: p,
        error: PublishError::Closed
    }));
    s.handle_text(2, &event("c", 1, "updated", "{}"));
    s.handle_close(3, "bye");
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(
        s.publish(4, "c", "x", "{}", 0.0, None),
        Err(PublishError::Closed)
    );
}

#[test]
fn a_relay_of_another_protocol_version_closes_the_session() {
    let mut s = Session::new(SessionConfig::default());
    s.subscribe(0, "a", all());
    s.handle_text(
        1,
        r#"{"op":"hello","version":2,"epoch":"e","ping_ms":1000}"#,
    );
    let out = drain(&mut s);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Problem(m) if m.contains("version 2"))));
    assert!(matches!(s.state(), ConnectionState::Closed { .. }));
}

#[test]
fn losing_the_last_subscription_while_waiting_cancels_the_retry() {
    let (mut s, subs) = open_session(&[("a", all())]);
    s.handle_close(10, "down");
    drain(&mut s);
    s.unsubscribe(11, subs[0]);
    assert_eq!(drain(&mut s), vec![Output::State(ConnectionState::Idle)]);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn resumes_from_the_last_delivered_position_and_drops_replayed_duplicates() {
    let (mut s, subs) = open_session(&[("a", all()), ("b", all())]);
    s.handle_text(10, &event("a", 1, "updated", "{}"));
    s.handle_text(11, &event("a", 2, "updated", "{}"));
    drain(&mut s);

    let out = reconnect(&mut s, 20, "e1");
    assert_eq!(
        since_of(&out),
        vec![
            ("a".into(), Some(("e1".into(), 2))),
            ("b".into(), Some(("e1".into(), 0)))
        ]
    );
    s.handle_text(
        30,
        &subscribed(&[("a", 4, Some(true)), ("b", 0, Some(true))]),
    );
    // The relay replays 2 (already seen), 3 and 4.
    for seq in 2..=4 {
        s.handle_text(31, &event("a", seq, "updated", "{}"));
    }
    let out = drain(&mut s);
    assert_eq!(
        delivered(&out),
        vec![
            (vec![subs[0]], "updated#3".into()),
            (vec![subs[0]], "updated#4".into())
        ]
    );
    assert_eq!(s.stats().duplicates, 1);
    assert_eq!(s.stats().resyncs, 0);
}

#[test]
fn an_unrecoverable_gap_resyncs_every_subscription_of_the_channel_once() {
    let (mut s, subs) = open_session(&[
        ("a", Filter::new(TypeFilter::from_types(["created"]), None)),
        ("a", ids(&["1"])),
        ("b", all()),
    ]);
    s.handle_text(10, &event("a", 1, "created", "{}"));
    drain(&mut s);
    reconnect(&mut s, 20, "e2");
    s.handle_text(
        30,
        &subscribed(&[("a", 7, Some(false)), ("b", 0, Some(false))]),
    );
    let out = drain(&mut s);
    let resyncs: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Resync {
                subs,
                channel,
                reason,
            } => Some((subs.clone(), channel.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(resyncs.len(), 2, "{out:?}");
    assert_eq!(
        resyncs[0].0,
        vec![subs[0], subs[1]],
        "whatever their types and ids"
    );
    assert!(resyncs[0].2.contains("epoch e1 → e2"), "{}", resyncs[0].2);
    assert_eq!(resyncs[1].0, vec![subs[2]]);
    // Delivery continues from the relay's current position.
    s.handle_text(31, &event("a", 8, "created", "{}"));
    assert_eq!(
        delivered(&drain(&mut s)),
        vec![(vec![subs[0], subs[1]], "created#8".into())]
    );
}

#[test]
fn a_gap_inside_one_connection_is_reported_and_resynced() {
    let (mut s, subs) = open_session(&[("a", all())]);
    s.handle_text(10, &event("a", 1, "updated", "{}"));
    s.handle_text(11, &event("a", 4, "updated", "{}"));
    let out = drain(&mut s);
    assert_eq!(
        delivered(&out),
        vec![
            (vec![subs[0]], "updated#1".into()),
            (vec![subs[0]], "resync".into()),
            (vec![subs[0]], "updated#4".into())
        ]
    );
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Problem(m) if m.contains("2..3"))));
}

#[test]
fn events_before_the_subscribed_answer_and_repeated_answers_are_ignored() {
    let (mut s, subs) = open_session(&[("a", all())]);
    assert!(s.unsubscribe(5, subs[0]));
    let again = s.subscribe(6, "a", all());
    drain(&mut s);
    s.handle_text(7, &event("a", 1, "updated", "{}")); // from the ended server-side subscription
    s.handle_text(8, &subscribed(&[("a", 1, None)]));
    s.handle_text(9, &subscribed(&[("a", 0, Some(false))])); // a repeat: no resync, no rewind
    s.handle_text(10, &event("a", 1, "updated", "{}"));
    s.handle_text(11, &event("a", 2, "updated", "{}"));
    assert_eq!(
        delivered(&drain(&mut s)),
        vec![(vec![again], "updated#2".into())]
    );
}

#[test]
fn unacknowledged_publishes_are_resent_with_their_key_after_a_reconnect() {
    let (mut s, _) = open_session(&[("a", all())]);
    let id = s
        .publish(10, "a", "updated", "{}", 0.0, None)
        .expect("valid");
    let first = sent(&drain(&mut s)).into_iter().find_map(|f| match f {
        ClientFrame::Publish { event, .. } => event.key.map(|k| k.to_string()),
        _ => None,
    });
    let key = first.expect("a publish carries a key");
    let out = reconnect(&mut s, 20, "e1");
    let resent: Vec<(u64, Option<String>)> = sent(&out)
        .into_iter()
        .filter_map(|f| match f {
            ClientFrame::Publish { id, event } => Some((id, event.key.map(|k| k.to_string()))),
            _ => None,
        })
        .collect();
    assert_eq!(resent, vec![(id, Some(key))]);
    s.handle_text(40, &format!(r#"{{"op":"ack","id":{id},"seq":3}}"#));
    assert_eq!(drain(&mut s), vec![Output::PublishAcked { id, seq: 3 }]);
    // Its timeout ran from the first sending: a publish resent forever would never settle.
}

#[test]
fn offline_stops_trying_and_online_reconnects_at_once() {
    let (mut s, _) = open_session(&[("a", all())]);
    s.set_online(10, false);
    let out = drain(&mut s);
    assert_eq!(out[0], Output::Disconnect);
    assert!(
        matches!(out.last(), Some(Output::State(ConnectionState::Reconnecting { delay_ms: None, reason, .. }))
            if reason.contains("offline")),
        "{out:?}"
    );
    assert_eq!(s.poll_timeout(), None, "no retry timer while offline");
    s.set_online(5_000, true);
    assert_eq!(
        drain(&mut s),
        vec![Output::Connect, Output::State(ConnectionState::Connecting)]
    );
}

#[test]
fn a_hidden_page_keeps_its_connection_but_does_not_retry_until_visible() {
    let (mut s, _) = open_session(&[("a", all())]);
    s.set_visible(10, false);
    assert!(
        drain(&mut s).is_empty(),
        "an open connection stays open while hidden"
    );
    s.handle_close(20, "network blip");
    let out = drain(&mut s);
    assert!(
        matches!(
            out.last(),
            Some(Output::State(ConnectionState::Reconnecting {
                delay_ms: None,
                ..
            }))
        ),
        "{out:?}"
    );
    assert_eq!(s.poll_timeout(), None);
    s.set_visible(60_000, true);
    assert_eq!(
        drain(&mut s),
        vec![Output::Connect, Output::State(ConnectionState::Connecting)]
    );
}

#[test]
fn hiding_while_waiting_cancels_the_timer() {
    let (mut s, _) = open_session(&[("a", all())]);
    s.handle_close(20, "blip");
    drain(&mut s);
    assert!(s.poll_timeout().is_some());
    s.set_visible(21, false);
    drain(&mut s);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn the_back_forward_cache_closes_and_resumes() {
    let (mut s, _) = open_session(&[("a", all())]);
    s.handle_text(10, &event("a", 1, "updated", "{}"));
    drain(&mut s);
    s.set_frozen(20, true);
    let out = drain(&mut s);
    assert_eq!(
        out[0],
        Output::Disconnect,
        "an open socket would keep the page out of the cache"
    );
    s.set_frozen(30_000, false);
    assert_eq!(
        drain(&mut s),
        vec![Output::Connect, Output::State(ConnectionState::Connecting)]
    );
    s.handle_text(30_001, &encode_hello("e1", 25_000));
    assert_eq!(
        since_of(&drain(&mut s)),
        vec![("a".into(), Some(("e1".into(), 1)))]
    );
}

#[test]
fn subscribing_while_offline_waits_for_the_network() {
    let mut s = Session::new(SessionConfig::default());
    s.set_online(0, false);
    s.subscribe(1, "a", all());
    let out = drain(&mut s);
    assert!(!out.contains(&Output::Connect), "{out:?}");
    s.set_online(2, true);
    assert_eq!(drain(&mut s)[0], Output::Connect);
}

#[test]
fn backoff_resets_only_after_a_stable_connection() {
    let (mut s, _) = open_session(&[("a", all())]);
    // Three quick failures: the attempt count grows.
    let mut now = 10;
    for expected_attempt in 1..=3 {
        s.handle_close(now, "refused");
        let out = drain(&mut s);
        assert!(
            matches!(out.last(), Some(Output::State(ConnectionState::Reconnecting { attempt, .. })) if *attempt == expected_attempt),
            "{out:?}"
        );
        now = s.poll_timeout().expect("retry");
        s.handle_timeout(now);
        s.handle_text(now, &encode_hello("e1", 25_000));
        drain(&mut s);
    }
    // Open for longer than `stable_after_ms`: the next failure starts over.
    now += 6_000;
    s.handle_text(now, r#"{"op":"ping"}"#);
    s.handle_close(now, "blip");
    let out = drain(&mut s);
    assert!(
        matches!(
            out.last(),
            Some(Output::State(ConnectionState::Reconnecting {
                attempt: 1,
                ..
            }))
        ),
        "{out:?}"
    );
}

#[cfg(feature = "sse")]
fn sse_session(transport: TransportKind) -> Session {
    Session::new(SessionConfig {
        transport,
        ..SessionConfig::default()
    })
}

#[cfg(feature = "sse")]
fn stream_query(outputs: &[Output]) -> Option<String> {
    outputs.iter().find_map(|o| match o {
        Output::ConnectStream { query } => Some(query.clone()),
        _ => None,
    })
}

#[cfg(feature = "sse")]
#[test]
fn sse_names_the_channels_in_the_url_and_resumes_with_since() {
    let mut s = sse_session(TransportKind::Sse);
    let a = s.subscribe(0, "resources/posts", all());
    s.subscribe(1, "a,b", all());
    assert_eq!(
        drain(&mut s),
        vec![Output::State(ConnectionState::Connecting)]
    );
    assert_eq!(
        s.poll_timeout(),
        Some(50),
        "the stream opens after the debounce"
    );
    s.handle_timeout(50);
    let out = drain(&mut s);
    assert_eq!(
        stream_query(&out).as_deref(),
        Some("channels=a%2Cb,resources%2Fposts")
    );
    s.handle_text(1, &encode_hello("e1", 25_000));
    let out = drain(&mut s);
    assert!(
        sent(&out).is_empty(),
        "no subscribe frame over SSE: {out:?}"
    );
    s.handle_text(
        2,
        &subscribed(&[("a,b", 0, None), ("resources/posts", 4, None)]),
    );
    s.handle_text(3, &event("resources/posts", 5, "updated", "{}"));
    s.handle_text(3, r#"{"op":"ping"}"#);
    let out = drain(&mut s);
    assert_eq!(delivered(&out), vec![(vec![a], "updated#5".into())]);
    assert!(sent(&out).is_empty(), "no pong on a stream");

    s.handle_close(10, "stream error");
    let wake = s.poll_timeout().expect("retry");
    s.handle_timeout(wake);
    let out = drain(&mut s);
    assert_eq!(
        stream_query(&out).as_deref(),
        Some("channels=a%2Cb,resources%2Fposts&since=e1:0,5")
    );
}

#[cfg(feature = "sse")]
#[test]
fn sse_reopens_once_after_a_burst_of_channel_changes() {
    let mut s = sse_session(TransportKind::Sse);
    let first = s.subscribe(0, "a", all());
    s.handle_timeout(50);
    drain(&mut s);
    s.handle_text(1, &encode_hello("e1", 25_000));
    s.handle_text(2, &subscribed(&[("a", 3, None)]));
    drain(&mut s);
    s.subscribe(100, "b", all());
    s.subscribe(101, "c", all());
    s.unsubscribe(102, first);
    assert!(drain(&mut s).is_empty(), "nothing before the debounce");
    assert_eq!(s.poll_timeout(), Some(150));
    s.handle_timeout(150);
    let out = drain(&mut s);
    assert_eq!(out[0], Output::Disconnect);
    assert_eq!(stream_query(&out).as_deref(), Some("channels=b,c"));
}

#[cfg(feature = "sse")]
#[test]
fn sse_publishes_over_http_and_retries_when_unreachable() {
    let mut s = sse_session(TransportKind::Sse);
    let id = s
        .publish(0, "c", "updated", "{}", 0.0, None)
        .expect("valid");
    let out = drain(&mut s);
    let body = match &out[..] {
        [Output::PostPublish { id: i, body }] if *i == id => body.clone(),
        other => panic!("expected one POST, no stream: {other:?}"),
    };
    assert!(
        body.contains(r#""channel":"c""#) && body.contains(r#""key":"#),
        "{body}"
    );
    s.handle_publish_result(5, id, PublishResult::Unreachable("offline".into()));
    assert_eq!(s.poll_timeout(), Some(5 + 500));
    s.handle_timeout(505);
    assert_eq!(drain(&mut s), vec![Output::PostPublish { id, body }]);
    s.handle_publish_result(600, id, PublishResult::Acked(7));
    assert_eq!(drain(&mut s), vec![Output::PublishAcked { id, seq: 7 }]);

    let rejected = s.publish(700, "c", "x", "{}", 0.0, None).expect("valid");
    drain(&mut s);
    s.handle_publish_result(
        701,
        rejected,
        PublishResult::Rejected {
            code: Code::Relay(ErrorCode::BadChannel),
            message: "no".into(),
        },
    );
    assert!(matches!(
        &drain(&mut s)[..],
        [Output::PublishFailed {
            error: PublishError::Rejected { .. },
            ..
        }]
    ));
}

#[cfg(feature = "sse")]
#[test]
fn auto_falls_back_to_sse_when_websockets_never_connect() {
    let mut s = sse_session(TransportKind::Auto);
    s.subscribe(0, "a", all());
    let p = s.publish(0, "a", "x", "{}", 0.0, None).expect("valid");
    assert_eq!(drain(&mut s)[0], Output::Connect, "WebSocket first");
    s.handle_close(10, "refused");
    drain(&mut s);
    let wake = s.poll_timeout().expect("retry");
    s.handle_timeout(wake);
    assert_eq!(
        drain(&mut s)[0],
        Output::Connect,
        "one failure is not enough"
    );
    s.handle_close(wake + 10, "refused");
    let out = drain(&mut s);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Problem(m) if m.contains("Server-Sent Events"))));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::PostPublish { id, .. } if *id == p)),
        "{out:?}"
    );
    assert!(s.uses_sse());
    s.handle_publish_result(wake + 20, p, PublishResult::Acked(1));
    drain(&mut s);
    let wake = s.poll_timeout().expect("retry");
    s.handle_timeout(wake);
    assert_eq!(stream_query(&drain(&mut s)).as_deref(), Some("channels=a"));
}

#[cfg(feature = "sse")]
#[test]
fn auto_keeps_websockets_once_they_worked() {
    let mut s = sse_session(TransportKind::Auto);
    s.subscribe(0, "a", all());
    drain(&mut s);
    s.handle_text(1, &encode_hello("e1", 25_000));
    for t in [10, 2_000, 4_000] {
        s.handle_close(t, "blip");
        let wake = s.poll_timeout().expect("retry");
        s.handle_timeout(wake);
        assert_eq!(
            drain(&mut s)
                .iter()
                .find(|o| matches!(o, Output::Connect | Output::ConnectStream { .. })),
            Some(&Output::Connect)
        );
    }
    assert!(!s.uses_sse());
}

#[test]
fn skipped_events_advance_the_position_without_delivery() {
    let (mut s, subs) = open_session(&[("a", all())]);
    s.handle_text(10, &event("a", 1, "updated", "{}"));
    s.handle_text(11, r#"{"op":"skip","channel":"a","seq":2}"#);
    s.handle_text(12, &event("a", 3, "updated", "{}"));
    let out = drain(&mut s);
    assert_eq!(
        delivered(&out),
        vec![
            (vec![subs[0]], "updated#1".into()),
            (vec![subs[0]], "updated#3".into())
        ],
        "a skip is no gap and no delivery"
    );
    assert_eq!(s.stats().resyncs, 0);
}

/// Authentication: tokens from the shell, `auth` first, in-band refresh, 4001, forbidden channels.
mod auth {
    use super::*;
    use crate::engine::frame::{encode_authed, encode_channel_error, encode_error, ErrorCode};

    fn authed_session(transport: TransportKind) -> Session {
        Session::new(SessionConfig {
            transport,
            auth: true,
            ..SessionConfig::default()
        })
    }

    fn token_requests(outputs: &[Output]) -> Vec<u64> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::NeedToken { request } => Some(*request),
                _ => None,
            })
            .collect()
    }

    fn one_token_request(outputs: &[Output]) -> u64 {
        match token_requests(outputs)[..] {
            [request] => request,
            _ => panic!("expected one token request: {outputs:?}"),
        }
    }

    fn errors(outputs: &[Output]) -> Vec<(String, Option<String>, String)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Error {
                    code,
                    channel,
                    message,
                } => Some((code.name().to_owned(), channel.clone(), message.clone())),
                _ => None,
            })
            .collect()
    }

    fn auth_tokens(outputs: &[Output]) -> Vec<String> {
        sent(outputs)
            .iter()
            .filter_map(|f| match f {
                ClientFrame::Auth { token } => Some(token.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Subscribed to `channels` over an authenticated WebSocket with token `t1` valid for `ttl_ms`
    /// (answered at time 10); outputs drained.
    fn open_authed(channels: &[&str], ttl_ms: u64) -> (Session, Vec<SubId>) {
        let mut s = authed_session(TransportKind::WebSocket);
        let subs = channels.iter().map(|c| s.subscribe(0, c, all())).collect();
        let request = one_token_request(&drain(&mut s));
        s.handle_token(1, request, Ok("t1".into()));
        drain(&mut s);
        s.handle_open(2);
        s.handle_text(3, &encode_hello("e1", 25_000));
        drain(&mut s);
        s.handle_text(
            10,
            &subscribed(&channels.iter().map(|c| (*c, 0, None)).collect::<Vec<_>>()),
        );
        s.handle_text(10, &encode_authed(Some("u1"), Some(ttl_ms)));
        assert!(drain(&mut s).is_empty());
        (s, subs)
    }

    #[test]
    fn asks_for_a_token_then_sends_auth_before_subscribe() {
        let mut s = authed_session(TransportKind::WebSocket);
        s.subscribe(0, "a", all());
        let out = drain(&mut s);
        assert_eq!(
            out,
            vec![
                Output::NeedToken { request: 1 },
                Output::State(ConnectionState::Connecting)
            ],
            "no socket before the token"
        );
        s.handle_token(5, 1, Ok("t1".into()));
        assert_eq!(drain(&mut s), vec![Output::Connect]);
        assert_eq!(s.token(), Some("t1"));
        s.handle_open(6);
        s.handle_text(7, &encode_hello("e1", 25_000));
        let frames = sent(&drain(&mut s))
            .into_iter()
            .map(|f| match f {
                ClientFrame::Auth { token } => format!("auth {token}"),
                ClientFrame::Subscribe { channels } => format!(
                    "subscribe {}",
                    channels
                        .iter()
                        .map(|c| c.channel.as_ref())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>();
        assert_eq!(frames, vec!["auth t1", "subscribe a"]);
        assert_eq!(s.channel_status("a"), Some(ChannelStatus::Pending));
        s.handle_text(8, &subscribed(&[("a", 0, None)]));
        assert_eq!(s.channel_status("a"), Some(ChannelStatus::Subscribed));
    }

    #[test]
    fn without_auth_no_token_is_asked_and_no_auth_frame_sent() {
        let mut s = Session::new(SessionConfig::default());
        s.subscribe(0, "a", all());
        let out = drain(&mut s);
        assert!(token_requests(&out).is_empty());
        s.handle_text(1, &encode_hello("e1", 25_000));
        assert!(auth_tokens(&drain(&mut s)).is_empty());
    }

    #[test]
    fn the_refresh_is_scheduled_from_ttl_ms() {
        assert_eq!(refresh_delay(2_000), 1_000, "at least 1 s of margin");
        assert_eq!(
            refresh_delay(1_000),
            500,
            "half the lifetime of a short token"
        );
        assert_eq!(refresh_delay(3_600_000), 2_700_000, "75 % of a long one");
        let (s, _) = open_authed(&["a"], 2_000);
        assert_eq!(s.poll_timeout(), Some(10 + 1_000));
    }

    #[test]
    fn the_refresh_goes_in_band_without_losing_or_repeating_events() {
        let (mut s, subs) = open_authed(&["a"], 2_000);
        s.handle_text(500, &event("a", 1, "updated", "{}"));
        let mut out = drain(&mut s);
        s.handle_timeout(1_010);
        let refresh = drain(&mut s);
        let request = one_token_request(&refresh);
        assert!(
            !refresh
                .iter()
                .any(|o| matches!(o, Output::Connect | Output::Disconnect | Output::State(_))),
            "no reconnect: {refresh:?}"
        );
        s.handle_text(1_020, &event("a", 2, "updated", "{}"));
        s.handle_token(1_030, request, Ok("t2".into()));
        let sent_now = drain(&mut s);
        assert_eq!(auth_tokens(&sent_now), vec!["t2"]);
        s.handle_text(1_040, &event("a", 3, "updated", "{}"));
        s.handle_text(1_050, &encode_authed(Some("u1"), Some(2_000)));
        assert_eq!(s.poll_timeout(), Some(1_050 + 1_000), "the next refresh");
        out.extend(refresh);
        out.extend(sent_now);
        out.extend(drain(&mut s));
        assert_eq!(
            delivered(&out),
            (1..=3)
                .map(|n| (vec![subs[0]], format!("updated#{n}")))
                .collect::<Vec<_>>()
        );
        assert_eq!(s.state(), &ConnectionState::Open);
        assert_eq!(s.stats().connections, 1);
    }

    #[test]
    fn a_refused_refresh_is_reported_and_tried_again_before_expiry() {
        let (mut s, _) = open_authed(&["a"], 8_000);
        let at = s.poll_timeout().expect("refresh");
        assert_eq!(at, 10 + 6_000);
        s.handle_timeout(at);
        let request = one_token_request(&drain(&mut s));
        s.handle_token(at, request, Ok("bad".into()));
        drain(&mut s);
        s.handle_text(
            at + 10,
            &encode_error(ErrorCode::Unauthorized, "bad signature", None),
        );
        let out = drain(&mut s);
        let errs = errors(&out);
        assert_eq!(errs.len(), 1, "{out:?}");
        assert_eq!(errs[0].0, "unauthorized");
        assert!(errs[0].2.contains("refreshed token"), "{errs:?}");
        assert_eq!(
            s.state(),
            &ConnectionState::Open,
            "the old token still holds"
        );
        // Halfway between now and the expiry (at 8010).
        assert_eq!(s.poll_timeout(), Some(at + 10 + (8_010 - at - 10) / 2));
    }

    #[test]
    fn close_4001_gets_a_new_token_then_resumes_every_channel_with_since() {
        let (mut s, _) = open_authed(&["a", "b"], 2_000);
        s.handle_text(100, &event("a", 1, "updated", "{}"));
        s.handle_text(100, &event("a", 2, "updated", "{}"));
        drain(&mut s);
        s.handle_text(
            2_010,
            &encode_error(ErrorCode::Unauthorized, "token expired", None),
        );
        assert_eq!(errors(&drain(&mut s))[0].0, "unauthorized");
        s.handle_close(2_011, "connection closed (code 4001): token expired");
        drain(&mut s);
        let wake = s.poll_timeout().expect("a retry");
        s.handle_timeout(wake);
        let out = drain(&mut s);
        assert!(
            !out.contains(&Output::Connect),
            "no socket before the new token: {out:?}"
        );
        let request = one_token_request(&out);
        s.handle_token(wake + 5, request, Ok("t2".into()));
        assert_eq!(drain(&mut s), vec![Output::Connect]);
        s.handle_text(wake + 6, &encode_hello("e1", 25_000));
        let out = drain(&mut s);
        assert_eq!(auth_tokens(&out), vec!["t2"]);
        assert!(
            matches!(sent(&out)[0], ClientFrame::Auth { .. }),
            "auth first"
        );
        let after_auth: Vec<Output> = out
            .iter()
            .filter(|o| !matches!(o, Output::Send(t) if t.contains(r#""op":"auth""#)))
            .cloned()
            .collect();
        assert_eq!(
            since_of(&after_auth),
            vec![
                ("a".to_string(), Some(("e1".to_string(), 2))),
                ("b".to_string(), Some(("e1".to_string(), 0)))
            ]
        );
    }

    #[test]
    fn a_failing_get_token_backs_off_like_a_failed_connection() {
        let mut s = authed_session(TransportKind::WebSocket);
        s.subscribe(0, "a", all());
        let request = one_token_request(&drain(&mut s));
        s.handle_token(3, request, Err("getToken rejected: HTTP 503".into()));
        let out = drain(&mut s);
        let errs = errors(&out);
        assert_eq!(errs.len(), 1, "{out:?}");
        assert_eq!(errs[0].0, "get_token");
        assert!(
            errs[0].2.contains("getToken rejected: HTTP 503"),
            "{errs:?}"
        );
        let Some(Output::State(ConnectionState::Reconnecting {
            attempt: 1,
            delay_ms: Some(delay),
            reason,
        })) = out.last()
        else {
            panic!("{out:?}")
        };
        assert!(reason.contains("getToken"), "{reason}");
        assert!(*delay <= 500);
        assert!(!out.contains(&Output::Connect));
        // A late answer to the failed request changes nothing.
        s.handle_token(4, request, Ok("late".into()));
        assert!(drain(&mut s).is_empty());
        let wake = s.poll_timeout().expect("retry");
        assert_eq!(wake, 3 + delay);
        s.handle_timeout(wake);
        let request = one_token_request(&drain(&mut s));
        s.handle_token(wake + 1, request, Err("still down".into()));
        let Some(Output::State(ConnectionState::Reconnecting { attempt: 2, .. })) =
            drain(&mut s).last().cloned()
        else {
            panic!("the second failure backs off further")
        };
        let wake = s.poll_timeout().expect("retry");
        s.handle_timeout(wake);
        let request = one_token_request(&drain(&mut s));
        s.handle_token(wake + 1, request, Ok("good".into()));
        assert_eq!(drain(&mut s), vec![Output::Connect]);
        s.handle_text(wake + 2, &encode_hello("e1", 25_000));
        assert_eq!(drain(&mut s)[0], Output::State(ConnectionState::Open));
    }

    #[test]
    fn empty_and_hanging_tokens_fail_the_attempt() {
        let mut s = authed_session(TransportKind::WebSocket);
        s.subscribe(0, "a", all());
        let request = one_token_request(&drain(&mut s));
        s.handle_token(1, request, Ok(String::new()));
        assert!(errors(&drain(&mut s))[0].2.contains("empty token"));
        let wake = s.poll_timeout().expect("retry");
        s.handle_timeout(wake);
        one_token_request(&drain(&mut s));
        assert_eq!(
            s.poll_timeout(),
            Some(wake + 10_000),
            "getToken has the connect timeout"
        );
        s.handle_timeout(wake + 10_000);
        let out = drain(&mut s);
        assert!(errors(&out)[0].2.contains("did not settle"), "{out:?}");
        assert!(matches!(
            out.last(),
            Some(Output::State(ConnectionState::Reconnecting { .. }))
        ));
    }

    #[test]
    fn an_open_relay_answers_authed_without_ttl_and_nothing_is_refreshed() {
        let mut s = authed_session(TransportKind::WebSocket);
        s.subscribe(0, "a", all());
        let request = one_token_request(&drain(&mut s));
        s.handle_token(1, request, Ok("t".into()));
        s.handle_text(2, &encode_hello("e1", 25_000));
        s.handle_text(3, &encode_authed(None, None));
        drain(&mut s);
        assert_eq!(
            s.poll_timeout(),
            Some(3 + 25_000 + 10_000),
            "only the liveness deadline"
        );
    }

    #[test]
    fn a_forbidden_channel_is_reported_once_and_shows_in_its_status() {
        let mut s = authed_session(TransportKind::WebSocket);
        let ok = s.subscribe(0, "a", all());
        s.subscribe(0, "secret/x", all());
        let request = one_token_request(&drain(&mut s));
        s.handle_token(1, request, Ok("t".into()));
        s.handle_text(2, &encode_hello("e1", 25_000));
        drain(&mut s);
        s.handle_text(
            3,
            &encode_channel_error(ErrorCode::Forbidden, "not in the token", "secret/x"),
        );
        s.handle_text(3, &subscribed(&[("a", 0, None)]));
        s.handle_text(4, &event("a", 1, "updated", "{}"));
        let out = drain(&mut s);
        let errs = errors(&out);
        assert_eq!(errs.len(), 1, "{out:?}");
        assert_eq!(
            (errs[0].0.as_str(), errs[0].1.as_deref()),
            ("forbidden", Some("secret/x"))
        );
        assert!(errs[0].2.contains("not in the token"), "{errs:?}");
        assert_eq!(delivered(&out), vec![(vec![ok], "updated#1".into())]);
        assert_eq!(s.channel_status("secret/x"), Some(ChannelStatus::Forbidden));
        assert_eq!(s.channel_status("a"), Some(ChannelStatus::Subscribed));
        assert_eq!(s.channel_status("nobody"), None);

        // Another subscription to the refused channel is told too.
        s.subscribe(5, "secret/x", all());
        assert_eq!(errors(&drain(&mut s))[0].1.as_deref(), Some("secret/x"));

        // Refused again after a reconnect: not reported again.
        s.handle_close(6, "blip");
        drain(&mut s);
        let wake = s.poll_timeout().expect("retry");
        s.handle_timeout(wake);
        let request = one_token_request(&drain(&mut s));
        s.handle_token(wake, request, Ok("t".into()));
        s.handle_text(wake + 1, &encode_hello("e1", 25_000));
        let out = drain(&mut s);
        assert!(
            channels_of(&sent(&out)[1]).contains(&"secret/x".to_string()),
            "asked again: a new token may allow it"
        );
        s.handle_text(
            wake + 2,
            &encode_channel_error(ErrorCode::Forbidden, "not in the token", "secret/x"),
        );
        assert!(errors(&drain(&mut s)).is_empty());
        // Allowed by a later token: the status follows.
        s.handle_close(wake + 3, "blip");
        drain(&mut s);
        let wake = s.poll_timeout().expect("retry");
        s.handle_timeout(wake);
        let request = one_token_request(&drain(&mut s));
        s.handle_token(wake, request, Ok("t-admin".into()));
        s.handle_text(wake + 1, &encode_hello("e1", 25_000));
        s.handle_text(
            wake + 2,
            &subscribed(&[("a", 1, Some(true)), ("secret/x", 0, None)]),
        );
        drain(&mut s);
        assert_eq!(
            s.channel_status("secret/x"),
            Some(ChannelStatus::Subscribed)
        );
    }

    #[cfg(feature = "sse")]
    #[test]
    fn sse_opens_the_stream_with_the_token_and_reopens_it_before_expiry() {
        let mut s = authed_session(TransportKind::Sse);
        let sub = s.subscribe(0, "a", all());
        let p = s.publish(0, "a", "x", "{}", 0.0, None).expect("valid");
        let out = drain(&mut s);
        assert!(
            !out.iter().any(|o| matches!(o, Output::PostPublish { .. })),
            "the publish waits for a token: {out:?}"
        );
        s.handle_timeout(50);
        let out = drain(&mut s);
        assert!(stream_query(&out).is_none(), "no stream before the token");
        let request = *token_requests(&out).last().expect("a token request");
        s.handle_token(51, request, Ok("t1".into()));
        let out = drain(&mut s);
        assert!(out.contains(&Output::PostPublish {
            id: p,
            body: match &out[..] {
                [Output::PostPublish { body, .. }, ..] => body.clone(),
                _ => panic!("the held publish goes out first: {out:?}"),
            }
        }));
        assert_eq!(stream_query(&out).as_deref(), Some("channels=a"));
        assert_eq!(s.token(), Some("t1"));
        s.handle_text(52, &encode_hello("e1", 25_000));
        s.handle_text(52, &encode_authed(Some("u1"), Some(2_000)));
        s.handle_text(52, &subscribed(&[("a", 0, None)]));
        s.handle_text(60, &event("a", 1, "updated", "{}"));
        let mut events = drain(&mut s);
        assert!(sent(&events).is_empty(), "nothing is sent on a stream");
        s.handle_timeout(1_052);
        let request = one_token_request(&drain(&mut s));
        s.handle_token(1_060, request, Ok("t2".into()));
        let out = drain(&mut s);
        assert_eq!(out[0], Output::Disconnect);
        assert_eq!(
            stream_query(&out).as_deref(),
            Some("channels=a&since=e1:1"),
            "reopened with a new ticket, resuming"
        );
        assert_eq!(s.token(), Some("t2"));
        s.handle_text(1_070, &encode_hello("e1", 25_000));
        s.handle_text(1_070, &subscribed(&[("a", 2, Some(true))]));
        s.handle_text(1_070, &event("a", 1, "updated", "{}"));
        s.handle_text(1_070, &event("a", 2, "updated", "{}"));
        events.extend(drain(&mut s));
        assert_eq!(
            delivered(&events),
            vec![
                (vec![sub], "updated#1".into()),
                (vec![sub], "updated#2".into())
            ]
        );
    }

    #[cfg(feature = "sse")]
    #[test]
    fn an_sse_publish_alone_still_gets_a_token_or_fails_with_the_reason() {
        let mut s = authed_session(TransportKind::Sse);
        let p = s.publish(0, "a", "x", "{}", 0.0, None).expect("valid");
        let request = one_token_request(&drain(&mut s));
        s.handle_token(1, request, Err("getToken threw: no session".into()));
        let out = drain(&mut s);
        assert!(
            out.iter().any(|o| matches!(o, Output::PublishFailed { id, error: PublishError::Rejected { code, message } }
                if *id == p && *code == Code::GetToken && message.contains("no session"))),
            "{out:?}"
        );
    }

    #[test]
    fn a_relay_requiring_tokens_says_so_to_a_client_without_one() {
        let (mut s, _) = open_session(&[("a", all())]);
        s.handle_text(5, &encode_error(ErrorCode::Unauthorized, "no token", None));
        let errs = errors(&drain(&mut s));
        assert!(errs[0].2.contains("`getToken`"), "{errs:?}");
    }
}

/// Several relay URLs (nodes of one cluster): where each attempt goes.
mod relays {
    use super::*;

    fn cluster(relays: usize, transport: TransportKind) -> Session {
        Session::new(SessionConfig {
            relays,
            transport,
            seed: 42,
            ..SessionConfig::default()
        })
    }

    /// Subscribes, then fails `failures` attempts in a row (each refused at once). Returns the
    /// relay of every attempt (one more than the failures: the attempt after the last one) and
    /// the (attempt, delay) of every reconnect.
    fn failing_attempts(s: &mut Session, failures: usize) -> (Vec<usize>, Vec<(u32, Millis)>) {
        s.subscribe(0, "a", all());
        let (mut relays, mut waits) = (Vec::new(), Vec::new());
        let mut now = 0;
        for _ in 0..=failures {
            let out = drain(s);
            assert!(out.contains(&Output::Connect), "{out:?}");
            relays.push(s.relay());
            if relays.len() > failures {
                break;
            }
            now += 1;
            s.handle_close(now, "refused");
            match drain(s).last() {
                Some(Output::State(ConnectionState::Reconnecting {
                    attempt,
                    delay_ms: Some(delay),
                    ..
                })) => waits.push((*attempt, *delay)),
                other => panic!("{other:?}"),
            }
            now = s.poll_timeout().expect("a retry is scheduled");
            s.handle_timeout(now);
        }
        (relays, waits)
    }

    #[test]
    fn failed_attempts_go_round_robin_with_the_same_backoff() {
        let mut s = cluster(3, TransportKind::WebSocket);
        let (relays, waits) = failing_attempts(&mut s, 7);
        assert_eq!(
            relays,
            vec![0, 1, 2, 0, 1, 2, 0, 1],
            "in order, wrapping around"
        );

        // The backoff is exactly the one of a single relay: no delay added, none skipped.
        let mut single = cluster(1, TransportKind::WebSocket);
        let (single_relays, single_waits) = failing_attempts(&mut single, 7);
        assert_eq!(single_relays, vec![0; 8]);
        assert_eq!(waits, single_waits);
        assert_eq!(
            waits
                .iter()
                .map(|(attempt, _)| *attempt)
                .collect::<Vec<_>>(),
            (1..=7).collect::<Vec<_>>()
        );
        for (attempt, delay) in waits {
            assert!(
                delay <= (500u64 << (attempt - 1)).min(20_000),
                "{attempt}: {delay}"
            );
        }
    }

    #[test]
    fn a_dropped_connection_resumes_on_the_next_relay_from_its_positions() {
        let mut s = cluster(2, TransportKind::WebSocket);
        let sub = s.subscribe(0, "a", all());
        s.subscribe(0, "b", all());
        assert_eq!(s.relay(), 0);
        s.handle_text(1, &encode_hello("cluster-epoch", 25_000));
        s.handle_text(2, &subscribed(&[("a", 0, None), ("b", 7, None)]));
        s.handle_text(3, &event("a", 1, "updated", "{}"));
        s.handle_text(4, &event("a", 2, "updated", "{}"));
        drain(&mut s);

        // A stable connection drops (node killed): the first retry goes to the other relay, with
        // the smallest delay, as a reconnect to the same URL would.
        s.handle_close(10_000, "connection closed (code 1006)");
        assert_eq!(s.relay(), 1);
        let out = drain(&mut s);
        let Some(Output::State(ConnectionState::Reconnecting {
            attempt: 1,
            delay_ms: Some(delay),
            ..
        })) = out.last()
        else {
            panic!("{out:?}")
        };
        assert!(*delay <= 500, "{delay}");
        let wake = s.poll_timeout().expect("a retry");
        assert_eq!(wake, 10_000 + delay);
        s.handle_timeout(wake);
        assert_eq!(
            drain(&mut s),
            vec![Output::Connect, Output::State(ConnectionState::Connecting)]
        );
        assert_eq!(s.relay(), 1);

        // The other node announces the same epoch: every channel resumes from its position.
        s.handle_text(wake + 1, &encode_hello("cluster-epoch", 25_000));
        let out = drain(&mut s);
        assert_eq!(
            since_of(&out),
            vec![
                ("a".into(), Some(("cluster-epoch".into(), 2))),
                ("b".into(), Some(("cluster-epoch".into(), 7)))
            ]
        );
        s.handle_text(
            wake + 2,
            &subscribed(&[("a", 3, Some(true)), ("b", 7, Some(true))]),
        );
        for seq in 2..=3 {
            s.handle_text(wake + 3, &event("a", seq, "updated", "{}"));
        }
        assert_eq!(
            delivered(&drain(&mut s)),
            vec![(vec![sub], "updated#3".into())]
        );
        assert_eq!(s.stats().resyncs, 0);
        assert_eq!(s.stats().duplicates, 1);
        assert_eq!(s.stats().connections, 2);

        // The next drop wraps around to the first relay.
        s.handle_close(wake + 10, "cut");
        assert_eq!(s.relay(), 0);
    }

    #[test]
    fn timeouts_move_on_but_the_page_and_tokens_do_not() {
        let mut s = cluster(3, TransportKind::WebSocket);
        s.subscribe(0, "a", all());
        drain(&mut s);
        // No hello within connect_timeout_ms: the relay failed.
        s.handle_timeout(10_000);
        assert_eq!(s.relay(), 1);
        let wake = s.poll_timeout().expect("a retry");
        s.handle_timeout(wake);
        s.handle_text(wake, &encode_hello("e1", 25_000));
        drain(&mut s);
        // Nothing heard for ping + grace: the relay failed.
        let deadline = s.poll_timeout().expect("liveness");
        s.handle_timeout(deadline);
        assert_eq!(s.relay(), 2);
        let wake = s.poll_timeout().expect("a retry");
        s.handle_timeout(wake);
        s.handle_text(wake, &encode_hello("e1", 25_000));
        drain(&mut s);

        // Offline, then online: the relay did nothing wrong; the same one again.
        s.set_online(wake + 1, false);
        assert_eq!(drain(&mut s)[0], Output::Disconnect);
        s.set_online(wake + 2, true);
        assert_eq!(drain(&mut s)[0], Output::Connect);
        assert_eq!(s.relay(), 2);

        // Idle close and a new subscription: the same one again.
        let mut s = cluster(2, TransportKind::WebSocket);
        let sub = s.subscribe(0, "a", all());
        s.handle_text(1, &encode_hello("e1", 25_000));
        s.unsubscribe(2, sub);
        s.handle_timeout(s.poll_timeout().expect("idle close"));
        assert_eq!(s.state(), &ConnectionState::Idle);
        s.subscribe(10_000, "b", all());
        assert_eq!(
            drain(&mut s)
                .iter()
                .filter(|o| **o == Output::Connect)
                .count(),
            2
        );
        assert_eq!(s.relay(), 0);

        // No token: no relay was tried.
        let mut s = Session::new(SessionConfig {
            relays: 2,
            auth: true,
            ..SessionConfig::default()
        });
        s.subscribe(0, "a", all());
        let request = drain(&mut s)
            .iter()
            .find_map(|o| match o {
                Output::NeedToken { request } => Some(*request),
                _ => None,
            })
            .expect("a token request");
        s.handle_token(1, request, Err("getToken threw".into()));
        assert_eq!(s.relay(), 0);
    }

    #[cfg(feature = "sse")]
    #[test]
    fn auto_gives_every_relay_a_websocket_chance_before_sse() {
        let mut s = cluster(3, TransportKind::Auto);
        let (relays, _) = failing_attempts(&mut s, 2);
        assert_eq!(
            relays,
            vec![0, 1, 2],
            "three WebSocket attempts, one per relay"
        );
        assert!(!s.uses_sse());
        s.handle_close(s.poll_timeout().unwrap_or_default(), "refused");
        assert!(s.uses_sse(), "every relay refused the WebSocket");
        assert_eq!(s.relay(), 0);
        let wake = s.poll_timeout().expect("a retry");
        s.handle_timeout(wake);
        assert_eq!(stream_query(&drain(&mut s)).as_deref(), Some("channels=a"));
        assert_eq!(s.relay(), 0);
    }

    #[cfg(feature = "sse")]
    #[test]
    fn sse_streams_move_on_when_they_fail_but_not_when_they_reopen() {
        let mut s = cluster(2, TransportKind::Sse);
        s.subscribe(0, "a", all());
        s.handle_timeout(50);
        assert!(stream_query(&drain(&mut s)).is_some());
        s.handle_text(51, &encode_hello("e1", 25_000));
        s.handle_text(52, &subscribed(&[("a", 4, None)]));
        s.subscribe(100, "b", all());
        s.handle_timeout(150);
        assert_eq!(
            stream_query(&drain(&mut s)).as_deref(),
            Some("channels=a,b&since=e1:4,")
        );
        assert_eq!(s.relay(), 0, "a reopen for new channels stays");
        s.handle_close(200, "the event stream failed or was closed");
        assert_eq!(s.relay(), 1);
        let wake = s.poll_timeout().expect("a retry");
        s.handle_timeout(wake);
        assert_eq!(
            stream_query(&drain(&mut s)).as_deref(),
            Some("channels=a,b&since=e1:4,")
        );
    }

    #[test]
    fn zero_relays_count_as_one() {
        let mut s = cluster(0, TransportKind::WebSocket);
        let (relays, _) = failing_attempts(&mut s, 2);
        assert_eq!(relays, vec![0, 0, 0]);
    }
}

/// Issue 12, fault 2: on a reconnect, a frame before `hello` is a protocol violation — the event
/// is not delivered, the position does not move, and the connection is dropped and retried.
#[test]
fn a_frame_before_hello_is_a_violation_that_drops_the_connection() {
    let (mut s, _) = open_session(&[("a", all())]);
    s.handle_text(10, &event("a", 1, "updated", "{}"));
    drain(&mut s);
    s.handle_close(20, "cut");
    drain(&mut s);
    let wake = s.poll_timeout().expect("a retry is scheduled");
    s.handle_timeout(wake);
    drain(&mut s);
    s.handle_open(wake + 1);
    let problems = s.problems();
    s.handle_text(wake + 2, &event("a", 2, "updated", "{}"));
    let out = drain(&mut s);
    assert!(delivered(&out).is_empty(), "{out:?}");
    assert_eq!(s.problems(), problems + 1);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Problem(m) if m.contains("before `hello`"))),
        "{out:?}"
    );
    assert!(out.contains(&Output::Disconnect), "{out:?}");
    assert!(
        matches!(s.state(), ConnectionState::Reconnecting { .. }),
        "{:?}",
        s.state()
    );
    // The next connection resumes from the last event really delivered.
    let wake = s.poll_timeout().expect("a retry is scheduled");
    s.handle_timeout(wake);
    drain(&mut s);
    s.handle_text(wake + 1, &encode_hello("e1", 25_000));
    let out = drain(&mut s);
    assert_eq!(since_of(&out), vec![("a".into(), Some(("e1".into(), 1)))]);
}

/// Issue 12, fault 3: a binary frame is reported and counted like any other unexpected frame.
#[test]
fn a_binary_frame_is_counted_in_problems() {
    let (mut s, _) = open_session(&[("a", all())]);
    s.handle_binary(10);
    let out = drain(&mut s);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Problem(m) if m.contains("binary"))),
        "{out:?}"
    );
    assert_eq!(s.problems(), 1);
    assert_eq!(s.state(), &ConnectionState::Open);
}

/// Issue 12, fault 4: no deadline is further than `setTimeout` can wait (2^31-1 ms), whatever the
/// relay announces or the options say; a longer one made the browser fire at once, in a loop.
#[test]
fn no_deadline_is_further_than_set_timeout_can_wait() {
    let mut s = Session::new(SessionConfig::default());
    s.subscribe(0, "a", all());
    s.handle_text(1, &encode_hello("e1", 1_000_000_000_000));
    drain(&mut s);
    let at = s.poll_timeout().expect("a liveness deadline");
    assert!(at - 1 <= MAX_TIMER_MS, "liveness deadline {at}");

    let mut s = Session::new(SessionConfig {
        connect_timeout_ms: 3_000_000_000,
        ..SessionConfig::default()
    });
    s.subscribe(0, "a", all());
    let at = s.poll_timeout().expect("a connect deadline");
    assert!(at <= MAX_TIMER_MS, "connect deadline {at}");

    // And the shell's clamp on what it hands to `setTimeout`.
    assert_eq!(timer_delay(10, 4), 6.0);
    assert_eq!(timer_delay(3, 4), 0.0);
    assert_eq!(timer_delay(u64::MAX, 0), MAX_TIMER_MS as f64);
}

/// Drops the open connection at `now` and brings the next one up to `hello` (and, when
/// `answered`, its `subscribed` answer) one millisecond after the retry; returns the reported
/// (attempt, delay) and when the connection came up.
fn flap(s: &mut Session, now: Millis, answered: bool) -> (u32, Millis, Millis) {
    s.handle_close(now, "cut");
    let out = drain(s);
    let Some(Output::State(ConnectionState::Reconnecting {
        attempt,
        delay_ms: Some(delay),
        ..
    })) = out.last()
    else {
        panic!("{out:?}")
    };
    let (attempt, delay) = (*attempt, *delay);
    let wake = s.poll_timeout().expect("a retry is scheduled");
    s.handle_timeout(wake);
    s.handle_open(wake);
    s.handle_text(wake + 1, &encode_hello("e1", 25_000));
    if answered {
        s.handle_text(wake + 1, &subscribed(&[("a", 0, Some(true))]));
    }
    drain(s);
    (attempt, delay, wake + 1)
}

/// Issue 12, fault 1: a link cut every few hundred milliseconds, whose every connection gets its
/// `subscribed` answer, keeps retrying within `backoff_min_ms` instead of climbing to seconds.
#[test]
fn a_flapping_link_whose_connections_were_useful_keeps_short_delays() {
    let (mut s, _) = open_session(&[("a", all())]);
    let mut now = 400;
    for i in 0..40 {
        let (_, delay, up) = flap(&mut s, now, true);
        assert!(delay <= 500, "cut {i}: delay {delay}");
        now = up + 300 + (i * 37) % 400; // cut again 300..700 ms later
    }
}

/// Issue 12, fault 1 (the guard): connections that fail before they are useful — refused, or
/// dropped after `hello` but before `subscribed` — still back off up to `backoff_max_ms`.
#[test]
fn refused_and_useless_connections_still_back_off_to_the_maximum() {
    let (mut s, _) = open_session(&[("a", all())]);
    let mut now = 400;
    for expected in 1..=10 {
        s.handle_close(now, "refused");
        let out = drain(&mut s);
        assert!(
            matches!(out.last(), Some(Output::State(ConnectionState::Reconnecting { attempt, .. })) if *attempt == expected),
            "{out:?}"
        );
        now = s.poll_timeout().expect("retry");
        s.handle_timeout(now);
        drain(&mut s);
    }
    // hello but never `subscribed`: not useful either.
    let (mut s, _) = open_session(&[("a", all())]);
    let mut now = 400;
    for expected in 1..=10 {
        let (attempt, _, up) = flap(&mut s, now, false);
        assert_eq!(attempt, expected);
        now = up + 600;
    }
}

/// Issue 12, fault 1 (the crash loop): a relay that answers `subscribed` and dies at once is not
/// retried at full speed: a connection counts as useful only after `MIN_USEFUL_MS` of service.
#[test]
fn a_relay_that_crashes_right_after_subscribed_still_backs_off() {
    let (mut s, _) = open_session(&[("a", all())]);
    let mut now = 400;
    let mut attempts = Vec::new();
    for _ in 0..10 {
        let (attempt, _, up) = flap(&mut s, now, true);
        attempts.push(attempt);
        now = up + MIN_USEFUL_MS - 1;
    }
    assert_eq!(attempts, (1..=10).collect::<Vec<_>>());
}

/// Issue 12, fault 7: an event with a `date` outside JS Date's range or a `meta` that is not an
/// object is still delivered (never lost), with the date left for the shell to replace by the
/// receipt time (NaN) and the meta dropped; each oddity counted and reported.
#[test]
fn odd_date_and_meta_are_reported_and_the_event_still_delivered() {
    let (mut s, subs) = open_session(&[("a", all())]);
    let payload = RawValue::from_string("{}".into()).expect("JSON");
    let text = RawValue::from_string(r#""text""#.into()).expect("JSON");
    let object = RawValue::from_string(r#"{"k":1}"#.into()).expect("JSON");
    s.handle_text(
        10,
        &encode_event("a", 1, "updated", &payload, 1e300, Some(&text)),
    );
    s.handle_text(
        11,
        &encode_event("a", 2, "updated", &payload, 8.64e15, Some(&object)),
    );
    s.handle_text(
        12,
        &encode_event("a", 3, "updated", &payload, -8.64e15 - 1.0, None),
    );
    let out = drain(&mut s);
    let events: Vec<&Event> = out
        .iter()
        .filter_map(|o| match o {
            Output::Deliver { subs: d, event } if d == &subs => Some(event),
            _ => None,
        })
        .collect();
    assert_eq!(events.len(), 3, "{out:?}");
    assert!(events[0].date.is_nan());
    assert_eq!(events[0].meta, None);
    assert_eq!(events[1].date, 8.64e15);
    assert_eq!(events[1].meta.as_deref(), Some(r#"{"k":1}"#));
    assert!(events[2].date.is_nan());
    assert_eq!(s.problems(), 3, "{out:?}");
    let reported = out
        .iter()
        .filter(|o| matches!(o, Output::Problem(m) if m.contains("`date`") || m.contains("`meta`")))
        .count();
    assert_eq!(reported, 3, "{out:?}");
}

/// Issue 12, fault 5: a frame over `maxFrameBytes` (dropped by the shell before it enters wasm)
/// may have been an event: a protocol violation — counted, reported, the connection dropped and
/// retried from the last delivered position, so the relay replays it or a `$resync` covers it.
#[test]
fn an_oversized_frame_drops_the_connection_and_resumes_from_the_position() {
    let (mut s, _) = open_session(&[("a", all())]);
    s.handle_text(10, &event("a", 1, "updated", "{}"));
    drain(&mut s);
    s.handle_oversized(20, 10 << 20, 1 << 20);
    let out = drain(&mut s);
    assert_eq!(s.problems(), 1);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Problem(m) if m.contains("10485760"))),
        "{out:?}"
    );
    assert!(out.contains(&Output::Disconnect), "{out:?}");
    assert!(matches!(s.state(), ConnectionState::Reconnecting { .. }));
    let wake = s.poll_timeout().expect("a retry is scheduled");
    s.handle_timeout(wake);
    drain(&mut s);
    s.handle_text(wake + 1, &encode_hello("e1", 25_000));
    let out = drain(&mut s);
    assert_eq!(since_of(&out), vec![("a".into(), Some(("e1".into(), 1)))]);
}

/// Issue 13, item 2: a session with coalescing on, connected, its subscriptions answered.
fn open_coalescing_session(window_ms: Millis, subs: &[(&str, Filter)]) -> (Session, Vec<SubId>) {
    let mut s = Session::new(SessionConfig {
        coalesce_ms: window_ms,
        ..SessionConfig::default()
    });
    let ids = subs
        .iter()
        .map(|(c, f)| s.subscribe(0, c, f.clone()))
        .collect();
    s.handle_text(2, &encode_hello("e1", 25_000));
    let channels: Vec<&str> = s.registry().channels().collect::<Vec<_>>();
    let answer = subscribed(&channels.iter().map(|c| (*c, 0, None)).collect::<Vec<_>>());
    s.handle_text(3, &answer);
    drain(&mut s);
    (s, ids)
}

/// Runs the session's timer until `until`, as the shell would; returns every output.
fn run_timers(s: &mut Session, until: Millis) -> Vec<Output> {
    let mut out = drain(s);
    while let Some(at) = s.poll_timeout().filter(|at| *at <= until) {
        s.handle_timeout(at);
        out.extend(drain(s));
    }
    out
}

/// Issue 13, item 2: 50 updates of post 2 in 150 ms reach a list and a `useOne(2)` subscription
/// as the first event at once and one trailing event carrying the merged count and ids.
#[test]
fn coalescing_turns_a_burst_into_the_first_event_and_one_trailing_event() {
    let (mut s, subs) = open_coalescing_session(
        250,
        &[("resources/posts", all()), ("resources/posts", ids(&["2"]))],
    );
    let mut out = Vec::new();
    for i in 0..50u64 {
        let now = 1_000 + i * 3;
        out.extend(run_timers(&mut s, now));
        s.handle_text(
            now,
            &event("resources/posts", i + 1, "updated", r#"{"ids":[2]}"#),
        );
        out.extend(drain(&mut s));
    }
    // An update of another post in the window reaches the list only.
    s.handle_text(
        1_200,
        &event("resources/posts", 51, "updated", r#"{"ids":[3]}"#),
    );
    out.extend(run_timers(&mut s, 10_000));
    assert_eq!(
        delivered(&out),
        vec![
            (subs.clone(), "updated#1".to_owned()),
            (vec![subs[0]], "updated#51".to_owned()),
            (vec![subs[1]], "updated#50".to_owned()),
        ],
        "{out:?}"
    );
    let trailing: Vec<&Event> = out
        .iter()
        .filter_map(|o| match o {
            Output::Deliver { event, .. } if event.seq > 1 => Some(event),
            _ => None,
        })
        .collect();
    assert_eq!(
        trailing[0].meta.as_deref(),
        Some(r#"{"coalesced":50,"ids":[2,3]}"#)
    );
    assert_eq!(trailing[0].payload, r#"{"ids":[2,3]}"#);
    assert_eq!(
        trailing[1].meta.as_deref(),
        Some(r#"{"coalesced":49,"ids":[2]}"#)
    );
    assert_eq!(s.stats().coalesced, 49 + 48);
    assert_eq!(
        s.poll_timeout(),
        Some(1_200 + 25_000 + 10_000),
        "no window left open: only the liveness deadline"
    );
}

/// Off (the default), every event is delivered as it comes.
#[test]
fn without_coalescing_every_event_of_a_burst_is_delivered() {
    let (mut s, subs) = open_session(&[("resources/posts", ids(&["2"]))]);
    let mut out = Vec::new();
    for i in 0..50u64 {
        s.handle_text(
            1_000 + i * 3,
            &event("resources/posts", i + 1, "updated", r#"{"ids":[2]}"#),
        );
        out.extend(drain(&mut s));
    }
    out.extend(run_timers(&mut s, 10_000));
    assert_eq!(delivered(&out).len(), 50);
    assert!(delivered(&out).iter().all(|(to, _)| *to == subs));
    assert_eq!(s.stats().coalesced, 0);
}

/// A resync is delivered at once, ends the window and drops what it held; a subscription with its
/// own window of 0 gets every event while the others coalesce.
#[test]
fn coalescing_never_delays_a_resync_and_windows_are_per_subscription() {
    let (mut s, subs) = open_coalescing_session(250, &[("a", all()), ("a", all())]);
    s.set_coalesce_ms(subs[1], 0);
    s.handle_text(10, &event("a", 1, "updated", "{}"));
    s.handle_text(20, &event("a", 2, "updated", "{}"));
    s.handle_text(30, &event("a", 3, "updated", "{}"));
    // Events 4 and 5 never arrive: the gap resyncs both subscriptions at once.
    s.handle_text(40, &event("a", 6, "updated", "{}"));
    let out = run_timers(&mut s, 1_000);
    assert_eq!(
        delivered(&out),
        vec![
            (subs.clone(), "updated#1".to_owned()),
            (vec![subs[1]], "updated#2".to_owned()),
            (vec![subs[1]], "updated#3".to_owned()),
            (subs.clone(), "resync".to_owned()),
            (subs.clone(), "updated#6".to_owned()),
        ],
        "{out:?}"
    );
    assert_eq!(
        s.stats().coalesced,
        2,
        "events 2 and 3 were covered by the resync"
    );
    // Closing drops what a window holds: nothing is delivered afterwards.
    s.handle_text(1_100, &event("a", 7, "updated", "{}"));
    s.handle_text(1_110, &event("a", 8, "updated", "{}"));
    s.unsubscribe(1_120, subs[1]);
    s.close("done");
    let out = run_timers(&mut s, 5_000);
    assert_eq!(
        delivered(&out),
        vec![
            (subs.clone(), "updated#7".to_owned()),
            (vec![subs[1]], "updated#8".to_owned()),
        ],
        "{out:?}"
    );
}

#[test]
fn stats_count_delivered_events_and_those_replayed_after_a_cut() {
    let (mut s, _) = open_session(&[("a", all()), ("b", all())]);
    s.handle_text(10, &event("a", 1, "updated", "{}"));
    s.handle_text(11, &event("a", 2, "updated", "{}"));
    assert_eq!((s.stats().delivered, s.stats().replayed), (2, 0));

    // Cut: 3 and 4 were published meanwhile; the relay replays them (and 2, already seen).
    reconnect(&mut s, 20, "e1");
    s.handle_text(
        30,
        &subscribed(&[("a", 4, Some(true)), ("b", 0, Some(true))]),
    );
    for seq in 2..=5 {
        s.handle_text(31, &event("a", seq, "updated", "{}"));
    }
    s.handle_text(32, &event("b", 1, "updated", "{}"));
    let stats = s.stats();
    assert_eq!(
        (stats.delivered, stats.replayed, stats.duplicates),
        (6, 2, 1),
        "3 and 4 replayed; 5 and b#1 live; 2 dropped"
    );

    // Cut again in the middle of a replay (6..=8): the next resume replays the rest, and 9.
    reconnect(&mut s, 40, "e1");
    s.handle_text(
        50,
        &subscribed(&[("a", 8, Some(true)), ("b", 1, Some(true))]),
    );
    s.handle_text(51, &event("a", 6, "updated", "{}"));
    reconnect(&mut s, 60, "e1");
    s.handle_text(
        70,
        &subscribed(&[("a", 9, Some(true)), ("b", 1, Some(true))]),
    );
    for seq in 7..=10 {
        s.handle_text(71, &event("a", seq, "updated", "{}"));
    }
    assert_eq!((s.stats().delivered, s.stats().replayed), (11, 6));

    // Not recovered: a resync, and what follows is live.
    reconnect(&mut s, 80, "e2");
    s.handle_text(
        90,
        &subscribed(&[("a", 20, Some(false)), ("b", 1, Some(false))]),
    );
    s.handle_text(91, &event("a", 21, "updated", "{}"));
    let stats = s.stats();
    assert_eq!((stats.delivered, stats.replayed), (12, 6));
    assert_eq!(stats.resyncs, 2);
}

/// An Igniter.js server refuses a stream naming a channel its app never registered (HTTP 500): the
/// channel is reported once, dropped from the stream at once (no backoff), and not asked again.
#[cfg(feature = "sse")]
#[test]
fn a_refused_channel_is_reported_and_dropped_and_the_others_go_on() {
    let mut s = sse_session(TransportKind::Sse);
    let posts = s.subscribe(0, "posts.list", all());
    let refine = s.subscribe(0, "resources/posts", all());
    s.handle_timeout(50);
    let out = drain(&mut s);
    assert_eq!(
        stream_query(&out).as_deref(),
        Some("channels=posts.list,resources%2Fposts")
    );
    let refusal = (
        "resources/posts".to_owned(),
        "HTTP 500 for `resources/posts`".to_owned(),
    );
    s.refuse_channels(60, core::slice::from_ref(&refusal));
    let out = drain(&mut s);
    assert!(out.contains(&Output::Error {
        code: Code::Refused,
        channel: Some("resources/posts".into()),
        message: "HTTP 500 for `resources/posts`".into(),
    }));
    assert_eq!(
        stream_query(&out).as_deref(),
        Some("channels=posts.list"),
        "reopened at once without it: {out:?}"
    );
    assert_eq!(s.stats().problems, 1);
    assert_eq!(
        s.subscription_status(refine),
        Some(ChannelStatus::Forbidden)
    );
    s.handle_text(61, &encode_hello("e1", 25_000));
    s.handle_text(62, &subscribed(&[("posts.list", 0, Some(false))]));
    assert_eq!(
        s.subscription_status(posts),
        Some(ChannelStatus::Subscribed)
    );
    assert_eq!(s.state(), &ConnectionState::Open);
    // Refused again: reported once more to a new subscription, not asked of the server.
    let again = s.subscribe(70, "resources/posts", all());
    let out = drain(&mut s);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Error {
            code: Code::Refused,
            ..
        }
    )));
    s.handle_timeout(200);
    assert!(stream_query(&drain(&mut s)).is_none(), "no reopen for it");
    // Once every subscription of it has ended, it may be asked again.
    s.unsubscribe(300, refine);
    s.unsubscribe(300, again);
    assert!(
        stream_query(&drain(&mut s)).is_none(),
        "not in the stream: nothing to reopen"
    );
    s.subscribe(400, "resources/posts", all());
    s.handle_timeout(450);
    assert_eq!(
        stream_query(&drain(&mut s)).as_deref(),
        Some("channels=posts.list,resources%2Fposts&since=e1:0,")
    );
    // Every channel refused: idle, not retried.
    s.unsubscribe(500, posts);
    s.handle_timeout(550);
    drain(&mut s);
    s.refuse_channels(560, core::slice::from_ref(&refusal));
    drain(&mut s);
    assert_eq!(s.state(), &ConnectionState::Idle);
    assert_eq!(s.poll_timeout(), None);
}

/// Issue 12, item 4: an event of a channel the connection never subscribed to is a relay bug,
/// counted and dropped; one of a channel it has just unsubscribed (in flight) is dropped quietly.
#[test]
fn events_of_channels_never_subscribed_are_counted_and_dropped() {
    let (mut s, subs) = open_session(&[("a", all()), ("b", all())]);
    s.handle_text(10, &event("stranger", 1, "updated", "{}"));
    let out = drain(&mut s);
    assert!(delivered(&out).is_empty());
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Problem(m) if m.contains("`stranger`"))),
        "{out:?}"
    );
    assert_eq!(s.problems(), 1);

    // Unsubscribed a moment ago: its events in flight are no problem.
    assert!(s.unsubscribe(11, subs[1]));
    s.handle_text(12, &event("b", 1, "updated", "{}"));
    let out = drain(&mut s);
    assert!(delivered(&out).is_empty());
    assert_eq!(s.problems(), 1);
    assert_eq!(s.state(), &ConnectionState::Open);

    // A new connection forgets what the old one left: `b` is a stranger there.
    reconnect(&mut s, 20, "e1");
    s.handle_text(21, &subscribed(&[("a", 0, Some(true))]));
    s.handle_text(22, &event("b", 2, "updated", "{}"));
    drain(&mut s);
    assert_eq!(s.problems(), 2);
}

/// Issue 11: with `deliver_frames` (the browser shell's setting), each delivery of the frame being
/// handled is an `Output::DeliverFrame` (the shell builds the event from the frame it holds), and
/// only an event a coalescing window held back comes as an owned `Output::Deliver`. Fed the same
/// frames, a session with it and one without deliver the same events to the same subscriptions.
#[test]
fn deliver_frames_names_the_subscriptions_of_the_frame_and_changes_nothing_else() {
    for window_ms in [0, 250] {
        let subs = [
            ("resources/posts", all()),
            ("resources/posts", ids(&["2"])),
            ("resources/posts", ids(&["3"])),
            ("resources/users", all()),
        ];
        let mut sessions = [false, true].map(|deliver_frames| {
            let mut s = Session::new(SessionConfig {
                coalesce_ms: window_ms,
                deliver_frames,
                ..SessionConfig::default()
            });
            for (c, f) in &subs {
                s.subscribe(0, c, f.clone());
            }
            s.handle_text(2, &encode_hello("e1", 25_000));
            let answer = subscribed(&[("resources/posts", 0, None), ("resources/users", 0, None)]);
            s.handle_text(3, &answer);
            drain(&mut s);
            s
        });
        let mut rng = crate::engine::backoff::XorShift::new(7 + window_ms);
        let mut seqs = [0u64; 2];
        let mut got: [Vec<(Vec<SubId>, u64)>; 2] = [Vec::new(), Vec::new()];
        let mut frames_delivered = 0;
        let mut now = 1_000;
        for _ in 0..400 {
            // Bursts and pauses: gaps of 1 ms to 0.6 s.
            now += 1 + rng.next_u64() % 600;
            let channel = (rng.next_u64() % 2) as usize;
            seqs[channel] += 1;
            let id = rng.next_u64() % 4;
            let text = event(
                ["resources/posts", "resources/users"][channel],
                seqs[channel],
                ["created", "updated", "deleted"][(rng.next_u64() % 3) as usize],
                &cat!("{\"ids\":[", id, "]}"),
            );
            for (k, s) in sessions.iter_mut().enumerate() {
                for o in run_timers(s, now) {
                    if let Output::Deliver { subs, event } = o {
                        got[k].push((subs, event.seq));
                    }
                }
                s.handle_text(now, &text);
                for o in drain(s) {
                    match o {
                        Output::Deliver { subs, event } => got[k].push((subs, event.seq)),
                        Output::DeliverFrame { subs } => {
                            assert_eq!(k, 1, "only with deliver_frames");
                            frames_delivered += 1;
                            got[k].push((subs, seqs[channel]));
                        }
                        _ => {}
                    }
                }
            }
        }
        for (k, s) in sessions.iter_mut().enumerate() {
            for o in run_timers(s, 1_000_000) {
                if let Output::Deliver { subs, event } = o {
                    got[k].push((subs, event.seq));
                }
            }
        }
        assert!(
            frames_delivered > 100,
            "window {window_ms}: {frames_delivered}"
        );
        assert_eq!(got[0], got[1], "window {window_ms}");
    }
}

/// Issue 11: the browser shell parses each frame once in JS and hands the engine only an `event`
/// frame's keys (`handle_event`). Fed the same stream (duplicates, gaps, events for channels
/// nobody subscribed to, coalescing on and off), it does exactly what `handle_text` does with the
/// frame's text: same outputs in the same order, same stats, same positions.
#[test]
fn handle_event_with_the_frames_keys_does_what_handle_text_does() {
    for window_ms in [0, 250] {
        let subs = [
            ("resources/posts", all()),
            ("resources/posts", ids(&["2"])),
            (
                "resources/posts",
                Filter::new(TypeFilter::from_types(["deleted"]), None),
            ),
            ("resources/users", ids(&["1", "3"])),
        ];
        let mut sessions = [(); 2].map(|_| {
            let mut s = Session::new(SessionConfig {
                coalesce_ms: window_ms,
                ..SessionConfig::default()
            });
            for (c, f) in &subs {
                s.subscribe(0, c, f.clone());
            }
            s
        });
        let channels = ["resources/posts", "resources/users", "resources/other"];
        let mut rng = crate::engine::backoff::XorShift::new(11 + window_ms);
        let mut seqs = [0u64; 3];
        let mut now = 1;
        let mut deliveries = 0;
        for step in 0..600u64 {
            now += 1 + rng.next_u64() % 400;
            let c = (rng.next_u64() % 3) as usize;
            // Mostly the next seq; sometimes a duplicate, sometimes a gap.
            match rng.next_u64() % 10 {
                0 => {}
                1 => seqs[c] += 3,
                _ => seqs[c] += 1,
            }
            let kind = ["created", "updated", "deleted"][(rng.next_u64() % 3) as usize];
            let ids: Option<Vec<RecordId>> = match rng.next_u64() % 3 {
                0 => None,
                _ => Some(vec![cat!(rng.next_u64() % 4), cat!(rng.next_u64() % 4)]),
            };
            let payload = match &ids {
                None => "{\"title\":\"x\"}".to_owned(),
                Some(ids) => cat!(
                    "{\"ids\":[",
                    ids[0].as_str(),
                    ",\"",
                    ids[1].as_str(),
                    "\"]}"
                ),
            };
            let text = event(channels[c], seqs[c], kind, &payload);
            let mut outputs: [Vec<Output>; 2] = [Vec::new(), Vec::new()];
            for (k, s) in sessions.iter_mut().enumerate() {
                // The connection opens at the start and is cut and resumed once, half way.
                if step == 0 || step == 300 {
                    if step == 300 {
                        s.handle_close(now, "cut");
                        run_timers(s, now + 60_000);
                    }
                    s.handle_open(now);
                    s.handle_text(now, &encode_hello("e1", 25_000));
                    let answer: Vec<_> = channels
                        .iter()
                        .zip(seqs)
                        .map(|(c, seq)| (*c, seq, None))
                        .collect();
                    s.handle_text(now, &subscribed(&answer));
                }
                outputs[k].extend(run_timers(s, now));
                if k == 0 {
                    s.handle_text(now, &text);
                } else {
                    let keys = EventKeys {
                        channel: channels[c],
                        seq: seqs[c],
                        kind,
                        ids: ids.clone(),
                    };
                    s.handle_event(now, keys, |ids| Event {
                        channel: channels[c].to_owned(),
                        kind: kind.to_owned(),
                        seq: seqs[c],
                        payload: payload.clone(),
                        date: 1_700_000_000_000.0,
                        meta: None,
                        ids,
                    });
                }
                outputs[k].extend(drain(s));
            }
            deliveries += outputs[0]
                .iter()
                .filter(|o| matches!(o, Output::Deliver { .. }))
                .count();
            assert_eq!(outputs[0], outputs[1], "window {window_ms}, step {step}");
        }
        assert!(deliveries > 100, "window {window_ms}: {deliveries}");
        let [a, b] = &sessions;
        assert_eq!(a.stats(), b.stats(), "window {window_ms}");
        assert!(a.stats().duplicates > 10, "{:?}", a.stats());
    }
}

/// An event's keys before `hello` are the same protocol violation as the frame's text: not
/// delivered, counted, and the connection given up.
#[test]
fn handle_event_before_hello_is_the_same_violation_as_the_frame() {
    let mut outputs = Vec::new();
    for by_keys in [false, true] {
        let mut s = Session::new(SessionConfig::default());
        s.subscribe(0, "a", all());
        s.handle_open(1);
        drain(&mut s);
        if by_keys {
            let keys = EventKeys {
                channel: "a",
                seq: 1,
                kind: "updated",
                ids: None,
            };
            s.handle_event(2, keys, |_| unreachable!("nothing is delivered"));
        } else {
            s.handle_text(2, &event("a", 1, "updated", "{}"));
        }
        let out = drain(&mut s);
        assert!(out.contains(&Output::Disconnect), "{out:?}");
        assert_eq!(s.problems(), 1);
        outputs.push(out);
    }
    assert_eq!(outputs[0], outputs[1]);
}
