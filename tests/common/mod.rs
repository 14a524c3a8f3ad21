//! Helpers shared by the browser test suites (wasm32 only).
#![allow(dead_code)] // each suite uses a different part

pub mod suites;

use js_sys::{Function, Object, Reflect};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_live_provider::LiveClient;

fn env_url(value: Option<&'static str>, name: &str) -> &'static str {
    match value {
        Some(url) => url,
        None => panic!("{name} is not set: run these tests with scripts/test-browser.sh"),
    }
}

/// The relay's WebSocket endpoint.
pub fn relay_ws() -> &'static str {
    env_url(option_env!("LIVE_RELAY_WS"), "LIVE_RELAY_WS")
}

/// The relay's HTTP base (for `POST /publish`).
pub fn relay_http() -> &'static str {
    env_url(option_env!("LIVE_RELAY_HTTP"), "LIVE_RELAY_HTTP")
}

/// The relay's Server-Sent Events endpoint.
pub fn relay_sse() -> String {
    format!("{}/sse", relay_http())
}

/// A client on the SSE transport (what the JS entry derives from `url`, given explicitly).
pub fn sse_client_to(http_base: &str, extra: &[(&str, JsValue)]) -> LiveClient {
    let mut pairs = vec![
        ("transport", "sse".into()),
        ("sseUrl", format!("{http_base}/sse").into()),
        ("publishUrl", format!("{}/publish", relay_http()).into()),
    ];
    pairs.extend(extra.iter().cloned());
    client_to(&format!("{http_base}/sse"), &pairs)
}

/// The breakable TCP proxy in front of the relay, as an HTTP base.
pub fn proxy_http() -> String {
    proxy_ws()
        .replace("ws://", "http://")
        .trim_end_matches("/ws")
        .to_owned()
}

/// The breakable TCP proxy in front of the relay.
pub fn proxy_ws() -> &'static str {
    env_url(option_env!("LIVE_PROXY_WS"), "LIVE_PROXY_WS")
}

/// A loopback WebSocket URL where nothing listens: connections are refused (a relay node that is
/// down). Not port 9: browsers block it before trying.
pub fn closed_ws() -> &'static str {
    env_url(option_env!("LIVE_CLOSED_WS"), "LIVE_CLOSED_WS")
}

/// The harness's control endpoint.
pub fn harness() -> &'static str {
    env_url(option_env!("LIVE_HARNESS_URL"), "LIVE_HARNESS_URL")
}

/// A unique channel per test, so tests sharing the relay do not see each other's events.
pub fn channel(name: &str) -> String {
    format!("test/{name}/{}", js_sys::Math::random().to_bits())
}

pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let set_timeout: Function = Reflect::get(&js_sys::global(), &"setTimeout".into())
            .expect("setTimeout exists")
            .unchecked_into();
        set_timeout
            .call2(&JsValue::NULL, &resolve, &JsValue::from(ms))
            .expect("setTimeout works");
    });
    JsFuture::from(promise).await.expect("sleep resolves");
}

/// Waits until `cond` holds, checking every 10 ms, for at most `timeout_ms`.
pub async fn wait_until(what: &str, timeout_ms: i32, cond: impl Fn() -> bool) {
    assert!(
        wait_for(timeout_ms, cond).await,
        "timed out after {timeout_ms} ms waiting for {what}"
    );
}

/// Waits until `cond` holds, checking every 10 ms, for at most `timeout_ms`; whether it did.
pub async fn wait_for(timeout_ms: i32, cond: impl Fn() -> bool) -> bool {
    let mut waited = 0;
    while !cond() {
        if waited >= timeout_ms {
            return false;
        }
        sleep(10).await;
        waited += 10;
    }
    true
}

/// The `payload.n` of every event a [`Recorder`] got, in order (-1 where there is none).
pub fn numbers(got: &Recorder) -> Vec<i64> {
    (0..got.count())
        .map(|i| {
            got.field(i, &["payload", "n"])
                .as_f64()
                .map_or(-1, |v| v as i64)
        })
        .collect()
}

