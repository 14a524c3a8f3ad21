//! The frame codecs (`src/engine/frame.rs`): any text, decoded as a client frame (the relay's serde
//! decoder) and as a server frame (the client's hand-written one), never panics; what decodes
//! re-encodes (client frames by hand, server frames with serde) to a frame that decodes to the
//! same thing (an event date beyond the JS range or with a fraction: within one unit in the last
//! place).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use wasm_live_provider::engine::frame::{
    decode_client, decode_server, encode_ack, encode_auth, encode_event, encode_hello,
    encode_skip, encode_subscribe, encode_subscribed, encode_unsubscribe, ClientFrame,
    ServerFrame,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match decode_client(text) {
        Ok(ClientFrame::Subscribe { channels }) => {
            let again = encode_subscribe(&channels);
            match decode_client(&again) {
                Ok(ClientFrame::Subscribe { channels: back }) => assert_eq!(channels, back),
                other => panic!("{again} decoded as {other:?}"),
            }
        }
        Ok(ClientFrame::Unsubscribe { channels }) => {
            let again = encode_unsubscribe(&channels);
            match decode_client(&again) {
                Ok(ClientFrame::Unsubscribe { channels: back }) => assert_eq!(channels, back),
                other => panic!("{again} decoded as {other:?}"),
            }
        }
        Ok(ClientFrame::Auth { token }) => {
            let again = encode_auth(&token);
            match decode_client(&again) {
                Ok(ClientFrame::Auth { token: back }) => assert_eq!(token, back),
                other => panic!("{again} decoded as {other:?}"),
            }
        }
        Ok(_) => {}
        Err(e) => assert!(!e.message.is_empty(), "an error without a message"),
    }
    match decode_server(text) {
        Ok(ServerFrame::Event(e)) => {
            // The client's decoder checked these spans: serde_json takes them as raw values.
            let raw = |text: &str| RawValue::from_string(text.to_owned()).expect("checked JSON");
            let (payload, meta) = (raw(e.payload), e.meta.map(raw));
            let again = encode_event(&e.channel, e.seq, &e.kind, &payload, e.date, meta.as_deref());
            match decode_server(&again) {
                Ok(ServerFrame::Event(b)) => {
                    assert_eq!(e.channel, b.channel);
                    assert_eq!(e.seq, b.seq);
                    assert_eq!(e.kind, b.kind);
                    assert_eq!(e.payload, b.payload);
                    // Exact for the dates the relay sends (whole ms a JS Date can hold);
                    // beyond, allow 1 ulp (see
                    // `event_dates_round_trip_exactly_within_the_js_range` in frame.rs).
                    if e.date.fract() == 0.0 && e.date.abs() <= 8.64e15 {
                        assert_eq!(e.date.to_bits(), b.date.to_bits(), "date {}", e.date);
                    } else {
                        let ulps = e.date.to_bits().abs_diff(b.date.to_bits());
                        assert!(ulps <= 1, "date {} came back as {}", e.date, b.date);
                    }
                    assert_eq!(e.meta, b.meta);
                }
                other => panic!("{again} decoded as {other:?}"),
            }
        }
        Ok(ServerFrame::Hello { epoch, ping_ms, .. }) => {
            let again = encode_hello(&epoch, ping_ms);
            match decode_server(&again) {
                Ok(ServerFrame::Hello {
                    epoch: e2,
                    ping_ms: p2,
                    ..
                }) => assert_eq!((epoch, ping_ms), (e2, p2)),
                other => panic!("{again} decoded as {other:?}"),
            }
        }
        Ok(ServerFrame::Subscribed { channels }) => {
            let again = encode_subscribed(&channels);
            match decode_server(&again) {
                Ok(ServerFrame::Subscribed { channels: back }) => assert_eq!(channels, back),
                other => panic!("{again} decoded as {other:?}"),
            }
        }
        Ok(ServerFrame::Skip { channel, seq }) => {
            let again = encode_skip(&channel, seq);
            match decode_server(&again) {
                Ok(ServerFrame::Skip {
                    channel: c2,
                    seq: s2,
                }) => assert_eq!((channel, seq), (c2, s2)),
                other => panic!("{again} decoded as {other:?}"),
            }
        }
        Ok(ServerFrame::Ack { id, seq }) => {
            let again = encode_ack(id, seq);
            match decode_server(&again) {
                Ok(ServerFrame::Ack { id: i2, seq: s2 }) => assert_eq!((id, seq), (i2, s2)),
                other => panic!("{again} decoded as {other:?}"),
            }
        }
        Ok(_) => {}
        Err(e) => assert!(!e.message.is_empty(), "an error without a message"),
    }
});
