//! The PostgreSQL feed against misuse and attack (issue 25, from a review that found each of these
//! broken): a watched table's owner cannot run code as the schema's owner, a row nobody can read or
//! of 8 MB does not hold its partition up, a starting relay does not block the app's writes, the
//! key column may be renamed or retyped, writes to a partition of a partitioned table publish, and
//! `/healthz` names the part of the feed that fails.

mod common;

use common::postgres::Postgres;
use common::redis::RedisServer;
use common::{Relay, PATIENCE};
use live_relay::Config;
use serde_json::json;
use std::time::Duration;
use tokio::time::{sleep, Instant};

fn config_on(pg: &Postgres) -> Config {
    Config {
        postgres: Some(pg.url()),
        postgres_poll_ms: 100,
        ..Config::default()
    }
}

#[tokio::test]
async fn a_watched_tables_owner_cannot_run_code_as_the_schemas_owner() {
    let pg = Postgres::start();
    let relay = Relay::start_with_feed(config_on(&pg)).await;
    let mut client = relay.client().await;
    client.subscribe(&["resources/posts"]).await;
    pg.psql(
        "create role app login; grant create on schema public to app;
         set role app; create table posts (id int primary key, title text); reset role;
         select live_relay.watch('posts');",
    );
    // The owner retypes the key to a type of its own, with a cast to json that would make it
    // superuser if the trigger function (which runs as the schema's owner) ever called it.
    pg.psql(
        "set role app;
         create type evil as enum ('1', '2');
         create function evil_json(evil) returns json language plpgsql as $f$
           begin execute 'alter role app superuser'; return to_json($1::text); end $f$;
         create cast (evil as json) with function evil_json(evil);
         alter table posts alter column id type evil using id::text::evil;
         insert into posts values ('1', 'x');",
    );
    assert_eq!(
        pg.psql("select rolsuper from pg_roles where rolname = 'app'"),
        "f"
    );
    // The write went through, and its event carries no ids (everyone refetches).
    let frame = client.recv_op("event").await;
    assert_eq!(
        (frame["type"].as_str(), &frame["payload"]),
        (Some("created"), &json!({}))
    );
    // watch() refuses such a key up front.
    let refused = pg
        .try_psql("select live_relay.watch('posts')")
        .expect_err("a key of a type of its own");
    assert!(
        refused.contains("give a key column of a built-in type"),
        "{refused}"
    );
    // Without grants a role can neither publish nor watch.
    let refused = pg
        .try_psql("set role app; select live_relay.publish('x', 'y')")
        .expect_err("publish without a grant");
    assert!(refused.contains("permission denied"), "{refused}");
    relay.stop().await;
}

#[tokio::test]
async fn rows_that_cannot_be_read_or_are_huge_do_not_hold_their_partition_up() {
    let pg = Postgres::start();
    let relay = Relay::start_with_feed(config_on(&pg)).await;
    let mut client = relay.client().await;
    client.subscribe(&["orders"]).await;
    // Scopes with a NULL or of two dimensions are refused to the writer, by the table.
    for scopes in ["array[null]::text[]", "array[['a']]"] {
        let refused = pg
            .try_psql(&format!(
                "select live_relay.publish('orders', 'x', '{{}}', null, {scopes})"
            ))
            .expect_err("refused");
        assert!(refused.contains("outbox_scopes_are_a_list"), "{refused}");
    }
    // 25 rows of 8 MB (200 MB): refused as too large without being read (the relay's memory stays
    // small: it is this test's process).
    pg.psql(
        "insert into live_relay.outbox (channel, type, payload)
         select 'orders', 'big', jsonb_build_object('x', repeat('y', 8000000)) from generate_series(1, 25);
         select live_relay.publish('orders', 'shipped', '{\"ids\": [\"1\"]}');",
    );
    // Setting 200 MB aside takes the database a while.
    let frame = match client.next_within(Duration::from_secs(60)).await {
        Some(tokio_tungstenite::tungstenite::Message::Text(text)) => {
            serde_json::from_str::<serde_json::Value>(&text).expect("JSON")
        }
        other => panic!("expected the event, got {other:?}"),
    };
    assert_eq!(
        (&frame["op"], &frame["type"]),
        (&json!("event"), &json!("shipped"))
    );
    let deadline = Instant::now() + PATIENCE;
    while pg.psql("select count(*) from live_relay.rejected where reason like 'too_large%'") != "25"
    {
        assert!(Instant::now() < deadline, "the big rows were not set aside");
        sleep(Duration::from_millis(50)).await;
    }
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    println!(
        "the test process peaked at {} KiB",
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .unwrap_or_default()
    );
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("VmHWM");
    assert!(
        peak_kib < 150 * 1024,
        "the test process peaked at {peak_kib} KiB"
    );
    relay.stop().await;
}

