//! What the relay's HTTP answers mean (the SSE transport's `POST /publish` and `POST /sse/ticket`):
//! a publish acked, rejected (not tried again) or unanswered (tried again), and the relay's error
//! body. The browser shell only moves the status and the text here; the rule is tested natively.

use crate::cat;
use crate::engine::code::Code;
use crate::engine::json::{self, Reader};
use crate::prelude::*;
use alloc::borrow::Cow;

/// What became of a `POST /publish` (SSE transport).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishResult {
    /// Accepted with this `seq`.
    Acked(u64),
    /// The relay refused it (HTTP 4xx, `429 rate_limited` included, with its code and message;
    /// or a 2xx that is not an ack): settled as failed, not tried again.
    Rejected { code: Code, message: String },
    /// No answer (a network error, HTTP 5xx, or a status that is neither): tried again.
    Unreachable(String),
}

/// The publish outcome of the relay's answer `status` with the body `text`.
pub fn publish_answer(status: u16, text: String) -> PublishResult {
    match status {
        200..=299 => match ack_seq(&text) {
            Ok(seq) => PublishResult::Acked(seq),
            Err(e) => PublishResult::Rejected {
                code: Code::BadAnswer,
                message: cat!("the relay answered ", status, " with `", &*text, "`: ", e),
            },
        },
        400..=499 => {
            let (code, message) = error_of(status, text);
            PublishResult::Rejected { code, message }
        }
        _ => PublishResult::Unreachable(cat!("the relay answered ", status)),
    }
}

/// The string members of the JSON object `text` named in `names` (`None` for one missing), or
/// `None` when `text` is not such an object.
pub fn strings<'a, const N: usize>(
    text: &'a str,
    names: [&str; N],
) -> Option<[Option<Cow<'a, str>>; N]> {
    let mut found = core::array::from_fn(|_| None);
    let mut r = Reader::new(text);
    r.object(|r, key| match names.iter().position(|n| *n == key) {
        Some(i) => {
            found[i] = Some(r.string()?);
            Ok(())
        }
        None => r.skip(),
    })
    .ok()?;
    r.end().ok()?;
    Some(found)
}

/// The relay's `{"seq": n}` answer to a publish.
fn ack_seq(text: &str) -> Result<u64, &'static str> {
    let mut seq = None;
    let mut r = Reader::new(text);
    r.object(|r, key| {
        if key == "seq" {
            seq = Some(r.u64()?);
            Ok(())
        } else {
            r.skip()
        }
    })
    .map_err(|e: json::Error| e.0)?;
    r.end().map_err(|e| e.0)?;
    seq.ok_or("missing field `seq`")
}

/// The relay's `{"error": {"code", "message"}}`, or `http_<status>` and the text when the body is
/// not that.
pub fn error_of(status: u16, text: String) -> (Code, String) {
    // `{"error": {...}}`: the detail object's text, then its two strings.
    let detail = {
        let mut detail = None;
        let mut r = Reader::new(&text);
        let read = r.object(|r, key| {
            if key == "error" {
                detail = Some(r.raw()?);
                Ok(())
            } else {
                r.skip()
            }
        });
        read.and_then(|()| r.end()).ok().and(detail)
    };
    match detail.and_then(|d| strings(d, ["code", "message"])) {
        Some([Some(code), Some(message)]) => (Code::read(&code), message.into_owned()),
        _ => (Code::http(status), text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::frame::ErrorCode;

    fn error_body(code: &str, message: &str) -> String {
        cat!(
            r#"{"error":{"code":""#,
            code,
            r#"","message":""#,
            message,
            r#""}}"#
        )
    }

    #[test]
    fn a_2xx_with_its_seq_is_acked_and_anything_else_there_is_a_bad_answer() {
        assert_eq!(
            publish_answer(200, r#"{"seq":7}"#.into()),
            PublishResult::Acked(7)
        );
        assert_eq!(
            publish_answer(201, r#"{"x":[1],"seq":8}"#.into()),
            PublishResult::Acked(8)
        );
        for body in [
            "",
            "{}",
            r#"{"seq":"7"}"#,
            r#"{"seq":-1}"#,
            "[7]",
            r#"{"seq":7} x"#,
        ] {
            match publish_answer(200, body.into()) {
                PublishResult::Rejected { code, message } => {
                    assert_eq!(code, Code::BadAnswer, "{body}");
                    assert!(
                        message.starts_with("the relay answered 200 with `"),
                        "{message}"
                    );
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    /// The 5xx of a relay that lost its broker (503 `unavailable`), gave no answer in time (504
    /// `outcome_unknown`) or failed: the publish is tried again (it keeps its key), whatever the
    /// body says.
    #[test]
    fn a_5xx_is_tried_again() {
        for status in [500, 502, 503, 504, 599] {
            let body = error_body("unavailable", "the relay cannot reach its Redis");
            assert_eq!(
                publish_answer(status, body),
                PublishResult::Unreachable(cat!("the relay answered ", status)),
            );
            assert_eq!(
                publish_answer(status, "<html>bad gateway</html>".into()),
                PublishResult::Unreachable(cat!("the relay answered ", status)),
            );
        }
        // Neither a success nor a refusal: the same.
        for status in [0, 100, 304, 600] {
            assert!(matches!(
                publish_answer(status, String::new()),
                PublishResult::Unreachable(_)
            ));
        }
    }

    /// `429 rate_limited` is a refusal like any 4xx: the publish fails with the relay's code (the
    /// client does not wait and retry it; the Node helper does, after `Retry-After`).
    #[test]
    fn a_429_and_every_4xx_is_a_refusal_with_the_relays_code() {
        let cases = [
            (429, "rate_limited", Code::Relay(ErrorCode::RateLimited)),
            (400, "bad_event", Code::Relay(ErrorCode::BadEvent)),
            (401, "unauthorized", Code::Relay(ErrorCode::Unauthorized)),
            (403, "forbidden", Code::Relay(ErrorCode::Forbidden)),
            (413, "too_large", Code::Relay(ErrorCode::TooLarge)),
            (422, "teapot", Code::Unknown("teapot".into())),
        ];
        for (status, name, code) in cases {
            let body = error_body(name, "over the limit");
            let message = "over the limit".to_owned();
            assert_eq!(
                publish_answer(status, body),
                PublishResult::Rejected { code, message },
                "{status}"
            );
        }
        // A 429 from a proxy, without the relay's body: its status names it.
        assert_eq!(
            publish_answer(429, "Too Many Requests".into()),
            PublishResult::Rejected {
                code: Code::http(429),
                message: "Too Many Requests".into()
            }
        );
        assert_eq!(Code::http(429).name(), "http_429");
    }

    #[test]
    fn the_error_body_is_read_only_when_it_is_the_relays() {
        assert_eq!(
            error_of(403, error_body("forbidden", "not in the token")),
            (Code::Relay(ErrorCode::Forbidden), "not in the token".into())
        );
        for body in [
            r#"{"error":{"code":"forbidden"}}"#,
            r#"{"error":"forbidden"}"#,
            r#"{"error":{"code":1,"message":"m"}}"#,
            "not json",
        ] {
            assert_eq!(error_of(418, body.into()), (Code::http(418), body.into()));
        }
        let ticket = strings(r#"{"ticket":"t1","ttl_ms":30000}"#, ["ticket"]);
        assert_eq!(ticket, Some([Some(Cow::Borrowed("t1"))]));
        assert_eq!(strings("[]", ["ticket"]), None);
    }
}
