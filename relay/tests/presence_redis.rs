//! Presence's Redis store (relay/src/presence/redis.rs) against a real `redis-server`: the scripts'
//! decisions (join, resume, another user's key, the cap, leave, grace, refresh, sweep, snapshot)
//! and their races, on a simulated clock the scripts read instead of Redis's `TIME` (one test runs
//! on Redis's clock). Two "nodes" are two stores of different node names, each on its own
//! connection; the diffs are read from the `<prefix>:pp:<channel>` pub/sub channel as a node does.

mod common;

use common::redis::RedisServer;
use futures_util::StreamExt;
use live_relay::presence::redis::{parse_diff, RedisPresence, Versioned};
use live_relay::presence::set::{Diff, Joined, Limits, Refusal};
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::timeout;

const CHANNEL: &str = "resources/posts";
const LIMITS: Limits = Limits {
    max_members: 100,
    max_data_bytes: 1024,
    max_updates: 5,
    update_window_ms: 10_000,
    grace_ms: 5_000,
};

/// A Redis, a simulated clock, and the means to make nodes and watchers on them.
struct Cluster {
    redis: RedisServer,
    client: redis::Client,
    clock: Arc<AtomicU64>,
}

impl Cluster {
    fn start() -> Cluster {
        let redis = RedisServer::start();
        let client = redis::Client::open(redis.url()).expect("a Redis URL");
        Cluster {
            redis,
            client,
            clock: Arc::new(AtomicU64::new(1_000_000)),
        }
    }

    async fn conn(&self) -> MultiplexedConnection {
        self.client
            .get_multiplexed_async_connection()
            .await
            .expect("a connection to Redis")
    }

    /// A node on the simulated clock.
    async fn node(&self, name: &str, limits: Limits) -> (RedisPresence, MultiplexedConnection) {
        let store =
            RedisPresence::new("wlp", name, limits).with_test_clock(Arc::clone(&self.clock));
        (store, self.conn().await)
    }

    fn advance(&self, ms: u64) {
        self.clock.fetch_add(ms, Ordering::AcqRel);
    }

    /// A subscriber of `channel`'s diffs.
    async fn watcher(&self, channel: &str) -> Watcher {
        let mut pubsub = self.client.get_async_pubsub().await.expect("pub/sub");
        pubsub
            .subscribe(format!("wlp:pp:{channel}"))
            .await
            .expect("subscribed");
        Watcher {
            stream: pubsub.into_on_message(),
        }
    }
}

struct Watcher {
    stream: redis::aio::PubSubStream,
}

impl Watcher {
    /// The diffs that arrive until 200 ms pass without one.
    async fn drain(&mut self) -> Vec<Versioned> {
        let mut out = Vec::new();
        while let Ok(Some(message)) = timeout(Duration::from_millis(200), self.stream.next()).await
        {
            out.push(parse_diff(message.get_payload_bytes()).expect("a diff"));
        }
        out
    }
}

fn actions(diffs: &[Versioned]) -> Vec<String> {
    diffs
        .iter()
        .map(|(v, d)| match d {
            Diff::Join(m) => format!("{v} join {}", m.key),
            Diff::Update(m) => format!("{v} update {}", m.key),
            Diff::Leave { key, .. } => format!("{v} leave {key}"),
        })
        .collect()
}

fn key(i: usize) -> String {
    format!("member-key-{i:06}")
}

async fn join(
    store: &RedisPresence,
    conn: &mut MultiplexedConnection,
    k: &str,
    user: &str,
    data: Value,
    id: u64,
) -> Result<(u64, Joined), live_relay::presence::redis::StoreError> {
    store
        .join(conn, CHANNEL, k, user, json!({"name": user}), data, id)
        .await
}

#[tokio::test]
async fn a_join_is_announced_to_every_node_and_in_the_snapshot() {
    let cluster = Cluster::start();
    let mut watcher = cluster.watcher(CHANNEL).await;
    let (a, mut ca) = cluster.node("node-a", LIMITS).await;
    let (b, mut cb) = cluster.node("node-b", LIMITS).await;
    let (version, joined) = join(&a, &mut ca, &key(1), "alice", json!({"id": 3}), 1)
        .await
        .expect("joins");
    assert_eq!(version, 1);
    assert!(matches!(joined, Joined::New(Diff::Join(_))), "{joined:?}");
    let diffs = watcher.drain().await;
    assert_eq!(actions(&diffs), ["1 join member-key-000001"]);
    let Diff::Join(member) = &diffs[0].1 else {
        unreachable!()
    };
    assert_eq!(
        (member.user.as_str(), &member.info, &member.data),
        ("alice", &json!({"name": "alice"}), &json!({"id": 3}))
    );
    assert_eq!(
        member.since, 1_000_000,
        "the join's time, on Redis's (here simulated) clock"
    );
    let (version, members) = b.snapshot(&mut cb, CHANNEL).await.expect("a snapshot");
    assert_eq!(version, 1);
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].key, key(1));
    assert_eq!(members[0].data, json!({"id": 3}));
    // The event stream's keys are untouched: presence takes no seq.
    assert_eq!(
        cluster
            .redis
            .cli(&["EXISTS", &format!("wlp:seq:{CHANNEL}")]),
        "0"
    );
}

