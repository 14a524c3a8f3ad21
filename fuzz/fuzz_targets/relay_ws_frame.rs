//! The relay's reading of a WebSocket text frame (`relay/src/ws.rs` `on_text`): the client frame
//! decoder, then the checks of each op (subscribe: channel names and positions; publish: the
//! event, its scopes; auth: a token). Nothing panics; an error always names its reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use live_relay::publish::{check_scopes, check_subscription, validate, Limits};
use wasm_live_provider::engine::frame::{decode_client, ClientFrame};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits {
        max_channel_len: 64,
    };
    match decode_client(text) {
        Ok(ClientFrame::Subscribe { channels } | ClientFrame::Unsubscribe { channels }) => {
            for entry in &channels {
                if let Err(e) = check_subscription(&entry.channel, &limits) {
                    assert!(!e.message.is_empty());
                }
            }
        }
        Ok(ClientFrame::Publish { event, .. }) => {
            let scopes = event.scopes.clone();
            match validate(event, &limits) {
                Ok(valid) => {
                    if let Some(scopes) = &valid.scopes {
                        assert!(check_scopes(scopes).is_ok());
                    }
                    let _ = valid.frame(1);
                }
                Err(e) => assert!(!e.message.is_empty()),
            }
            if let Some(scopes) = scopes {
                let _ = check_scopes(&scopes);
            }
        }
        Ok(_) => {}
        Err(e) => assert!(!e.message.is_empty()),
    }
});