/// Of a stream numbered `0..published`: how many numbers were never received, and how many were
/// received more than once.
pub fn lost_and_duplicated(received: &[i64], published: usize) -> (usize, usize) {
    let lost = (0..published as i64)
        .filter(|n| !received.contains(n))
        .count();
    let unique = received
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    (lost, received.len() - unique)
}

/// A JS function that records what it is called with.
pub struct Recorder {
    pub events: Rc<RefCell<Vec<JsValue>>>,
    pub function: Function,
}

impl Recorder {
    pub fn new() -> Self {
        let events = Rc::new(RefCell::new(Vec::new()));
        let sink = events.clone();
        let function =
            Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| sink.borrow_mut().push(e))
                .into_js_value()
                .unchecked_into();
        Recorder { events, function }
    }

    pub fn count(&self) -> usize {
        self.events.borrow().len()
    }

    pub fn field(&self, i: usize, path: &[&str]) -> JsValue {
        let mut v = self.events.borrow()[i].clone();
        for key in path {
            v = Reflect::get(&v, &JsValue::from_str(key)).expect("field readable");
        }
        v
    }

    pub fn types(&self) -> Vec<String> {
        (0..self.count())
            .map(|i| self.field(i, &["type"]).as_string().unwrap_or_default())
            .collect()
    }
}

/// Options object from (name, value) pairs.
pub fn options(pairs: &[(&str, JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).expect("set option");
    }
    o
}

/// A client with quick retries, so tests do not wait for the default backoff.
pub fn client_to(url: &str, extra: &[(&str, JsValue)]) -> LiveClient {
    client_to_any(&url.into(), extra)
}

/// [`client_to`] with several relay URLs, tried in turn.
pub fn client_to_relays(urls: &[&str], extra: &[(&str, JsValue)]) -> LiveClient {
    client_to_any(&string_array(urls), extra)
}

/// A JS array of strings.
pub fn string_array(items: &[&str]) -> JsValue {
    items
        .iter()
        .map(|s| JsValue::from_str(s))
        .collect::<js_sys::Array>()
        .into()
}

fn client_to_any(url: &JsValue, extra: &[(&str, JsValue)]) -> LiveClient {
    let mut pairs = vec![("backoffMinMs", 20.into()), ("backoffMaxMs", 200.into())];
    pairs.extend(extra.iter().cloned());
    new_client(url, &pairs).expect("client")
}

/// `LiveClient::new` with the options as the package's JS entry hands them over (`endpoints` in
/// pkg-template/index.js): `sseUrl`, `publishUrl` (derived from each `url` unless given: the
/// stream is the `url` itself with `transport: "sse"`, else its sibling `sse`; `publish` its
/// sibling) and `ticketUrl` (`…/ticket` next to each stream), as arrays with one entry per `url`.
/// The wasm derives none of them. `url`: a string or an array of strings.
pub fn new_client(url: &JsValue, pairs: &[(&str, JsValue)]) -> Result<LiveClient, JsValue> {
    let list = |v: &JsValue| -> Vec<String> {
        match v.as_string() {
            Some(one) => vec![one],
            None => js_sys::Array::from(v)
                .iter()
                .map(|s| s.as_string().unwrap_or_default())
                .collect(),
        }
    };
    let given = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| list(v));
    let urls = list(url);
    let sse_stream = given("transport") == Some(vec!["sse".to_owned()]);
    let sse = given("sseUrl").unwrap_or_else(|| {
        (urls.iter())
            .map(|u| {
                if sse_stream {
                    u.clone()
                } else {
                    sibling(u, "sse")
                }
            })
            .collect()
    });
    let publish =
        given("publishUrl").unwrap_or_else(|| urls.iter().map(|u| sibling(u, "publish")).collect());
    let ticket: Vec<String> = (sse.iter())
        .map(|s| {
            let base = s.split(['?', '#']).next().unwrap_or(s);
            format!("{}/ticket", base.trim_end_matches('/'))
        })
        .collect();
    let strings = |v: &[String]| -> JsValue {
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        string_array(&refs)
    };
    let mut all = pairs.to_vec();
    all.push(("sseUrl", strings(&sse)));
    all.push(("publishUrl", strings(&publish)));
    all.push(("ticketUrl", strings(&ticket)));
    LiveClient::new(url.clone(), &options(&all))
}