#[tokio::test]
async fn a_resume_on_another_node_is_silent_and_new_data_is_an_update() {
    let cluster = Cluster::start();
    let mut watcher = cluster.watcher(CHANNEL).await;
    let (a, mut ca) = cluster.node("node-a", LIMITS).await;
    let (b, mut cb) = cluster.node("node-b", LIMITS).await;
    join(&a, &mut ca, &key(1), "alice", json!({"id": 3}), 1)
        .await
        .expect("joins");
    assert_eq!(a.disconnected(&mut ca, 1).await, Ok(1));
    cluster.advance(4_000);
    let (version, joined) = join(&b, &mut cb, &key(1), "alice", json!({"id": 3}), 7)
        .await
        .expect("resumes");
    assert_eq!((version, joined), (1, Joined::Resumed(None)));
    cluster.advance(4_000);
    assert_eq!(b.refresh(&mut cb).await.map(|r| r.kept), Ok(1));
    cluster.advance(6_000);
    assert_eq!(
        a.sweep(&mut ca).await,
        Ok(vec![]),
        "resumed: past the grace period, kept"
    );
    let (version, joined) = join(&b, &mut cb, &key(1), "alice", json!({"id": 4}), 7)
        .await
        .expect("joins again with new data");
    assert_eq!(version, 2);
    assert!(matches!(joined, Joined::Resumed(Some(Diff::Update(_)))));
    assert_eq!(
        actions(&watcher.drain().await),
        ["1 join member-key-000001", "2 update member-key-000001"]
    );
    // The old node's refresh finds it taken over: lost there, nothing announced.
    let refreshed = a.refresh(&mut ca).await.expect("a refresh");
    assert!(refreshed.rejoined.is_empty() && refreshed.lost.is_empty());
    let (_, members) = a.snapshot(&mut ca, CHANNEL).await.expect("a snapshot");
    assert_eq!(
        (members.len(), members[0].generation),
        (1, 2),
        "two resumes"
    );
}

#[tokio::test]
async fn another_users_key_and_the_cap_are_refused() {
    let cluster = Cluster::start();
    let limits = Limits {
        max_members: 2,
        ..LIMITS
    };
    let (a, mut ca) = cluster.node("node-a", limits).await;
    let (b, mut cb) = cluster.node("node-b", limits).await;
    join(&a, &mut ca, &key(1), "alice", json!({}), 1)
        .await
        .expect("joins");
    let refused = join(&b, &mut cb, &key(1), "mallory", json!({}), 2).await;
    assert_eq!(
        refused.map(|_| ()),
        Err(live_relay::presence::redis::StoreError::Refused(
            Refusal::NotYours
        ))
    );
    join(&b, &mut cb, &key(2), "bob", json!({}), 2)
        .await
        .expect("joins");
    let full = join(&b, &mut cb, &key(3), "carol", json!({}), 3).await;
    assert_eq!(
        full.map(|_| ()),
        Err(live_relay::presence::redis::StoreError::Refused(
            Refusal::Full
        ))
    );
    // A member whose grace period ended no longer counts, even before a sweep removed it.
    a.disconnected(&mut ca, 1).await.expect("grace");
    cluster.advance(5_000);
    join(&b, &mut cb, &key(3), "carol", json!({}), 3)
        .await
        .expect("room again");
    let too_big = json!({"x": "y".repeat(2_000)});
    let refused = b.update(&mut cb, CHANNEL, &key(3), 3, too_big).await;
    assert!(matches!(
        refused,
        Err(live_relay::presence::redis::StoreError::Refused(_))
    ));
}

