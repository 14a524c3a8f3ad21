//! The relay's `POST /publish` body (`relay/src/http.rs` and `relay/src/publish.rs`): any body is
//! read and validated without a panic; an accepted event becomes an `event` frame that the client
//! decodes to the same channel, type, payload, date and meta. The same bytes as a
//! `POST /revalidate` `keys` value give valid JSON or a `bad_event`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use live_relay::fuzz_api::{read_publish_body, revalidate_payload};
use live_relay::publish::{validate, Limits};
use serde_json::value::RawValue;
use wasm_live_provider::engine::frame::{decode_server, ServerFrame};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_channel_len: 64,
    };
    if let Ok(publish) = read_publish_body(data) {
        if let Ok(event) = validate(publish, &limits) {
            assert!(!event.channel.is_empty() && event.channel.len() <= 64);
            assert!(event.date.is_finite());
            let frame = event.frame(42);
            match decode_server(frame.as_str()) {
                Ok(ServerFrame::Event(e)) => {
                    assert_eq!(e.channel, event.channel);
                    assert_eq!(e.seq, 42);
                    assert_eq!(e.kind, event.kind);
                    assert_eq!(e.payload, event.payload.get());
                    assert_eq!(e.date.to_bits(), event.date.to_bits());
                    assert_eq!(e.meta, event.meta.map(|m| m.get()));
                }
                other => panic!("{} decoded as {other:?}", frame.as_str()),
            }
        }
    }
    if let Ok(keys) = serde_json::from_slice::<&RawValue>(data) {
        if let Ok(payload) = revalidate_payload(Some(keys)) {
            let value: serde_json::Value = match serde_json::from_str(payload.get()) {
                Ok(v) => v,
                Err(e) => panic!("revalidation payload {} is not JSON: {e}", payload.get()),
            };
            let keys = value["keys"].as_array().expect("`keys` is an array");
            assert!(!keys.is_empty() && keys.iter().all(|k| k.is_array()));
        }
    }
});