/// The JS entry's `sibling(url, endpoint)` for the URLs of these tests (`ws://host:port/ws` →
/// `http://host:port/sse`): the http(s) scheme, `endpoint` for the last path segment, no query.
fn sibling(url: &str, endpoint: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let url = match url.strip_prefix("ws") {
        Some(rest) if rest.starts_with("://") || rest.starts_with("s://") => format!("http{rest}"),
        _ => url.to_owned(),
    };
    match url.rfind('/') {
        Some(i)
            if url[..i].contains("://") && !url[..i].ends_with(':') && !url[..i].ends_with('/') =>
        {
            format!("{}{endpoint}", &url[..=i])
        }
        _ => format!("{}/{endpoint}", url.trim_end_matches('/')),
    }
}

/// A number from the client's `stats`, or -1.
pub fn stat(c: &LiveClient, name: &str) -> f64 {
    Reflect::get(&c.stats(), &name.into())
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(-1.0)
}

/// The relay URL the client uses (`stats.url`).
pub fn stats_url(c: &LiveClient) -> String {
    Reflect::get(&c.stats(), &"url".into())
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

pub fn all() -> Vec<String> {
    vec!["*".to_owned()]
}

pub async fn wait_open(c: &LiveClient) {
    wait_until("the connection to open", 10_000, || c.state() == "open").await;
}

/// `fetch` with a method and an optional JSON body; returns the response text.
pub async fn fetch(method: &str, url: &str, body: Option<&str>) -> String {
    fetch_as(None, method, url, body).await
}

/// [`fetch`] with `Authorization: Bearer <bearer>` when given.
pub async fn fetch_as(bearer: Option<&str>, method: &str, url: &str, body: Option<&str>) -> String {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().expect("headers");
    if let Some(body) = body {
        init.set_body(&JsValue::from_str(body));
        headers
            .set("content-type", "application/json")
            .expect("header");
    }
    if let Some(bearer) = bearer {
        headers
            .set("authorization", &format!("Bearer {bearer}"))
            .expect("header");
    }
    init.set_headers(&headers);
    let window = web_sys::window().expect("a window");
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .unwrap_or_else(|e| panic!("{method} {url} failed: {e:?}"))
        .unchecked_into();
    let text = JsFuture::from(response.text().expect("text"))
        .await
        .expect("body")
        .as_string()
        .unwrap_or_default();
    assert!(
        response.ok(),
        "{method} {url} answered {}: {text}",
        response.status()
    );
    text
}

/// Asks the harness to do something (`restart`, `proxy/cut`, ...).
pub async fn harness_do(action: &str) {
    fetch("POST", &format!("{}/{action}", harness()), None).await;
}

/// Publishes through the relay's HTTP endpoint, as a backend would.
pub async fn http_publish(channel: &str, kind: &str, payload: &str) {
    let body = format!(r#"{{"channel":"{channel}","type":"{kind}","payload":{payload}}}"#);
    fetch("POST", &format!("{}/publish", relay_http()), Some(&body)).await;
}

/// Publishes through a client and waits for the relay's ack.
pub async fn publish(client: &LiveClient, channel: &str, kind: &str, payload: &str) -> JsValue {
    JsFuture::from(client.publish(
        channel.into(),
        kind.into(),
        payload.into(),
        js_sys::Date::now(),
        None,
    ))
    .await
    .expect("the relay acks the publish")
}
