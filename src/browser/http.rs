//! HTTP requests over `fetch`: `POST /publish` for the SSE transport, and `POST /sse/ticket`
//! (the ticket that opens an authenticated event stream, since `EventSource` cannot send headers).

use super::js::describe;
use crate::engine::json::{self, Reader};
use crate::engine::session::PublishResult;
use crate::engine::Code;
use alloc::borrow::Cow;
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str, init: &JsValue) -> js_sys::Promise;
}

/// The string members of the JSON object `text` named in `names` (`None` for one missing), or
/// `None` when `text` is not such an object.
fn strings<'a, const N: usize>(
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

fn set(target: &Object, key: &str, value: &JsValue) {
    // Plain data properties on a fresh object.
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

/// POSTs `body` (JSON, or nothing) to `url`, with `Authorization: Bearer <token>` when a token is
/// given. Returns the status and the body's text; `Err` when there was no answer.
async fn post(url: &str, body: Option<&str>, token: Option<&str>) -> Result<(u16, String), String> {
    let init = Object::new();
    set(&init, "method", &"POST".into());
    let headers = Object::new();
    if let Some(body) = body {
        set(&init, "body", &body.into());
        set(&headers, "content-type", &"application/json".into());
    }
    if let Some(token) = token {
        set(&headers, "authorization", &format!("Bearer {token}").into());
    }
    set(&init, "headers", &headers);
    let response = JsFuture::from(global_fetch(url, &init))
        .await
        .map_err(|e| describe(&e))?;
    let status = Reflect::get(&response, &"status".into())
        .ok()
        .and_then(|s| s.as_f64())
        .unwrap_or(0.0) as u16;
    let text = match Reflect::get(&response, &"text".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .map(|f| f.call0(&response))
    {
        Some(Ok(p)) => JsFuture::from(js_sys::Promise::from(p))
            .await
            .map_err(|e| describe(&e))?
            .as_string()
            .unwrap_or_default(),
        _ => String::new(),
    };
    Ok((status, text))
}

/// The relay's `{"error": {"code", "message"}}`, or the status and text when the body is not that.
fn error_of(status: u16, text: String) -> (Code, String) {
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

/// POSTs `body` (JSON) to `url` and reads the relay's answer.
pub async fn post_publish(url: &str, body: &str, token: Option<&str>) -> PublishResult {
    let (status, text) = match post(url, Some(body), token).await {
        Ok(answer) => answer,
        Err(reason) => return PublishResult::Unreachable(reason),
    };
    match status {
        200..=299 => match ack_seq(&text) {
            Ok(seq) => PublishResult::Acked(seq),
            Err(e) => PublishResult::Rejected {
                code: Code::BadAnswer,
                message: format!("the relay answered {status} with `{text}`: {e}"),
            },
        },
        400..=499 => {
            let (code, message) = error_of(status, text);
            PublishResult::Rejected { code, message }
        }
        _ => PublishResult::Unreachable(format!("the relay answered {status}")),
    }
}

/// Exchanges `token` for a single-use stream ticket at `url` (`POST …/sse/ticket`). The error
/// names what went wrong, for the connection state's reason.
pub async fn post_ticket(url: &str, token: &str) -> Result<String, String> {
    let (status, text) = post(url, None, Some(token))
        .await
        .map_err(|reason| format!("could not get a stream ticket from {url}: {reason}"))?;
    match status {
        200..=299 => match strings(&text, ["ticket"]) {
            Some([Some(ticket)]) => Ok(ticket.into_owned()),
            _ => Err(format!(
                "the relay answered {status} to the ticket request with `{text}`: expected {{\"ticket\": \"...\"}}"
            )),
        },
        _ => {
            let (code, message) = error_of(status, text);
            Err(format!(
                "the relay refused a stream ticket ({status} {}): {message}",
                code.name()
            ))
        }
    }
}
