//! `POST /publish` over `fetch`, for the SSE transport.

use crate::engine::session::PublishResult;
use js_sys::{Object, Reflect};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str, init: &JsValue) -> js_sys::Promise;
}

#[derive(Deserialize)]
struct Ack {
    seq: u64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

fn set(target: &Object, key: &str, value: &JsValue) {
    // Plain data properties on a fresh object.
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

/// POSTs `body` (JSON) to `url` and reads the relay's answer.
pub async fn post_publish(url: &str, body: &str) -> PublishResult {
    let init = Object::new();
    set(&init, "method", &"POST".into());
    set(&init, "body", &body.into());
    let headers = Object::new();
    set(&headers, "content-type", &"application/json".into());
    set(&init, "headers", &headers);
    let response = match JsFuture::from(global_fetch(url, &init)).await {
        Ok(r) => r,
        Err(e) => return PublishResult::Unreachable(super::client::describe(&e)),
    };
    let status = Reflect::get(&response, &"status".into())
        .ok()
        .and_then(|s| s.as_f64())
        .unwrap_or(0.0) as u16;
    let text = match Reflect::get(&response, &"text".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .map(|f| f.call0(&response))
    {
        Some(Ok(p)) => match JsFuture::from(js_sys::Promise::from(p)).await {
            Ok(t) => t.as_string().unwrap_or_default(),
            Err(e) => return PublishResult::Unreachable(super::client::describe(&e)),
        },
        _ => String::new(),
    };
    match status {
        200..=299 => match serde_json::from_str::<Ack>(&text) {
            Ok(ack) => PublishResult::Acked(ack.seq),
            Err(e) => PublishResult::Rejected {
                code: "bad_answer".into(),
                message: format!("the relay answered {status} with `{text}`: {e}"),
            },
        },
        400..=499 => match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) => PublishResult::Rejected {
                code: b.error.code,
                message: b.error.message,
            },
            Err(_) => PublishResult::Rejected {
                code: format!("http_{status}"),
                message: text,
            },
        },
        _ => PublishResult::Unreachable(format!("the relay answered {status}")),
    }
}
