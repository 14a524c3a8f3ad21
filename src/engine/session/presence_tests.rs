//! Presence memberships on the session's fake clock: what is sent when, across reconnects, and
//! what the shell is told.

use super::*;
use crate::engine::frame::{decode_client, encode_hello, ClientFrame, PresenceVerb};
use serde_json::{json, Value};

fn drain(s: &mut Session) -> Vec<Output> {
    core::iter::from_fn(|| s.poll_output()).collect()
}

/// The presence frames among `outputs`, as JSON values; each is also read by the relay's decoder,
/// which must take it as the same request.
fn presence_sent(outputs: &[Output]) -> Vec<Value> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(t) => {
                let v: Value = serde_json::from_str(t).expect("the session sends JSON");
                (v["op"] == "presence").then(|| {
                    match decode_client(t) {
                        Ok(ClientFrame::Presence(r)) => {
                            assert_eq!(r.verb.as_str(), v["action"], "{t}");
                            assert_eq!(r.channel, v["channel"].as_str().unwrap_or_default());
                            if r.verb == PresenceVerb::Join {
                                assert_eq!(r.key.as_deref(), v["key"].as_str(), "{t}");
                                assert_eq!(r.data.as_ref(), Some(&v["data"]), "{t}");
                            }
                        }
                        other => panic!("the relay reads {t} as {other:?}"),
                    }
                    v
                })
            }
            _ => None,
        })
        .collect()
}

fn statuses(outputs: &[Output]) -> Vec<(String, &'static str)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::PresenceStatus { channel, status } => Some((channel.clone(), status.name())),
            _ => None,
        })
        .collect()
}

fn hello(features: &[&str]) -> String {
    let mut v: Value = serde_json::from_str(&encode_hello("e1", 25_000)).expect("hello");
    if !features.is_empty() {
        v["features"] = json!(features);
    }
    v.to_string()
}

/// The member key the entry gives every join of this client (`who`).
const KEY: &str = "9f2c4e0a1b7d3c5e9f2c4e0a1b7d3c5e";
const WHO: &str = r#""key":"9f2c4e0a1b7d3c5e9f2c4e0a1b7d3c5e""#;

fn join(data: &str) -> Enter<'_> {
    Enter {
        data,
        watch: false,
        who: WHO,
    }
}

const WATCH: Enter<'static> = Enter {
    data: "{}",
    watch: true,
    who: WHO,
};

fn sync(channel: &str, id: &Value, version: u64) -> String {
    json!({"op":"presence","channel":channel,"action":"sync","id":id,"version":version,"members":[]})
        .to_string()
}