#[tokio::test]
async fn a_starting_relay_does_not_block_the_apps_writes() {
    let pg = Postgres::start();
    Relay::start_with_feed(config_on(&pg)).await.stop().await;
    pg.psql("create table posts (id int primary key); select live_relay.watch('posts')");
    let (open, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    open.batch_execute("begin; insert into posts values (1)")
        .await
        .expect("an app transaction, left open");
    // NOTIFY off and 2 partitions: an ALTER TABLE and an index, with the app's transaction open.
    let began = Instant::now();
    let relay = Relay::start_with_feed(Config {
        postgres_notify: false,
        postgres_partitions: 2,
        ..config_on(&pg)
    })
    .await;
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "the relay waited for the app's lock"
    );
    let (app, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    app.batch_execute("set statement_timeout = '3s'; insert into posts values (2)")
        .await
        .expect("an app write while a relay starts");
    open.batch_execute("commit").await.expect("commit");
    relay.stop().await;
}

#[tokio::test]
async fn the_key_column_may_be_renamed_and_partitions_publish() {
    let pg = Postgres::start();
    let relay = Relay::start_with_feed(config_on(&pg)).await;
    let mut client = relay.client().await;
    client.subscribe(&["resources/t", "resources/pt"]).await;
    pg.psql("create table t (id bigint primary key, v int); select live_relay.watch('t')");
    pg.psql("alter table t rename column id to t_id; insert into t values (9007199254740993, 1)");
    let frame = client.recv_op("event").await;
    assert_eq!(frame["payload"], json!({"ids": ["9007199254740993"]}));
    // A domain over bigint is a bigint: a string.
    pg.psql(
        "create domain big as bigint; create table d (id big primary key);
         select live_relay.watch('d', 't'); insert into d values (9007199254740995)",
    );
    let frame = client.recv_op("event").await;
    assert_eq!(frame["payload"], json!({"ids": ["9007199254740995"]}));
    pg.psql(
        "create table pt (id int, y int, primary key (id, y)) partition by range (y);
         create table pt_1 partition of pt for values from (0) to (10);
         select live_relay.watch('pt', key => 'id');
         insert into pt values (1, 5); insert into pt_1 values (2, 6); update pt_1 set y = 7;",
    );
    let mut seen = Vec::new();
    for _ in 0..3 {
        let frame = client.recv_op("event").await;
        assert_eq!(frame["channel"], "resources/pt");
        seen.push((
            frame["type"].as_str().map(str::to_owned),
            frame["payload"].clone(),
        ));
    }
    assert_eq!(
        seen,
        [
            (Some("created".to_owned()), json!({"ids": [1]})),
            (Some("created".to_owned()), json!({"ids": [2]})),
            (Some("updated".to_owned()), json!({"ids": [1, 2]})),
        ]
    );
    client.expect_silence().await;
    relay.stop().await;
}

#[tokio::test]
async fn healthz_names_the_partition_that_cannot_publish() {
    let pg = Postgres::start();
    let mut redis = RedisServer::start();
    let relay = Relay::start_with_feed(Config {
        redis: Some(redis.url()),
        postgres_partitions: 2,
        ..config_on(&pg)
    })
    .await;
    redis.kill();
    pg.psql("select live_relay.publish('c' || n, 'x') from generate_series(1, 20) n");
    // `/healthz` answers 503 while Redis is away: read its body whatever the status.
    let health_of = |relay: &Relay| {
        let request = relay.http.get(relay.url("/healthz"));
        async move {
            let response = request.send().await.expect("GET /healthz");
            response.json::<serde_json::Value>().await.expect("JSON")
        }
    };
    let deadline = Instant::now() + PATIENCE;
    let health = loop {
        let health = health_of(&relay).await;
        if health["postgres"]["state"] == "degraded" {
            break health;
        }
        assert!(Instant::now() < deadline, "never degraded: {health}");
        sleep(Duration::from_millis(50)).await;
    };
    let error = health["postgres"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("partition ") && error.contains("row "),
        "{health}"
    );
    // Still degraded a while later: another partition's empty drain does not hide it.
    for _ in 0..10 {
        sleep(Duration::from_millis(100)).await;
        assert_eq!(health_of(&relay).await["postgres"]["state"], "degraded");
    }
    redis.restart();
    let deadline = Instant::now() + PATIENCE * 2;
    loop {
        let health = health_of(&relay).await;
        if health["postgres"]["state"] == "ok" && health["postgres"]["backlog"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {health}");
        sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pg.psql("select count(*) from live_relay.outbox"), "0");
    relay.stop().await;
}
