//! The Igniter.js translation (`src/engine/igniter.rs`) driven by a script: one line per step,
//! `c<kind>\t<id>\t<data>` an event of the current stream, `p…` the same from the stream being
//! replaced, `r<a,b>` a reopen with those channels, `e` the end of the overlap. Nothing panics,
//! and every frame the translation produces, which the session takes as it is, is what it would
//! read from the frame's text: a valid server frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_live_provider::engine::frame::{decode_server, REVALIDATE_CHANNEL};
use wasm_live_provider::engine::igniter::{IgniterTranslator, Source};

/// Stands in for the browser's `Date.parse`: digits are milliseconds, anything else is no date.
fn parse_date(text: &str) -> Option<f64> {
    text.parse::<u64>().ok().map(|ms| ms as f64)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut t = IgniterTranslator::new(
        1,
        vec![
            "resources/posts".to_owned(),
            "a,b".to_owned(),
            REVALIDATE_CHANNEL.to_owned(),
        ],
    );
    let _ = t.query();
    for line in text.split('\n') {
        let mut chars = line.chars();
        let op = chars.next();
        let rest = chars.as_str();
        let source = match op {
            Some('c') => Source::Current,
            Some('p') => Source::Previous,
            Some('r') => {
                t.reopen(rest.split(',').map(str::to_owned).collect());
                let _ = t.query();
                continue;
            }
            Some('e') => {
                t.end_overlap();
                continue;
            }
            _ => continue,
        };
        let mut parts = rest.splitn(3, '\t');
        let kind = parts.next().unwrap_or("message");
        let id = parts.next().unwrap_or("");
        let data = parts.next().unwrap_or("");
        if let Ok(frames) = t.translate(source, kind, id, data, parse_date) {
            for frame in frames {
                let text = frame.to_text();
                match decode_server(&text) {
                    Ok(read) => assert_eq!(
                        format!("{read:?}"),
                        format!("{:?}", frame.frame()),
                        "the translation of `{kind}` {data:?} reads otherwise as text: {text}"
                    ),
                    Err(e) => {
                        panic!("the translation of `{kind}` {data:?} is not a valid frame: {text}: {e}")
                    }
                }
            }
        }
        let _ = (t.connected(), t.overlapping(), t.duplicates());
    }
});