/// A session on an open connection whose `hello` offered `features`.
fn connected(features: &[&str]) -> Session {
    let mut s = Session::new(SessionConfig::default());
    s.presence_enter(0, "posts", join(r#"{"id":3}"#));
    s.handle_open(1);
    s.handle_text(2, &hello(features));
    s
}

#[test]
fn a_membership_connects_and_joins_after_a_hello_that_offers_presence() {
    let mut s = Session::new(SessionConfig::default());
    s.presence_enter(0, "posts", join(r#"{"id":3}"#));
    let out = drain(&mut s);
    assert!(out.contains(&Output::Connect), "{out:?}");
    assert!(
        statuses(&out).is_empty(),
        "connecting, as every membership starts"
    );
    assert!(presence_sent(&out).is_empty(), "nothing before hello");
    s.handle_open(1);
    s.handle_text(2, &hello(&["presence"]));
    let out = drain(&mut s);
    let frames = presence_sent(&out);
    assert_eq!(frames.len(), 1, "{out:?}");
    let f = &frames[0];
    assert_eq!(
        (&f["action"], &f["channel"], &f["data"]),
        (&json!("join"), &json!("posts"), &json!({"id": 3}))
    );
    assert_eq!(f["key"], KEY);
    assert!(f.get("user").is_none() && f.get("info").is_none());
    // The relay's presence frames are the entry's (the browser hands them over without the
    // engine): here, read and left alone.
    s.handle_text(3, &sync("posts", &f["id"], 41));
    let diff = json!({"op":"presence","channel":"posts","action":"join","version":42,"member":{}});
    s.handle_text(4, &diff.to_string());
    let out = drain(&mut s);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(s.problems(), 0);
}

#[test]
fn an_older_relay_makes_memberships_unsupported_and_nothing_is_sent() {
    let mut s = connected(&[]);
    let out = drain(&mut s);
    assert!(presence_sent(&out).is_empty(), "{out:?}");
    assert!(statuses(&out).contains(&("posts".into(), "unsupported")));
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::Problem(_) | Output::Error { .. })));
    // A new membership learns it at once, still sending nothing.
    s.presence_enter(5, "other", WATCH);
    let out = drain(&mut s);
    assert_eq!(statuses(&out), [("other".into(), "unsupported")]);
    assert!(presence_sent(&out).is_empty());
    s.presence_update("posts", r#"{"id":4}"#);
    assert!(presence_sent(&drain(&mut s)).is_empty());
    // Features it does not know are nothing to it either.
    let mut s = connected(&["teleport"]);
    assert!(presence_sent(&drain(&mut s)).is_empty());
    assert_eq!(
        s.presence_status("posts"),
        Some(PresenceStatus::Unsupported)
    );
}

#[test]
fn handles_share_one_membership_per_channel() {
    let mut s = connected(&["presence"]);
    let id = presence_sent(&drain(&mut s))[0]["id"].clone();
    s.handle_text(3, &sync("posts", &id, 1));
    drain(&mut s);
    // A second handle (React's StrictMode mounts twice; the entry releases the first handle's
    // exit a microtask later, after the second entered): nothing sent, still live.
    s.presence_enter(4, "posts", join(r#"{"id":3}"#));
    let out = drain(&mut s);
    assert!(presence_sent(&out).is_empty(), "{out:?}");
    assert!(statuses(&out).is_empty(), "{out:?}");
    s.presence_exit(5, "posts", false);
    assert!(presence_sent(&drain(&mut s)).is_empty(), "one handle left");
    // A watcher on the same channel adds nothing either.
    s.presence_enter(6, "posts", WATCH);
    assert!(presence_sent(&drain(&mut s)).is_empty());
    // The last joining handle leaves the set, the watcher still watches.
    s.presence_exit(7, "posts", false);
    let frames = presence_sent(&drain(&mut s));
    let actions: Vec<_> = frames.iter().map(|f| f["action"].clone()).collect();
    assert_eq!(actions, [json!("leave"), json!("watch")]);
    assert!(frames[1]["id"].is_u64());
    // An unknown exit, a second exit: ignored.
    s.presence_exit(8, "nowhere", false);
    s.presence_exit(8, "posts", false);
    assert!(presence_sent(&drain(&mut s)).is_empty());
    // The last handle: leave, closed; the connection may go idle.
    s.presence_exit(9, "posts", true);
    let out = drain(&mut s);
    assert_eq!(presence_sent(&out)[0]["action"], "leave");
    assert_eq!(statuses(&out), [("posts".into(), "closed")]);
    assert_eq!(s.presence_status("posts"), None);
    assert!(s.poll_timeout().is_some(), "the idle close is armed");
}

#[test]
fn a_membership_keeps_the_connection_open() {
    let mut s = connected(&["presence"]);
    drain(&mut s);
    // Nothing else to do, yet no idle close: only the link's liveness deadline.
    let cfg = SessionConfig::default();
    let next = s.poll_timeout().expect("the liveness deadline");
    assert!(next > 2 + cfg.idle_close_ms, "{next}");
}

#[test]
fn data_updates_are_sent_once_joined_and_joined_with_after_a_reconnect() {
    let mut s = Session::new(SessionConfig::default());
    s.presence_enter(0, "posts", join(r#"{"id":3}"#));
    // Before the connection: kept for the join.
    s.presence_update("posts", r#"{"id":3,"mode":"edit"}"#);
    s.handle_open(1);
    s.handle_text(2, &hello(&["presence"]));
    let frames = presence_sent(&drain(&mut s));
    assert_eq!(frames[0]["data"], json!({"id": 3, "mode": "edit"}));
    let key = frames[0]["key"].clone();
    s.handle_text(3, &sync("posts", &frames[0]["id"], 1));
    drain(&mut s);
    s.presence_update("posts", r#"{"id":3,"mode":"view"}"#);
    let frames = presence_sent(&drain(&mut s));
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (&frames[0]["action"], &frames[0]["data"]),
        (&json!("update"), &json!({"id": 3, "mode": "view"}))
    );
    // Answered only when refused: to the error hook, with the relay's code.
    let id = frames[0]["id"].as_u64().expect("every request has an id");
    let refused = json!({"op":"error","code":"too_large","message":"data over 1024 bytes","id":id});
    s.handle_text(5, &refused.to_string());
    let out = drain(&mut s);
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Error {
                code: Code::Relay(ErrorCode::TooLarge),
                ..
            }
        )),
        "{out:?}"
    );
    assert!(
        statuses(&out).is_empty(),
        "still a member, with its older data"
    );
    s.presence_update("posts", r#"{"id":3,"mode":"view"}"#);
    assert!(presence_sent(&drain(&mut s)).is_empty(), "same data");

    // The connection drops: stale, members kept by the shell; nothing sent meanwhile.
    s.handle_close(10, "cut");
    let out = drain(&mut s);
    assert_eq!(statuses(&out), [("posts".into(), "stale")]);
    s.presence_update("posts", r#"{"id":3,"mode":"edit"}"#);
    assert!(presence_sent(&drain(&mut s)).is_empty());
    // Back: the same key, the latest data; still stale until the new sync.
    let wake = s.poll_timeout().expect("a retry");
    s.handle_timeout(wake);
    drain(&mut s);
    s.handle_open(wake + 1);
    s.handle_text(wake + 2, &hello(&["presence"]));
    let out = drain(&mut s);
    let frames = presence_sent(&out);
    assert_eq!(frames.len(), 1, "{out:?}");
    assert_eq!(
        (&frames[0]["action"], &frames[0]["key"], &frames[0]["data"]),
        (&json!("join"), &key, &json!({"id": 3, "mode": "edit"}))
    );
    assert!(statuses(&out).is_empty(), "{out:?}");
    // Lost again: stale again (the entry made it live on the sync meanwhile).
    s.handle_close(wake + 5, "cut");
    let out = drain(&mut s);
    assert_eq!(statuses(&out), [("posts".into(), "stale")]);
}

#[test]
fn open_mode_user_and_info_go_with_the_join() {
    let mut s = Session::new(SessionConfig::default());
    let enter = Enter {
        data: "{}",
        watch: false,
        who: r#""key":"0123456789abcdef0123456789abcdef","user":"42","info":{"name":"Alice"}"#,
    };
    s.presence_enter(0, "posts", enter);
    s.handle_open(1);
    s.handle_text(2, &hello(&["presence"]));
    let f = &presence_sent(&drain(&mut s))[0];
    assert_eq!(f["key"], "0123456789abcdef0123456789abcdef");
    assert_eq!(
        (&f["user"], &f["info"]),
        (&json!("42"), &json!({"name": "Alice"}))
    );
}

#[test]
fn a_watch_only_membership_watches() {
    let mut s = Session::new(SessionConfig::default());
    s.presence_enter(0, "posts", WATCH);
    s.handle_open(1);
    s.handle_text(2, &hello(&["presence"]));
    let f = &presence_sent(&drain(&mut s))[0];
    assert_eq!(f["action"], "watch");
    assert!(f.get("key").is_none() && f.get("data").is_none());
    // A joining handle then makes it a member.
    s.presence_enter(3, "posts", join(r#"{"a":1}"#));
    let f = &presence_sent(&drain(&mut s))[0];
    assert_eq!(
        (&f["action"], &f["data"]),
        (&json!("join"), &json!({"a": 1}))
    );
}

#[test]
fn refusals_of_presence_requests_reach_the_error_hook() {
    let mut s = connected(&["presence"]);
    let id = presence_sent(&drain(&mut s))[0]["id"]
        .as_u64()
        .expect("an id");
    assert!(id > 1 << 40, "far from the publishes' ids");
    let error = json!({"op":"error","code":"forbidden","message":"not in the token","id":id});
    s.handle_text(3, &error.to_string());
    let out = drain(&mut s);
    assert!(
        out.iter().any(|o| matches!(o, Output::Error { code: Code::Relay(ErrorCode::Forbidden), message, .. } if message.ends_with("not in the token"))),
        "{out:?}"
    );
    assert_eq!(s.state(), &ConnectionState::Open, "the connection stays");
    let full = json!({"op":"error","code":"presence_full","message":"100 members","id":id});
    s.handle_text(4, &full.to_string());
    let out = drain(&mut s);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Error { code, .. } if code.name() == "presence_full")));
    // As any `error` frame answering no publish, each is also counted in `problems`.
    assert_eq!(s.problems(), 2);
}

/// Over a text path (the full build's transports), presence frames the relay gets wrong are counted
/// like any malformed frame; the browser's entry checks those it is handed (tests/js/presence).
#[test]
fn hostile_presence_frames_are_counted_never_acted_on() {
    let mut s = connected(&["presence"]);
    drain(&mut s);
    for bad in [
        r#"{"op":"presence","channel":"posts","action":"explode","version":1}"#,
        r#"{"op":"presence","channel":"posts","action":"join"}"#,
        r#"{"op":"presence","action":"sync","version":1}"#,
        r#"{"op":"presence","channel":["posts"],"action":"sync","version":1}"#,
        r#"{"op":"presence","channel":"posts","action":"sync","version":"x"}"#,
    ] {
        s.handle_text(3, bad);
    }
    let out = drain(&mut s);
    assert_eq!(s.problems(), 5, "{out:?}");
    assert_eq!(s.state(), &ConnectionState::Open);
    // A hello whose `features` is not a list: no presence, nothing counted (a newer relay may
    // say more there).
    let mut s = Session::new(SessionConfig::default());
    s.presence_enter(0, "posts", WATCH);
    s.handle_open(1);
    s.handle_text(
        2,
        r#"{"op":"hello","version":1,"epoch":"e","ping_ms":5,"features":7}"#,
    );
    drain(&mut s);
    assert_eq!(s.problems(), 0);
    assert_eq!(s.state(), &ConnectionState::Open);
    assert_eq!(
        s.presence_status("posts"),
        Some(PresenceStatus::Unsupported)
    );
}

#[test]
fn closing_the_client_closes_every_membership() {
    let mut s = connected(&["presence"]);
    s.presence_enter(3, "other", WATCH);
    drain(&mut s);
    s.close("closed by the app");
    let mut out = statuses(&drain(&mut s));
    out.sort();
    assert_eq!(
        out,
        [("other".into(), "closed"), ("posts".into(), "closed")]
    );
    assert_eq!(s.presence_status("posts"), None);
}
