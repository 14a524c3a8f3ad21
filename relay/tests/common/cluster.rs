//! Relay nodes as one cluster over a real Redis, for the suites that need several `live-relay`
//! processes (cluster.rs, presence_cluster.rs): a node, and a Redis with `n` nodes on it under a key
//! prefix of their own.

use super::process::RelayProcess;
use super::redis::RedisServer;
use super::{Relay, PATIENCE};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::{sleep, Instant};

/// One `live-relay` process on the cluster's Redis.
pub struct Node {
    pub process: RelayProcess,
    pub relay: Relay,
}

impl Node {
    pub fn start(redis: &str, prefix: &str, extra: &[&str]) -> Node {
        let mut args = vec!["--redis", redis, "--redis-prefix", prefix];
        args.extend_from_slice(extra);
        let process = RelayProcess::start(&args);
        let relay = Relay::at(process.addr);
        Node { process, relay }
    }

    /// Kills the process (SIGKILL, by pid): its connections drop without a close frame.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Waits until `/healthz` answers with `status`.
    pub async fn wait_status(&self, status: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(response) = self.relay.http.get(self.relay.url("/healthz")).send().await {
                if let Ok(body) = response.json::<Value>().await {
                    if body["status"] == status {
                        return body;
                    }
                }
            }
            assert!(Instant::now() < deadline, "/healthz never said {status}");
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// A counter of its `/metrics` (0 when absent).
    pub async fn counter(&self, name: &str) -> u64 {
        let metrics = self.relay.metrics().await;
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    }
}

static CLUSTERS: AtomicU64 = AtomicU64::new(0);

/// A Redis and `n` nodes on it (each started with `extra`), all answering `/healthz` ok, under a
/// key prefix of their own (returned last).
pub async fn cluster(n: usize, extra: &[&str]) -> (RedisServer, Vec<Node>, String) {
    let redis = RedisServer::start();
    let prefix = format!(
        "cluster-{}-{}",
        std::process::id(),
        CLUSTERS.fetch_add(1, Ordering::Relaxed)
    );
    let nodes: Vec<Node> = (0..n)
        .map(|_| Node::start(&redis.url(), &prefix, extra))
        .collect();
    for node in &nodes {
        node.wait_status("ok").await;
    }
    (redis, nodes, prefix)
}