#[tokio::test]
async fn an_explicit_leave_is_announced_at_once_and_only_by_its_owner() {
    let cluster = Cluster::start();
    let mut watcher = cluster.watcher(CHANNEL).await;
    let (a, mut ca) = cluster.node("node-a", LIMITS).await;
    let (b, mut cb) = cluster.node("node-b", LIMITS).await;
    join(&a, &mut ca, &key(1), "alice", json!({}), 1)
        .await
        .expect("joins");
    assert_eq!(b.leave(&mut cb, CHANNEL, &key(1), 1).await, Ok(None));
    assert_eq!(a.leave(&mut ca, CHANNEL, &key(1), 2).await, Ok(None));
    let left = a.leave(&mut ca, CHANNEL, &key(1), 1).await.expect("leaves");
    assert_eq!(
        left,
        Some((
            2,
            Diff::Leave {
                key: key(1),
                user: "alice".into()
            }
        ))
    );
    assert_eq!(
        actions(&watcher.drain().await),
        ["1 join member-key-000001", "2 leave member-key-000001"]
    );
    assert_eq!(
        cluster.redis.cli(&["ZCARD", "wlp:pd"]),
        "0",
        "nothing left to sweep"
    );
}

#[tokio::test]
async fn updates_are_the_owners_rate_limited_and_announced() {
    let cluster = Cluster::start();
    let (a, mut ca) = cluster.node("node-a", LIMITS).await;
    let (b, mut cb) = cluster.node("node-b", LIMITS).await;
    join(&a, &mut ca, &key(1), "alice", json!({}), 1)
        .await
        .expect("joins");
    let refused = b
        .update(&mut cb, CHANNEL, &key(1), 1, json!({"x": 1}))
        .await;
    assert_eq!(
        refused,
        Err(live_relay::presence::redis::StoreError::Refused(
            Refusal::NotJoined
        ))
    );
    for n in 0..5 {
        let updated = a
            .update(&mut ca, CHANNEL, &key(1), 1, json!({ "n": n }))
            .await
            .expect("within the rate");
        assert_eq!(updated.map(|(v, _)| v), Some(2 + n));
    }
    let refused = a
        .update(&mut ca, CHANNEL, &key(1), 1, json!({"n": 9}))
        .await;
    assert_eq!(
        refused,
        Err(live_relay::presence::redis::StoreError::Refused(
            Refusal::TooFast
        ))
    );
    cluster.advance(6_000);
    a.refresh(&mut ca).await.expect("kept alive");
    cluster.advance(4_001);
    let same = a
        .update(&mut ca, CHANNEL, &key(1), 1, json!({"n": 4}))
        .await;
    assert_eq!(same, Ok(None), "the same data: nothing to announce");
}

#[tokio::test]
async fn the_grace_period_ends_in_one_leave_unless_resumed() {
    let cluster = Cluster::start();
    let mut watcher = cluster.watcher(CHANNEL).await;
    let (a, mut ca) = cluster.node("node-a", LIMITS).await;
    let (b, mut cb) = cluster.node("node-b", LIMITS).await;
    join(&a, &mut ca, &key(1), "alice", json!({}), 1)
        .await
        .expect("joins");
    join(&a, &mut ca, &key(2), "alice", json!({}), 2)
        .await
        .expect("joins");
    assert_eq!(a.disconnected(&mut ca, 1).await, Ok(1));
    assert_eq!(a.memberships(1), vec![], "no longer refreshed here");
    cluster.advance(4_999);
    assert_eq!(
        b.sweep(&mut cb).await,
        Ok(vec![]),
        "still in its grace period"
    );
    let (_, members) = b.snapshot(&mut cb, CHANNEL).await.expect("a snapshot");
    assert_eq!(members.len(), 2, "listed during its grace period");
    a.refresh(&mut ca).await.expect("key 2 refreshed");
    cluster.advance(1);
    let swept = b.sweep(&mut cb).await.expect("a sweep");
    assert_eq!(swept.len(), 1);
    assert_eq!(
        swept[0].1 .1,
        Diff::Leave {
            key: key(1),
            user: "alice".into()
        }
    );
    assert_eq!(
        a.sweep(&mut ca).await,
        Ok(vec![]),
        "swept twice, announced once"
    );
    assert_eq!(
        actions(&watcher.drain().await),
        [
            "1 join member-key-000001",
            "2 join member-key-000002",
            "3 leave member-key-000001"
        ]
    );
    let (version, members) = b.snapshot(&mut cb, CHANNEL).await.expect("a snapshot");
    assert_eq!((version, members.len()), (3, 1));
}

