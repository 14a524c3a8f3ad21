//! The session reading a hostile stream (`src/engine/session.rs`): the relay's frames as they
//! arrive over Server-Sent Events (one `data:` per line of the input) or over WebSocket, with
//! timers firing in between. Nothing panics, every frame the session sends back is a valid client
//! frame, and every delivery names at least one subscription.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_live_provider::engine::filter::{Filter, TypeFilter};
use wasm_live_provider::engine::frame::decode_client;
use wasm_live_provider::engine::session::{Output, Session, SessionConfig, TransportKind};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let transport = match mode % 3 {
        0 => TransportKind::Sse,
        1 => TransportKind::WebSocket,
        _ => TransportKind::Auto,
    };
    let mut s = Session::new(SessionConfig {
        transport,
        reopen_debounce_ms: 0,
        // As the browser shell runs it, half of the time (and with coalescing on).
        deliver_frames: mode & 4 != 0,
        coalesce_ms: if mode & 8 != 0 { 250 } else { 0 },
        ..SessionConfig::default()
    });
    let mut now = 0;
    s.subscribe(now, "resources/posts", Filter::new(TypeFilter::All, None));
    s.subscribe(
        now,
        "resources/posts",
        Filter::new(
            TypeFilter::from_types(["updated", "deleted"]),
            Some(vec!["1".into(), "2".into()]),
        ),
    );
    s.subscribe(now, "$revalidate", Filter::new(TypeFilter::All, None));
    check(&mut s);
    s.handle_open(now);
    for line in text.split('\n') {
        now += 7;
        if mode & 0x80 != 0 && line.is_empty() {
            if let Some(deadline) = s.poll_timeout() {
                now = now.max(deadline);
            }
            s.handle_timeout(now);
            s.handle_open(now);
        } else {
            s.handle_text(now, line);
        }
        check(&mut s);
    }
    s.handle_close(now, "end of the input");
    check(&mut s);
});

fn check(s: &mut Session) {
    while let Some(output) = s.poll_output() {
        match output {
            Output::Send(frame) => {
                if let Err(e) = decode_client(&frame) {
                    panic!("the session sent an invalid frame {frame}: {e}");
                }
            }
            Output::Deliver { subs, .. }
            | Output::DeliverFrame { subs }
            | Output::Resync { subs, .. } => {
                assert!(!subs.is_empty(), "a delivery to nobody")
            }
            _ => {}
        }
    }
}
