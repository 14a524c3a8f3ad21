//! The demo on PostgreSQL (`--demo --postgres <url>`) against a throwaway PostgreSQL 15: the REST
//! API answers as the in-memory demo does (the same seed, the same shapes), its records are rows
//! of real tables, and every change, through the API or from `psql`, reaches subscribers through
//! the tables' triggers and the feed, not through the API.

mod common;

use common::demo_api::{authed_client, call, expect_error, get};
use common::postgres::Postgres;
use common::{Client, Relay, PATIENCE};
use live_relay::Config;
use serde_json::{json, Value};
use tokio::time::Instant;

fn demo_config(postgres: Option<String>) -> Config {
    Config {
        demo: true,
        postgres,
        ..Config::default()
    }
}

async fn demo_on(pg: &Postgres) -> Relay {
    Relay::start(demo_config(Some(pg.url()))).await
}

/// A request with a JSON body to both relays.
async fn both(
    memory: &Relay,
    pg: &Relay,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> [(u16, Option<usize>, Value); 2] {
    let mut answers = Vec::new();
    for relay in [memory, pg] {
        let mut request = relay.http.request(method.clone(), relay.url(path));
        if let Some(body) = &body {
            request = request.json(body);
        }
        answers.push(call(request).await);
    }
    answers.try_into().expect("two answers")
}

/// A WebSocket client with a demo token, subscribed to these channels.
async fn watcher(relay: &Relay, channels: &[&str]) -> Client {
    let mut client = authed_client(relay).await;
    client.subscribe(channels).await;
    client
}

/// The next event: its channel, type and payload.
async fn next_event(client: &mut Client) -> (String, String, Value) {
    let event = client.recv_op("event").await;
    (
        event["channel"].as_str().expect("channel").to_owned(),
        event["type"].as_str().expect("type").to_owned(),
        event["payload"].clone(),
    )
}

fn updated_posts(ids: &[&str]) -> (String, String, Value) {
    (
        "resources/posts".into(),
        "updated".into(),
        json!({ "ids": ids }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_the_in_memory_demo_and_the_triggers_publish() {
    let started = Instant::now();
    let pg = Postgres::start();
    let memory = Relay::start(demo_config(None)).await;
    let relay = demo_on(&pg).await;
    // The relay serves once its tables are ready.
    assert_eq!(get(&relay, "/api/categories").await.0, 200);

    // The tables are real: columns, seeded as the in-memory store, watched.
    assert_eq!(
        pg.psql("select count(*) from posts; select count(*) from categories"),
        "12\n4"
    );
    assert_eq!(
        pg.psql("select title, category_id, created_at at time zone 'UTC' from posts where id = 6"),
        "Night trains across Europe|3|2025-03-02 21:20:00"
    );
    assert_eq!(
        pg.psql(
            "select string_agg(tgname, ',' order by tgname) from pg_trigger where tgrelid = 'posts'::regclass"
        ),
        "live_relay_created,live_relay_deleted,live_relay_truncated,live_relay_updated"
    );

    // Reads: the same statuses, counts and records.
    for path in [
        "/api/posts?_start=0&_end=10",
        "/api/posts?_start=10&_end=20",
        "/api/posts?_start=0&_end=3&_sort=id&_order=desc",
        "/api/posts?_sort=status,id&_order=desc,desc&_start=0&_end=2",
        "/api/posts?status=draft&title_like=SOUP",
        "/api/posts?category.id=3&_start=0&_end=2",
        "/api/posts?id=4&id=2&id=400",
        "/api/posts?q=polenta",
        "/api/categories",
        "/api/posts/3",
        "/api/categories/2",
        "/api/posts/99",
        "/api/posts/abc",
        "/api/posts?_start=soon",
    ] {
        let [expected, got] = both(&memory, &relay, reqwest::Method::GET, path, None).await;
        assert_eq!(got, expected, "GET {path}");
    }

    // Writes: the same answers; events come from the triggers (ids as strings: bigint keys).
    let mut posts = watcher(&relay, &["resources/posts"]).await;
    let new_post = json!({
        "title": "Hello",
        "status": "draft",
        "category": { "id": 2 },
        "createdAt": "2025-07-01T10:00:00Z",
    });
    let [expected, got] = both(
        &memory,
        &relay,
        reqwest::Method::POST,
        "/api/posts",
        Some(new_post),
    )
    .await;
    assert_eq!(got, expected, "POST");
    assert_eq!((got.0, &got.2["id"]), (201, &json!(13)));
    assert_eq!(
        next_event(&mut posts).await,
        (
            "resources/posts".into(),
            "created".into(),
            json!({ "ids": ["13"] })
        )
    );

    let [expected, got] = both(
        &memory,
        &relay,
        reqwest::Method::PATCH,
        "/api/posts/13",
        Some(json!({ "status": "published", "id": 99, "category": { "id": 4 } })),
    )
    .await;
    assert_eq!(got, expected, "PATCH merges");
    assert_eq!(got.2["title"], "Hello");
    assert_eq!(next_event(&mut posts).await, updated_posts(&["13"]));
    assert_eq!(
        get(&relay, "/api/posts/13").await.2,
        got.2,
        "the change is stored"
    );

    let [expected, got] = both(
        &memory,
        &relay,
        reqwest::Method::PUT,
        "/api/posts/13",
        Some(json!({ "title": "Replaced" })),
    )
    .await;
    assert_eq!(got, expected, "PUT replaces");
    assert_eq!(got.2, json!({ "id": 13, "title": "Replaced" }));
    assert_eq!(next_event(&mut posts).await, updated_posts(&["13"]));

    let [expected, got] = both(
        &memory,
        &relay,
        reqwest::Method::DELETE,
        "/api/posts/1",
        None,
    )
    .await;
    assert_eq!(got, expected, "DELETE answers the record");
    assert_eq!(got.2["title"], "Welcome to the live demo");
    assert_eq!(
        next_event(&mut posts).await,
        (
            "resources/posts".into(),
            "deleted".into(),
            json!({ "ids": ["1"] })
        )
    );

    // Missing records: 404 on both, and nothing is published.
    for (method, path) in [
        (reqwest::Method::PATCH, "/api/posts/1"),
        (reqwest::Method::PUT, "/api/posts/77"),
        (reqwest::Method::DELETE, "/api/posts/1"),
    ] {
        let [expected, got] = both(&memory, &relay, method, path, Some(json!({}))).await;
        assert_eq!(got, expected, "{path}");
        expect_error(got, 404, "not_found", "posts");
    }
    posts.expect_silence().await;

    // A post created without createdAt gets the time of its creation.
    let (status, _, created) = call(
        relay
            .http
            .post(relay.url("/api/posts"))
            .json(&json!({ "title": "No date" })),
    )
    .await;
    assert_eq!((status, &created["id"]), (201, &json!(14)), "{created}");
    assert!(
        created["createdAt"]
            .as_str()
            .is_some_and(|d| d.len() == 20 && d.ends_with('Z')),
        "{created}"
    );
    assert_eq!(
        next_event(&mut posts).await,
        (
            "resources/posts".into(),
            "created".into(),
            json!({ "ids": ["14"] })
        )
    );

    // Only posts and categories are tables; a value a column cannot take is the body's fault.
    expect_error(
        get(&relay, "/api/users").await,
        404,
        "not_found",
        "posts and categories only",
    );
    expect_error(
        call(
            relay
                .http
                .post(relay.url("/api/tags"))
                .json(&json!({ "name": "rust" })),
        )
        .await,
        404,
        "not_found",
        "\"tags\"",
    );
    expect_error(
        call(
            relay
                .http
                .patch(relay.url("/api/posts/2"))
                .json(&json!({ "createdAt": "soon" })),
        )
        .await,
        400,
        "bad_request",
        "soon",
    );
    expect_error(
        call(
            relay
                .http
                .patch(relay.url("/api/posts/2"))
                .json(&json!({ "category": { "id": "two" } })),
        )
        .await,
        400,
        "bad_request",
        "two",
    );
    posts.expect_silence().await;

    // A change from psql, not through the API: the posts watcher sees it, and a change of
    // categories reaches the categories channel only.
    let mut categories = watcher(&relay, &["resources/categories"]).await;
    pg.psql("UPDATE posts SET title = 'Edited with psql' WHERE id = 2");
    assert_eq!(next_event(&mut posts).await, updated_posts(&["2"]));
    assert_eq!(
        get(&relay, "/api/posts/2").await.2["title"],
        "Edited with psql"
    );
    pg.psql("UPDATE categories SET title = 'Tech' WHERE id = 1");
    assert_eq!(
        next_event(&mut categories).await,
        (
            "resources/categories".into(),
            "updated".into(),
            json!({ "ids": ["1"] })
        )
    );
    posts.expect_silence().await;
    pg.psql("UPDATE posts SET status = 'draft' WHERE category_id = 3");
    let (_, kind, payload) = next_event(&mut posts).await;
    assert_eq!(kind, "updated");
    let mut ids: Vec<&str> = payload["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| id.as_str().expect("a string id"))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["11", "5", "6"], "one event for the statement");
    categories.expect_silence().await;
    memory.stop().await;
    relay.stop().await;

    // Another start on the same database keeps the rows (no second seed) and the identity.
    let relay = demo_on(&pg).await;
    let (_, total, _) = get(&relay, "/api/posts?_start=0&_end=1").await;
    assert_eq!(total, Some(13));
    assert_eq!(
        get(&relay, "/api/posts/2").await.2["title"],
        "Edited with psql"
    );
    let (status, _, created) = call(
        relay
            .http
            .post(relay.url("/api/posts"))
            .json(&json!({ "title": "After a restart" })),
    )
    .await;
    assert_eq!((status, &created["id"]), (201, &json!(15)), "{created}");

    // The database gone: 503 with the reason; back: the next request connects again.
    pg.stop_fast();
    let (status, _, body) = get(&relay, "/api/posts").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("PostgreSQL is unavailable")),
        "{body}"
    );
    pg.start_again();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, total, _) = get(&relay, "/api/posts").await;
        if status == 200 {
            assert_eq!(total, Some(14));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} after the restart"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    relay.stop().await;
    eprintln!("demo on PostgreSQL: {:?}", started.elapsed());
}

/// `serve` on a fresh port with this config: the error it stops with.
async fn refused_start(config: Config) -> std::io::Error {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    live_relay::serve(config, listener, std::future::pending())
        .await
        .expect_err("the relay should not start")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_does_not_start_without_its_database_or_on_other_tables() {
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let error = refused_start(demo_config(Some(url))).await;
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");

    // A `posts` table of the application's own, with other columns: the start stops and says why.
    let pg = Postgres::start();
    pg.psql("create table posts (id int primary key, name text)");
    let error = refused_start(demo_config(Some(pg.url()))).await;
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
    let message = error.to_string();
    assert!(
        message.contains("tables posts and categories") && message.contains("title"),
        "{message}"
    );
    assert_eq!(
        pg.psql("select count(*) from posts"),
        "0",
        "nothing was written"
    );
}