#[tokio::test]
async fn resume_and_sweep_race_either_way_without_a_lost_or_double_leave() {
    let cluster = Cluster::start();
    let mut watcher = cluster.watcher(CHANNEL).await;
    let (a, mut ca) = cluster.node("node-a", LIMITS).await;
    let (b, mut cb) = cluster.node("node-b", LIMITS).await;
    // The resume runs one millisecond before the expiry, the sweep right after: the member stays.
    join(&a, &mut ca, &key(1), "alice", json!({}), 1)
        .await
        .expect("joins");
    a.disconnected(&mut ca, 1).await.expect("grace");
    cluster.advance(4_999);
    let (_, joined) = join(&b, &mut cb, &key(1), "alice", json!({}), 7)
        .await
        .expect("resumes");
    assert_eq!(joined, Joined::Resumed(None));
    cluster.advance(1);
    assert_eq!(a.sweep(&mut ca).await, Ok(vec![]));
    // At the expiry the member is gone: the sweep first announces its leave, the late join is a
    // new member, announced.
    b.disconnected(&mut cb, 7).await.expect("grace");
    cluster.advance(5_000);
    assert_eq!(a.sweep(&mut ca).await.map(|s| s.len()), Ok(1));
    let (_, joined) = join(&b, &mut cb, &key(1), "alice", json!({}), 8)
        .await
        .expect("joins");
    assert!(matches!(joined, Joined::New(_)));
    // The join at the expiry but before any sweep: it announces the leave itself, then the join;
    // the sweep after it finds nothing.
    b.disconnected(&mut cb, 8).await.expect("grace");
    cluster.advance(5_000);
    let (_, joined) = join(&a, &mut ca, &key(1), "alice", json!({}), 9)
        .await
        .expect("joins");
    assert!(matches!(joined, Joined::New(_)));
    assert_eq!(b.sweep(&mut cb).await, Ok(vec![]));
    assert_eq!(
        actions(&watcher.drain().await),
        [
            "1 join member-key-000001",
            "2 leave member-key-000001",
            "3 join member-key-000001",
            "4 leave member-key-000001",
            "5 join member-key-000001"
        ]
    );
}

#[tokio::test]
async fn two_nodes_sweeping_the_same_expiry_announce_each_leave_once() {
    let cluster = Cluster::start();
    let mut watchers = Vec::new();
    for c in 0..4 {
        watchers.push(cluster.watcher(&format!("room/{c}")).await);
    }
    let (a, mut ca) = cluster.node("node-a", LIMITS).await;
    let (b, mut cb) = cluster.node("node-b", LIMITS).await;
    let (c, mut cc) = cluster.node("node-c", LIMITS).await;
    // 4 channels × 60 members (over one sweep's 100 for none, but 240 in all), node C's.
    for n in 0..240 {
        let channel = format!("room/{}", n % 4);
        c.join(
            &mut cc,
            &channel,
            &key(n),
            "u",
            Value::Null,
            json!({}),
            n as u64,
        )
        .await
        .expect("joins");
    }
    // Node C dies: nobody refreshes its members, which expire together.
    cluster.advance(8_000);
    let mut swept_a = Vec::new();
    let mut swept_b = Vec::new();
    for _ in 0..3 {
        let (x, y) = tokio::join!(a.sweep(&mut ca), b.sweep(&mut cb));
        swept_a.extend(x.expect("A sweeps"));
        swept_b.extend(y.expect("B sweeps"));
    }
    println!(
        "two concurrent sweepers: node A announced {}, node B {}",
        swept_a.len(),
        swept_b.len()
    );
    let mut announced: BTreeMap<String, usize> = BTreeMap::new();
    for (channel, (_, diff)) in swept_a.iter().chain(&swept_b) {
        let Diff::Leave { key, .. } = diff else {
            panic!("{diff:?}")
        };
        *announced.entry(format!("{channel} {key}")).or_default() += 1;
    }
    assert_eq!(announced.len(), 240, "every member swept");
    assert!(announced.values().all(|&n| n == 1), "each announced once");
    let mut leaves = 0;
    for watcher in &mut watchers {
        let diffs = watcher.drain().await;
        let mut versions: Vec<u64> = diffs.iter().map(|(v, _)| *v).collect();
        versions.dedup();
        assert_eq!(versions.len(), diffs.len(), "one version per diff");
        leaves += diffs
            .iter()
            .filter(|(_, d)| matches!(d, Diff::Leave { .. }))
            .count();
    }
    assert_eq!(leaves, 240, "each leave published once");
    assert_eq!(cluster.redis.cli(&["ZCARD", "wlp:pd"]), "0");
}

