//! Authentication, authorisation and limits, tried as an attacker would against the real relay.
//!
//! `attacks_are_refused` is a table: each attack is tried, its refusal checked (code, close code
//! or HTTP status) and counted, and after each one a victim connection holding a valid token, and
//! the attacked connection's own allowed subscription where it survives, must still receive.
//! Run with `--nocapture` to see the table.

mod common;

use common::tokens::*;
use common::Relay;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use live_relay::Config;
use serde_json::{json, Value};
use std::time::Duration;

struct Tally {
    rows: Vec<(String, &'static str, u32)>,
}

impl Tally {
    fn refused(&mut self, attack: &str, refusal: &'static str) {
        match self.rows.iter_mut().find(|(a, _, _)| a == attack) {
            Some(row) => row.2 += 1,
            None => self.rows.push((attack.to_owned(), refusal, 1)),
        }
    }

    fn print(&self) {
        eprintln!("| attack | refusal | refused |");
        eprintln!("|---|---|---|");
        for (attack, refusal, n) in &self.rows {
            eprintln!("| {attack} | {refusal} | {n} |");
        }
        let total: u32 = self.rows.iter().map(|r| r.2).sum();
        eprintln!("{} attacks, {total} refusals, 0 accepted", self.rows.len());
    }
}

#[tokio::test]
async fn attacks_are_refused() {
    let relay = Relay::start(hs_config()).await;
    let mut tally = Tally { rows: Vec::new() };
    let channel = "resources/posts";
    let good = claims("u1", 120, &["resources/*"], &[]);

    // The victim: a valid token, subscribed; it must receive after every attack.
    let (mut victim, answer) = authed(&relay, &hs(&good)).await;
    assert_eq!(answer["sub"], "u1");
    assert!(answer["ttl_ms"].as_u64().expect("ttl_ms") > 100_000);
    victim.subscribe(&[channel]).await;

    // 1. Tokens refused at connect: `unauthorized`, then close 4001.
    let mut expired = good.clone();
    expired["exp"] = json!(now() - 5);
    let mut early = good.clone();
    early["nbf"] = json!(now() + 60);
    let mut other_aud = good.clone();
    other_aud["aud"] = json!("someone-else");
    let mut other_iss = good.clone();
    other_iss["iss"] = json!("https://evil.invalid");
    let mut no_exp = good.clone();
    no_exp.as_object_mut().expect("object").remove("exp");
    let mut bad_channels = good.clone();
    bad_channels["channels"] = json!("resources/*");
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(b"another-secret-another-secret-00"),
    )
    .expect("sign");
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no token: subscribe first", None, "auth"),
        ("garbage token", Some("not.a-jwt".into()), "malformed"),
        ("empty token", Some(String::new()), "required"),
        ("forged signature", Some(forged), "signature"),
        ("alg: none", Some(unsigned(&good)), "malformed"),
        (
            "RS256 token, HS256 relay",
            Some(sign(Algorithm::RS256, &good)),
            "RS256",
        ),
        (
            "ES256 token, HS256 relay",
            Some(sign(Algorithm::ES256, &good)),
            "ES256",
        ),
        ("expired", Some(hs(&expired)), "expired"),
        ("not yet valid (nbf)", Some(hs(&early)), "not valid yet"),
        ("wrong audience", Some(hs(&other_aud)), "audience"),
        ("wrong issuer", Some(hs(&other_iss)), "issuer"),
        ("no exp claim", Some(hs(&no_exp)), "exp"),
        (
            "channels claim of the wrong type",
            Some(hs(&bad_channels)),
            "claims",
        ),
    ];
    for (attack, token, naming) in &cases {
        let mut client = connect_with(&relay, token.as_deref()).await;
        if token.is_none() {
            client
                .send_json(json!({ "op": "subscribe", "channels": [{ "channel": channel }] }))
                .await;
        }
        let (frames, code) = client.until_close_code().await;
        let error = frames
            .iter()
            .find(|f| f["op"] == "error")
            .unwrap_or_else(|| panic!("{attack}: no error frame in {frames:?}"));
        assert_eq!(error["code"], "unauthorized", "{attack}: {error}");
        let message = error["message"].as_str().expect("message");
        assert!(
            message.contains(naming),
            "{attack}: {message:?} should name {naming:?}"
        );
        assert_eq!(code, Some(4001), "{attack}: close code");
        assert!(
            frames
                .iter()
                .all(|f| f["op"] != "subscribed" && f["op"] != "event"),
            "{attack}: {frames:?}"
        );
        tally.refused(attack, "unauthorized + close 4001");
        let seq = backend_publish(&relay, channel, 1).await;
        expect_event(&mut victim, channel, seq).await;
    }

    // 2. On an authenticated connection: what the token does not allow.
    let (mut mallory, _) = authed(&relay, &hs(&claims("u2", 120, &["resources/*"], &[]))).await;
    mallory.subscribe(&[channel]).await;
    for secret in ["secret/payroll", "$revalidate", "resources"] {
        mallory
            .send_json(json!({ "op": "subscribe", "channels": [{ "channel": secret }] }))
            .await;
        let error = mallory.expect_error("forbidden", secret).await;
        assert_eq!(error["channel"], secret);
        tally.refused(
            "subscribe outside the `channels` claim",
            "forbidden (frame names the channel)",
        );
    }
    // Mixed: the allowed channel is subscribed, the other refused.
    mallory
        .send_json(json!({ "op": "subscribe", "channels": [
            { "channel": "secret/x" }, { "channel": "resources/users" } ] }))
        .await;
    mallory.expect_error("forbidden", "secret/x").await;
    let subscribed = mallory.recv_op("subscribed").await;
    assert_eq!(
        subscribed["channels"][0]["channel"], "resources/users",
        "{subscribed}"
    );
    tally.refused(
        "subscribe outside the `channels` claim",
        "forbidden (frame names the channel)",
    );

    for (i, target) in [channel, "secret/x"].iter().enumerate() {
        let id = 100 + i as u64;
        mallory
            .send_json(json!({ "op": "publish", "id": id, "channel": target, "type": "deleted", "payload": {} }))
            .await;
        let error = mallory.expect_error("forbidden", "publish").await;
        assert_eq!(error["id"], id);
        tally.refused(
            "publish without a `publish` claim",
            "forbidden (answers the publish id)",
        );
    }
    // Refreshes that must not take: the connection keeps its token and its subscriptions.
    let mut other_user = claims("u3", 120, &["*"], &["*"]);
    other_user["scopes"] = json!(["admin"]);
    let refreshes: Vec<(&str, String, &str)> = vec![
        (
            "refresh with a garbage token",
            "garbage".into(),
            "malformed",
        ),
        ("refresh with an expired token", hs(&expired), "expired"),
        (
            "refresh with a forged token",
            sign(Algorithm::RS256, &good),
            "RS256",
        ),
        ("refresh as another user", hs(&other_user), "user"),
    ];
    for (attack, token, naming) in &refreshes {
        mallory
            .send_json(json!({ "op": "auth", "token": token }))
            .await;
        mallory.expect_error("unauthorized", naming).await;
        tally.refused(attack, "unauthorized, old token stays");
    }
    // A connection whose token names no user cannot become a user by refreshing.
    let mut anonymous = good.clone();
    anonymous.as_object_mut().expect("object").remove("sub");
    let (mut nobody, answer) = authed(&relay, &hs(&anonymous)).await;
    assert!(answer.get("sub").is_none(), "{answer}");
    nobody
        .send_json(json!({ "op": "auth", "token": hs(&good) }))
        .await;
    nobody.expect_error("unauthorized", "user").await;
    tally.refused(
        "refresh from a token without `sub` to a user",
        "unauthorized, old token stays",
    );

    // Mallory's allowed subscription and the victim both still receive.
    let seq = backend_publish(&relay, channel, 999).await;
    expect_event(&mut mallory, channel, seq).await;
    expect_event(&mut victim, channel, seq).await;
    mallory.assert_alive().await;

    // 3. Declared scopes are ignored with authentication on.
    let (mut declared, _) = relay
        .connect_at("/ws?scopes=user:42,admin", Some("wlp.v1"))
        .await;
    declared.recv_op("hello").await;
    declared
        .send_json(json!({ "op": "auth", "token": hs(&good) }))
        .await;
    declared.recv_op("authed").await;
    declared.subscribe(&["resources/private"]).await;
    let response = relay
        .http
        .post(relay.url("/publish"))
        .bearer_auth(KEY)
        .json(&json!({ "channel": "resources/private", "type": "updated", "payload": { "ids": [1] }, "scopes": ["user:42"] }))
        .send()
        .await
        .expect("publish");
    assert_eq!(response.status(), 200);
    let frame = declared.recv().await;
    assert_eq!(
        frame["op"], "skip",
        "a declared scope must not unlock a scoped event: {frame}"
    );
    tally.refused(
        "client-declared scope (?scopes=user:42)",
        "ignored: skip, not the event",
    );
    // …while a token's scope does.
    let mut scoped = good.clone();
    scoped["scopes"] = json!(["user:42"]);
    let (mut holder, _) = authed(&relay, &hs(&scoped)).await;
    holder.subscribe(&["resources/private"]).await;
    backend_publish_scoped(&relay, "resources/private", "user:42").await;
    assert_eq!(
        holder.recv_op("event").await["channel"],
        "resources/private"
    );

    // 4. HTTP publishing without a valid credential.
    let body = json!({ "channel": channel, "type": "deleted", "payload": { "ids": [1] } });
    let http_cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("POST /publish without a key", None, 401, "unauthorized"),
        (
            "POST /publish with a revoked key",
            Some(OLD_KEY.into()),
            401,
            "unauthorized",
        ),
        (
            "POST /publish with a garbage bearer",
            Some("Basic abc".into()),
            401,
            "unauthorized",
        ),
        (
            "POST /publish with an expired token",
            Some(hs(&expired)),
            401,
            "unauthorized",
        ),
        (
            "POST /publish, token without `publish` claim",
            Some(hs(&good)),
            403,
            "forbidden",
        ),
    ];
    for (attack, bearer, status, code) in &http_cases {
        let mut request = relay.http.post(relay.url("/publish")).json(&body);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.expect("POST");
        assert_eq!(response.status().as_u16(), *status, "{attack}");
        let answer: Value = response.json().await.expect("JSON error");
        assert_eq!(answer["error"]["code"], *code, "{attack}: {answer}");
        tally.refused(
            attack,
            if *status == 401 {
                "401 unauthorized"
            } else {
                "403 forbidden"
            },
        );
    }
    let response = relay
        .http
        .post(relay.url("/revalidate"))
        .json(&json!({ "keys": [["posts"]] }))
        .send()
        .await
        .expect("POST /revalidate");
    assert_eq!(response.status(), 401);
    tally.refused("POST /revalidate without a key", "401 unauthorized");
    // A token allowed to publish on the channel may.
    let publisher = hs(&claims("svc", 60, &[], &["resources/*"]));
    let response = relay
        .http
        .post(relay.url("/publish"))
        .bearer_auth(&publisher)
        .json(&body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    let seq = response.json::<Value>().await.expect("JSON")["seq"]
        .as_u64()
        .expect("seq");
    expect_event(&mut victim, channel, seq).await;

    // 5. SSE: no ticket, a made-up ticket, a ticket used twice.
    for (attack, query) in [
        (
            "GET /sse without a ticket",
            "channels=resources%2Fposts".to_owned(),
        ),
        (
            "GET /sse with a made-up ticket",
            "channels=resources%2Fposts&ticket=00ff".to_owned(),
        ),
    ] {
        let response = relay
            .http
            .get(relay.url(&format!("/sse?{query}")))
            .send()
            .await
            .expect("GET /sse");
        assert_eq!(response.status(), 401, "{attack}");
        tally.refused(attack, "401 unauthorized");
    }
    let response = relay
        .http
        .post(relay.url("/sse/ticket"))
        .send()
        .await
        .expect("POST /sse/ticket");
    assert_eq!(response.status(), 401);
    tally.refused("POST /sse/ticket without a token", "401 unauthorized");

    // Channel names are private: only a backend may list them.
    for (attack, bearer, status) in [
        ("GET /stats/channels without a key", None, 401),
        (
            "GET /stats/channels with a user's token",
            Some(hs(&good)),
            403,
        ),
    ] {
        let mut request = relay.http.get(relay.url("/stats/channels"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.expect("GET /stats/channels");
        assert_eq!(response.status().as_u16(), status, "{attack}");
        tally.refused(
            attack,
            if status == 401 {
                "401 unauthorized"
            } else {
                "403 forbidden"
            },
        );
    }
    let response = relay
        .http
        .get(relay.url("/stats/channels"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("GET /stats/channels");
    assert_eq!(response.status(), 200);

    // The metrics count the refusals by reason.
    let metrics = relay.metrics().await;
    for line in [
        r#"live_relay_auth_failures_total{reason="expired"}"#,
        r#"live_relay_auth_failures_total{reason="wrong_algorithm"}"#,
        r#"live_relay_auth_failures_total{reason="bad_signature"}"#,
        r#"live_relay_auth_failures_total{reason="unknown_key"}"#,
        r#"live_relay_forbidden_total{action="subscribe"}"#,
        r#"live_relay_forbidden_total{action="publish"}"#,
    ] {
        assert!(metrics.contains(line), "/metrics lacks {line}:\n{metrics}");
    }
    tally.print();
    relay.stop().await;
}

async fn backend_publish_scoped(relay: &Relay, channel: &str, scope: &str) {
    let response = relay
        .http
        .post(relay.url("/publish"))
        .bearer_auth(KEY)
        .json(&json!({ "channel": channel, "type": "updated", "payload": {}, "scopes": [scope] }))
        .send()
        .await
        .expect("publish");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn public_keys_fix_the_algorithm() {
    let good = claims("u1", 60, &["a"], &[]);
    // RS256 relay: an RS256 token passes; HS256 signed with the public key's PEM (the classic
    // confusion) and ES256 do not.
    let relay = Relay::start(Config {
        jwt_public_key: Some(key_path("rsa-public.pem")),
        ..Config::default()
    })
    .await;
    let (mut ok, answer) = authed(&relay, &sign(Algorithm::RS256, &good)).await;
    assert_eq!(answer["sub"], "u1");
    ok.subscribe(&["a"]).await;
    let pem = std::fs::read(key_path("rsa-public.pem")).expect("pem");
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(&pem),
    )
    .expect("sign");
    for token in [confused, sign(Algorithm::ES256, &good), unsigned(&good)] {
        let mut client = connect_with(&relay, Some(&token)).await;
        let (frames, code) = client.until_close_code().await;
        assert_eq!(frames[0]["code"], "unauthorized", "{frames:?}");
        assert_eq!(code, Some(4001));
    }
    relay.stop().await;

    // ES256 relay.
    let relay = Relay::start(Config {
        jwt_public_key: Some(key_path("ec-public.pem")),
        ..Config::default()
    })
    .await;
    authed(&relay, &sign(Algorithm::ES256, &good)).await;
    let mut client = connect_with(&relay, Some(&sign(Algorithm::RS256, &good))).await;
    assert_eq!(client.until_close_code().await.1, Some(4001));
    relay.stop().await;
}

#[tokio::test]
async fn a_token_is_refreshed_in_band_and_expiry_closes_with_4001() {
    let relay = Relay::start(hs_config()).await;
    // Tokens live 2 s (exp is in whole seconds: 1-2 s).
    let short = |sub: &str| hs(&claims(sub, 2, &["feed"], &[]));
    let (mut client, answer) = authed(&relay, &short("u1")).await;
    assert!(answer["ttl_ms"].as_u64().expect("ttl") <= 2_000);
    client.subscribe(&["feed"]).await;
    // Refresh every 700 ms for 5 s while events flow: nothing lost, no reconnect.
    let mut expected = 0;
    for round in 0..7 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        client
            .send_json(json!({ "op": "auth", "token": short("u1") }))
            .await;
        let answer = client.recv_op("authed").await;
        assert!(answer["ttl_ms"].as_u64().expect("ttl") > 0, "round {round}");
        expected = backend_publish(&relay, "feed", round).await;
        expect_event(&mut client, "feed", expected).await;
    }
    assert_eq!(expected, 7);
    // No more refreshes: the relay ends the connection at expiry, telling the client why.
    let (frames, code) = client.until_close_code().await;
    assert_eq!(code, Some(4001));
    let last = frames.last().expect("an error frame");
    assert_eq!(last["code"], "unauthorized", "{frames:?}");
    assert!(last["message"]
        .as_str()
        .expect("message")
        .contains("expired"));
    let metrics = relay.metrics().await;
    assert!(
        metrics.contains("live_relay_token_refreshes_total 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("live_relay_token_expiries_total 1"),
        "{metrics}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn a_refresh_with_fewer_channels_ends_the_lost_subscriptions() {
    let relay = Relay::start(hs_config()).await;
    let (mut client, _) = authed(&relay, &hs(&claims("u1", 60, &["a", "b"], &[]))).await;
    client.subscribe(&["a", "b"]).await;
    client
        .send_json(json!({ "op": "auth", "token": hs(&claims("u1", 60, &["a"], &[])) }))
        .await;
    client.recv_op("authed").await;
    let error = client.expect_error("forbidden", "`b`").await;
    assert_eq!(error["channel"], "b");
    let seq_b = backend_publish(&relay, "b", 1).await;
    let seq_a = backend_publish(&relay, "a", 2).await;
    assert_eq!(seq_b, 1);
    expect_event(&mut client, "a", seq_a).await;
    relay.stop().await;
}

#[tokio::test]
async fn sse_opens_with_a_single_use_ticket() {
    let relay = Relay::start(hs_config()).await;
    let token = hs(&claims("u1", 60, &["resources/*"], &[]));
    let ticket = relay.ticket(&token).await;
    let mut sse = relay
        .sse(&format!(
            "channels=resources%2Fposts,secret&ticket={ticket}"
        ))
        .await;
    let retry = sse.block().await;
    assert_eq!(retry.retry.as_deref(), Some("1000"));
    assert_eq!(sse.recv().await.1["op"], "hello");
    let authed = sse.recv().await.1;
    assert_eq!(
        (authed["op"].as_str(), authed["sub"].as_str()),
        (Some("authed"), Some("u1"))
    );
    let forbidden = sse.recv().await.1;
    assert_eq!(
        (forbidden["code"].as_str(), forbidden["channel"].as_str()),
        (Some("forbidden"), Some("secret"))
    );
    let subscribed = sse.recv().await.1;
    assert_eq!(
        subscribed["channels"].as_array().map(Vec::len),
        Some(1),
        "{subscribed}"
    );
    let seq = backend_publish(&relay, "resources/posts", 1).await;
    let event = sse.recv().await.1;
    assert_eq!(event["seq"].as_u64(), Some(seq));
    // The ticket is used up.
    let again = relay
        .http
        .get(relay.url(&format!("/sse?channels=resources%2Fposts&ticket={ticket}")))
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(again.status(), 401);
    relay.stop().await;
}

#[tokio::test]
async fn a_publish_flood_is_throttled_while_others_keep_receiving() {
    let relay = Relay::start(Config {
        publish_rate: 50,
        publish_burst: 20,
        ..Config::default()
    })
    .await;
    let mut reader = relay.client().await;
    reader.subscribe(&["calm"]).await;
    let mut flooder = relay.client().await;
    // 500 publishes as fast as the socket takes them.
    for id in 0..500u64 {
        flooder
            .send_json(json!({ "op": "publish", "id": id, "channel": "flood", "type": "x", "payload": {} }))
            .await;
    }
    let (mut acked, mut limited) = (0, 0);
    while acked + limited < 500 {
        let frame = flooder.recv().await;
        match (frame["op"].as_str(), frame["code"].as_str()) {
            (Some("ack"), _) => acked += 1,
            (Some("error"), Some("rate_limited")) => limited += 1,
            _ => panic!("unexpected {frame}"),
        }
    }
    assert!(limited >= 400, "{limited} of 500 refused");
    assert!(acked >= 20, "the burst passes: {acked}");
    // Meanwhile another connection's publishes reach the reader, every one.
    let mut other = relay.client().await;
    for id in 0..20u64 {
        other
            .send_json(
                json!({ "op": "publish", "id": id, "channel": "calm", "type": "x", "payload": {} }),
            )
            .await;
        other.recv_op("ack").await;
        expect_event(&mut reader, "calm", id + 1).await;
    }
    let metrics = relay.metrics().await;
    let hits = format!(r#"live_relay_limit_hits_total{{limit="publish_rate"}} {limited}"#);
    assert!(metrics.contains(&hits), "{hits} in\n{metrics}");
    relay.stop().await;
}

#[tokio::test]
async fn an_http_key_is_throttled_per_key() {
    let relay = Relay::start(Config {
        api_key: vec![KEY.into(), "second-backend-key-0002".into()],
        key_publish_rate: 1,
        key_publish_burst: 3,
        ..Config::default()
    })
    .await;
    let body = json!({ "channel": "c", "type": "x", "payload": {} });
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = relay
            .http
            .post(relay.url("/publish"))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .expect("POST");
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // The other key has its own bucket (rotation does not share a limit).
    let r = relay
        .http
        .post(relay.url("/publish"))
        .bearer_auth("second-backend-key-0002")
        .json(&body)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    relay.stop().await;
}

#[tokio::test]
async fn connections_per_ip_and_origins_are_limited() {
    let relay = Relay::start(Config {
        max_connections_per_ip: 2,
        allowed_origins: vec!["https://admin.example.com".into()],
        ..Config::default()
    })
    .await;
    let _a = relay.client().await;
    let _b = relay.client().await;
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/ws", relay.addr)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429)
        }
        other => panic!("a third connection from one IP must be refused: {other:?}"),
    }
    drop(_a);
    // The slot is given back when a connection ends.
    let mut freed = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Ok(ok) = tokio_tungstenite::connect_async(format!("ws://{}/ws", relay.addr)).await {
            freed = Some(ok);
            break;
        }
    }
    assert!(freed.is_some(), "the closed connection's slot came back");
    drop(freed);
    drop(_b);
    tokio::time::sleep(Duration::from_millis(100)).await;

    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let with_origin = |origin: &str| {
        let mut request = format!("ws://{}/ws", relay.addr)
            .into_client_request()
            .expect("request");
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("header"));
        request
    };
    match tokio_tungstenite::connect_async(with_origin("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("a page from another origin must be refused: {other:?}"),
    }
    let sse = relay
        .http
        .get(relay.url("/sse?channels=a"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(sse.status(), 403);
    let (ws, _) = tokio_tungstenite::connect_async(with_origin("https://admin.example.com"))
        .await
        .expect("an allowed origin connects");
    drop(ws);
    relay.stop().await;
}

#[tokio::test]
async fn an_open_relay_answers_auth_without_a_ttl() {
    let relay = Relay::default().await;
    let mut client = relay.client().await;
    client
        .send_json(json!({ "op": "auth", "token": "anything" }))
        .await;
    let answer = client.recv_op("authed").await;
    assert!(answer.get("ttl_ms").is_none(), "{answer}");
    client.subscribe(&["a"]).await;
    relay.stop().await;
}

#[tokio::test]
async fn publish_keys_belong_to_their_publisher_and_channel() {
    let relay = Relay::start(hs_config()).await;
    let (mut reader, _) = authed(&relay, &hs(&claims("r", 60, &["*"], &[]))).await;
    reader.subscribe(&["audit", "chat/1"]).await;
    // A backend publishes on `audit` with a predictable key…
    let post = |bearer: String, channel: &'static str| {
        let request = relay
            .http
            .post(relay.url("/publish"))
            .bearer_auth(bearer)
            .json(
                &json!({ "channel": channel, "type": "x", "payload": {}, "key": "invoice-1001" }),
            );
        async move {
            let response = request.send().await.expect("POST /publish");
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.expect("JSON")
        }
    };
    let first = post(KEY.into(), "audit").await;
    assert_eq!(
        (first["channel"].as_str(), first["seq"].as_u64()),
        (Some("audit"), Some(1))
    );
    expect_event(&mut reader, "audit", 1).await;
    // …a user's token reusing it elsewhere neither learns about `audit` nor loses its own event.
    let user = hs(&claims("u9", 60, &[], &["chat/*"]));
    let second = post(user.clone(), "chat/1").await;
    assert_eq!(
        (second["channel"].as_str(), second["seq"].as_u64()),
        (Some("chat/1"), Some(1))
    );
    expect_event(&mut reader, "chat/1", 1).await;
    // The same publisher resending its key is still answered once.
    let again = post(user, "chat/1").await;
    assert_eq!(again["seq"].as_u64(), Some(1));
    reader.expect_silence().await;
    relay.stop().await;
}

#[tokio::test]
async fn a_token_that_never_expires_does_not_overflow_the_deadline() {
    let relay = Relay::start(hs_config()).await;
    let mut forever = claims("u1", 60, &["a"], &[]);
    forever["exp"] = json!(u64::MAX);
    let (mut client, answer) = authed(&relay, &hs(&forever)).await;
    assert!(answer["ttl_ms"].as_u64().expect("ttl") > 1_000_000);
    client.subscribe(&["a"]).await;
    client.assert_alive().await;
    relay.stop().await;
}

#[tokio::test]
async fn a_connection_that_never_authenticates_is_closed_after_the_auth_timeout() {
    // Two ping intervals (the liveness limit) well past the auth timeout: only the missing `auth`
    // frame can end this connection in time.
    let relay = Relay::start(Config {
        ping_ms: 20_000,
        ..hs_config()
    })
    .await;
    let started = std::time::Instant::now();
    let mut silent = connect_with(&relay, None).await;
    tokio::time::sleep(live_relay::ws::AUTH_TIMEOUT - Duration::from_secs(2)).await;
    let (frames, code) = silent.until_close_code().await;
    assert_eq!(code, Some(4001));
    assert_eq!(
        frames.last().map(|f| &f["code"]),
        Some(&json!("unauthorized")),
        "{frames:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= live_relay::ws::AUTH_TIMEOUT - Duration::from_millis(200)
            && waited < live_relay::ws::AUTH_TIMEOUT + Duration::from_secs(3),
        "closed after {waited:?}"
    );
    relay.stop().await;
}

#[tokio::test]
async fn a_refresh_replaces_the_connection_scopes() {
    let relay = Relay::start(hs_config()).await;
    let (mut client, _) = authed(&relay, &hs(&claims("u1", 60, &["inbox"], &[]))).await;
    client.subscribe(&["inbox"]).await;
    backend_publish_scoped(&relay, "inbox", "user:u1").await;
    assert_eq!(client.recv().await["op"], "skip", "no scope yet");
    let mut scoped = claims("u1", 60, &["inbox"], &[]);
    scoped["scopes"] = json!(["user:u1"]);
    client
        .send_json(json!({ "op": "auth", "token": hs(&scoped) }))
        .await;
    client.recv_op("authed").await;
    backend_publish_scoped(&relay, "inbox", "user:u1").await;
    expect_event(&mut client, "inbox", 2).await;
    relay.stop().await;
}

#[tokio::test]
async fn a_ticket_opens_nothing_once_its_token_has_expired() {
    let relay = Relay::start(hs_config()).await;
    let token = hs(&claims("u1", 2, &["resources/*"], &[]));
    let ticket = relay.ticket(&token).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (status, answer) = relay
        .get_json(&format!("/sse?channels=resources%2Fposts&ticket={ticket}"))
        .await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error"]["code"], "unauthorized", "{answer}");
    relay.stop().await;
}
