//! HTTP requests over `fetch`: `POST /publish` for the SSE transport, and `POST /sse/ticket`
//! (the ticket that opens an authenticated event stream, since `EventSource` cannot send headers).

use super::js::describe;
use crate::engine::http::{error_of, publish_answer, strings, PublishResult};
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str, init: &JsValue) -> js_sys::Promise;
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

/// POSTs `body` (JSON) to `url` and reads the relay's answer.
pub async fn post_publish(url: &str, body: &str, token: Option<&str>) -> PublishResult {
    let (status, text) = match post(url, Some(body), token).await {
        Ok(answer) => answer,
        Err(reason) => return PublishResult::Unreachable(reason),
    };
    publish_answer(status, text)
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