#[tokio::test]
async fn a_node_back_from_a_redis_outage_joins_its_swept_members_again() {
    let cluster = Cluster::start();
    let mut watcher = cluster.watcher(CHANNEL).await;
    let (a, mut ca) = cluster.node("node-a", LIMITS).await;
    let (b, mut cb) = cluster.node("node-b", LIMITS).await;
    join(&a, &mut ca, &key(1), "alice", json!({"id": 3}), 1)
        .await
        .expect("joins");
    join(&a, &mut ca, &key(2), "bob", json!({}), 2)
        .await
        .expect("joins");
    // Refreshes keep them while node A reaches Redis.
    for _ in 0..5 {
        cluster.advance(2_000);
        assert_eq!(a.refresh(&mut ca).await.map(|r| r.kept), Ok(2));
        assert_eq!(b.sweep(&mut cb).await, Ok(vec![]));
    }
    // Node A cannot reach Redis for 9 s: node B sweeps both, announced. Bob's tab resumes on node
    // B meanwhile (and was announced gone, so as a new member).
    cluster.advance(9_000);
    assert_eq!(b.sweep(&mut cb).await.map(|s| s.len()), Ok(2));
    join(&b, &mut cb, &key(2), "bob", json!({}), 5)
        .await
        .expect("joins on B");
    // Back, node A's refresh joins Alice again, announced (watchers were told she left), and
    // finds Bob taken: forgotten here, nothing announced.
    let refreshed = a.refresh(&mut ca).await.expect("a refresh");
    assert_eq!(refreshed.kept, 0);
    assert_eq!(refreshed.rejoined.len(), 1);
    assert_eq!(refreshed.lost, vec![(CHANNEL.to_owned(), key(2), 2)]);
    assert_eq!(a.memberships(2), vec![]);
    assert_eq!(a.memberships(1), vec![(CHANNEL.to_owned(), key(1))]);
    assert_eq!(
        actions(&watcher.drain().await),
        [
            "1 join member-key-000001",
            "2 join member-key-000002",
            "3 leave member-key-000001",
            "4 leave member-key-000002",
            "5 join member-key-000002",
            "6 join member-key-000001"
        ]
    );
    let (_, members) = b.snapshot(&mut cb, CHANNEL).await.expect("a snapshot");
    assert_eq!(members.len(), 2);
    assert_eq!(members[0].data, json!({"id": 3}), "rejoined with its data");
    // An expired member not swept yet is also left and joined again, never silently revived.
    cluster.advance(9_000);
    let refreshed = a.refresh(&mut ca).await.expect("a refresh");
    assert_eq!(refreshed.rejoined.len(), 1);
    assert_eq!(
        actions(&watcher.drain().await),
        ["7 leave member-key-000001", "8 join member-key-000001"]
    );
}

#[tokio::test]
async fn on_redis_time_a_closed_socket_leaves_after_the_grace_period() {
    let cluster = Cluster::start();
    let mut watcher = cluster.watcher(CHANNEL).await;
    let limits = Limits {
        grace_ms: 300,
        ..LIMITS
    };
    let a = RedisPresence::new("wlp", "node-a", limits);
    let b = RedisPresence::new("wlp", "node-b", limits);
    let (mut ca, mut cb) = (cluster.conn().await, cluster.conn().await);
    join(&a, &mut ca, &key(1), "alice", json!({}), 1)
        .await
        .expect("joins");
    let (_, members) = b.snapshot(&mut cb, CHANNEL).await.expect("a snapshot");
    let age = members[0].since.abs_diff(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as u64,
    );
    assert!(age < 5_000, "since is Redis's time in ms ({age} ms off)");
    a.disconnected(&mut ca, 1).await.expect("grace");
    assert_eq!(b.sweep(&mut cb).await, Ok(vec![]));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(b.sweep(&mut cb).await.map(|s| s.len()), Ok(1));
    assert_eq!(
        actions(&watcher.drain().await),
        ["1 join member-key-000001", "2 leave member-key-000001"]
    );
}

#[tokio::test]
async fn a_member_whose_socket_ended_while_redis_was_unreachable_is_refreshed_no_more() {
    let cluster = Cluster::start();
    let mut watcher = cluster.watcher(CHANNEL).await;
    let (a, mut ca) = cluster.node("node-a", LIMITS).await;
    join(&a, &mut ca, &key(1), "alice", json!({}), 1)
        .await
        .expect("joins");
    // The grace period could not be started (Redis gone): the node stops refreshing it.
    assert!(a.abandon(CHANNEL, &key(1), 1));
    assert!(!a.abandon(CHANNEL, &key(1), 1));
    cluster.advance(6_000);
    assert_eq!(a.refresh(&mut ca).await.map(|r| r.kept), Ok(0));
    cluster.advance(2_000);
    assert_eq!(
        a.sweep(&mut ca).await.map(|s| s.len()),
        Ok(1),
        "gone at its expiry"
    );
    assert_eq!(
        actions(&watcher.drain().await),
        ["1 join member-key-000001", "2 leave member-key-000001"]
    );
}
