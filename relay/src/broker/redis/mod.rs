//! The Redis broker (`--redis redis://…`, or `rediss://…` over TLS: see [`tls`]): several relay nodes share one Redis, which numbers
//! every channel's events, keeps their history and the publish keys, and fans each event out to
//! every node over pub/sub. Each node's [`Hub`] follows the channels its connections subscribe
//! to and delivers to them exactly as the in-process broker does.
//!
//! Publishing runs one Lua script ([`script::publish`]): epoch, next seq, history stream, publish
//! key and the fan-out `PUBLISH`, atomically, so every node sees a channel's events in seq order.
//!
//! Following a channel (the first subscriber on this node): `SUBSCRIBE` its fan-out channel, wait
//! for Redis to confirm, then load its last seq and kept events ([`script::load`]). Fan-out
//! messages that arrive meanwhile are held and applied after the load; the hub drops those the
//! load already had (by seq). From then on the hub's copy of the channel is exact, so a `since`
//! replays from it atomically with going live, as in one process. A channel nobody on this node
//! has subscribed to for [`IDLE_UNFOLLOW`] is unfollowed.
//!
//! One connection (RESP3: replies and pub/sub pushes on one socket) carries everything. When it
//! is lost — or a ping or command times out — the node is *down*: every connection is closed
//! with a reason (close code 1013, so clients reconnect — to another node, or here once Redis is
//! back), new ones are refused with `503`, publishes fail with `503 unavailable`, and the node
//! reconnects with backoff. Back up, it reads the epoch: the same one when Redis kept its data
//! (clients resume), a new one when it did not (clients get one `$resync` per subscription).

pub mod message;
pub mod script;
pub mod tls;

use super::epoch::new_epoch;
use super::hub::{Hub, Member, Settings};
use super::kick::KickReason;
use super::outbound::{Entry, Scopes};
use super::outcome::{PublishFailure, Published, SubscribeError, Unavailable};
use super::request::{Delivery, Refusal, Request, Since, Subscribed};
use super::stats::{ChannelStats, Stats};
use crate::publish::ValidEvent;
use message::{encode_scopes, split_frame, Live};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind};
use redis::{RedisError, Value};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{channel, Receiver};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// How long a connect or a command to Redis may take before the node counts Redis as gone.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the node pings Redis (and publishes its subscriber counts).
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node not heard from for this long no longer counts in `/stats/channels`.
const NODE_EXPIRY_MS: u64 = 5_000;
/// A channel without subscribers on this node is unfollowed after this long.
pub const IDLE_UNFOLLOW: Duration = Duration::from_secs(10);
/// How long a subscribe waits for this node to catch up with a `since` another node delivered,
/// and a publisher for its own event to come back through the fan-out.
pub const CATCH_UP: Duration = Duration::from_secs(1);
/// Pub/sub pushes a node holds before its pump reads them (see [`Link::open`]).
pub const PUSH_QUEUE: usize = 65_536;
/// Reconnect backoff.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Hands pub/sub pushes to the pump through a bounded queue: a pump that falls behind does not
/// grow the node until Redis cuts it off. A push that does not fit is dropped and counted, and
/// `overflow` is set: the pump then takes the node down, and its clients resume from the history.
fn bounded_push_sender(
    tx: tokio::sync::mpsc::Sender<PushInfo>,
    overflow: Arc<AtomicBool>,
    overflows: Arc<AtomicU64>,
) -> impl Fn(PushInfo) -> Result<(), ()> + Send + Sync + 'static {
    move |push| match tx.try_send(push) {
        Err(TrySendError::Full(_)) => {
            overflows.fetch_add(1, Ordering::Relaxed);
            overflow.store(true, Ordering::Release);
            Err(())
        }
        _ => Ok(()),
    }
}

/// Waits for the future in `slot` and empties it (pending while there is none).
async fn until_done<T>(slot: &mut Option<Pin<Box<dyn Future<Output = T> + Send + '_>>>) -> T {
    match slot {
        Some(future) => {
            let output = future.as_mut().await;
            *slot = None;
            output
        }
        None => std::future::pending().await,
    }
}

/// Whether a command's error means the link to Redis is gone (rather than a refused command).
fn is_link_failure(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

/// The node's link to Redis.
#[derive(Debug)]
struct Link {
    hub: Arc<Hub>,
    client: redis::Client,
    /// The URL without its password, for messages.
    shown: String,
    /// The `--redis-ca` file the server's certificate is checked against, for messages.
    ca: Option<PathBuf>,
    /// The connection (and its generation) while up, the reason while down.
    conn: Mutex<Result<(MultiplexedConnection, u64), String>>,
    /// Counts the connections opened: a failure of a connection already replaced is ignored.
    generation: AtomicU64,
    /// Pub/sub pushes dropped because the node's pump fell [`PUSH_QUEUE`] behind.
    push_overflows: Arc<AtomicU64>,
    /// Set when a push was dropped: the pump takes the node down.
    push_overflow: Arc<AtomicBool>,
    /// Channels untracked after a fan-out gap, still `SUBSCRIBE`d: unsubscribed at the next
    /// sweep unless followed again meanwhile.
    orphans: Mutex<Vec<String>>,
    /// Woken when a command finds Redis gone.
    lost: Notify,
    /// Counts the times the node went down: a load begun before the last one is stale.
    downs: AtomicU64,
    /// Serializes following and unfollowing channels (`SUBSCRIBE`/`UNSUBSCRIBE` + load).
    follow: tokio::sync::Mutex<()>,
    /// Channels being followed: the fan-out messages that arrived before their load.
    syncing: Mutex<HashMap<String, Vec<Live>>>,
    /// This node's name in `<prefix>:nodes`.
    node: String,
    /// Where presence's diffs (`<prefix>:pp:<channel>` messages) go (see [`PresenceLink`]).
    presence: std::sync::OnceLock<DiffSink>,
    names: script::Names,
    publish: redis::Script,
    load: redis::Script,
    epoch: redis::Script,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// `redis://user:secret@host/` → `redis://user:***@host/`.
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Link {
    /// The connection and its generation, or why there is none.
    fn conn(&self) -> Result<(MultiplexedConnection, u64), Unavailable> {
        lock(&self.conn).clone().map_err(Unavailable)
    }

    fn is_up(&self) -> bool {
        lock(&self.conn).is_ok()
    }

    /// A command failed on the connection of `generation`: when Redis is gone, the node goes
    /// down (the supervisor is woken), unless that connection was replaced already (a command
    /// still in flight on a dead connection times out after the node reconnected: one network
    /// fault is one outage).
    fn failed(&self, generation: u64, what: &str, e: RedisError) -> Unavailable {
        let reason = format!("Redis at {} failed to {what}: {e}", self.shown);
        let current = matches!(&*lock(&self.conn), Ok((_, g)) if *g == generation);
        if is_link_failure(&e) && current {
            self.lost.notify_one();
        }
        Unavailable(reason)
    }

    /// Opens a connection and reads (or creates) the epoch.
    async fn open(&self) -> Result<(MultiplexedConnection, Receiver<PushInfo>, String), String> {
        let (tx, rx) = channel(PUSH_QUEUE);
        let sender = bounded_push_sender(
            tx,
            Arc::clone(&self.push_overflow),
            Arc::clone(&self.push_overflows),
        );
        let config = AsyncConnectionConfig::new()
            .set_push_sender(sender)
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| match tls::untrusted(&e) {
                Some(why) => tls::untrusted_reason(&self.shown, &why, self.ca.as_deref()),
                None => format!("cannot connect to Redis at {}: {e}", self.shown),
            })?;
        let epoch: String = self
            .epoch
            .key(self.names.epoch())
            .arg(new_epoch())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| format!("cannot read the epoch from Redis at {}: {e}", self.shown))?;
        Ok((conn, rx, epoch))
    }

    /// Redis is back: takes its epoch (a new one closes every connection: the history is gone).
    fn up(&self, conn: MultiplexedConnection, epoch: &str) {
        self.adopt(epoch);
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        *lock(&self.conn) = Ok((conn, generation));
        info!(redis = %self.shown, "connected to Redis");
    }

    /// Redis is gone: every connection is closed, every channel forgotten, until it is back.
    fn down(&self, reason: String) {
        warn!(%reason, "Redis unavailable: closing every connection until it is back");
        *lock(&self.conn) = Err(format!("the relay cannot reach Redis: {reason}"));
        self.downs.fetch_add(1, Ordering::AcqRel);
        lock(&self.syncing).clear();
        lock(&self.orphans).clear();
        let epoch = self.hub.epoch();
        self.hub.reset(&epoch, KickReason::Unavailable);
    }

    /// Another epoch seen in Redis (it lost its data while this node stayed connected).
    /// (At start-up the hub has no epoch yet: it takes Redis's without a word.)
    fn adopt(&self, epoch: &str) {
        let known = self.hub.epoch();
        if *known != *epoch {
            if !known.is_empty() {
                info!(epoch, "the cluster's epoch changed: Redis lost its data");
            }
            lock(&self.syncing).clear();
            self.hub.reset(epoch, KickReason::EpochChanged);
        }
    }

    /// A fan-out message (or a presence diff: handed to presence).
    fn on_message(&self, data: Vec<Value>) {
        let mut data = data.into_iter();
        let (Some(Value::BulkString(name)), Some(Value::BulkString(payload))) =
            (data.next(), data.next())
        else {
            return;
        };
        if let Some(sink) = self.presence.get() {
            if let Some(channel) = std::str::from_utf8(&name)
                .ok()
                .and_then(|n| n.strip_prefix(self.names.prefix()))
                .and_then(|n| n.strip_prefix(":pp:"))
            {
                (sink.0)(channel, &payload);
                return;
            }
        }
        let Some(channel) = std::str::from_utf8(&name)
            .ok()
            .and_then(|n| self.names.channel_of_fanout(n))
        else {
            return;
        };
        let live = match message::parse(payload) {
            Ok(live) => live,
            Err(e) => {
                warn!(channel, "a fan-out message that is not ours: {e}");
                return;
            }
        };
        if *self.hub.epoch() != *live.epoch {
            self.adopt(&live.epoch);
            return;
        }
        let mut syncing = lock(&self.syncing);
        if let Some(held) = syncing.get_mut(channel) {
            held.push(live);
            return;
        }
        self.deliver(channel, live);
    }

    /// Hands one event to the hub; a gap (messages lost) ends the channel's subscriptions here,
    /// and their clients resume from the shared history.
    fn deliver(&self, channel: &str, live: Live) {
        let entry = Entry {
            seq: live.seq,
            frame: live.frame.into(),
            scopes: live.scopes,
        };
        if let Delivery::Gap { last_seq } = self.hub.deliver(channel, entry) {
            warn!(
                channel,
                last_seq,
                seq = live.seq,
                "fan-out messages were lost: the channel's clients resume from the history"
            );
            self.hub.untrack(channel, KickReason::Unavailable);
            lock(&self.orphans).push(channel.to_owned());
        }
    }

    /// Follows `channel`: `SUBSCRIBE`, then load its seq and kept events, then apply what
    /// arrived meanwhile.
    async fn follow(&self, channel: &str) -> Result<(), Unavailable> {
        let _one_at_a_time = self.follow.lock().await;
        if self.hub.is_tracked(channel) {
            return Ok(());
        }
        let (mut conn, generation) = self.conn()?;
        let downs = self.downs.load(Ordering::Acquire);
        lock(&self.syncing).insert(channel.to_owned(), Vec::new());
        let loaded = self.load_channel(&mut conn, generation, channel).await;
        let mut syncing = lock(&self.syncing);
        let held = syncing.remove(channel);
        let (epoch, last_seq, kept) = loaded?;
        if self.downs.load(Ordering::Acquire) != downs {
            // Redis was lost meanwhile: what was loaded may miss events.
            return Err(self.conn().err().unwrap_or_else(|| {
                Unavailable("the relay lost Redis while following a channel: retry".to_owned())
            }));
        }
        if *self.hub.epoch() != *epoch {
            drop(syncing);
            self.adopt(&epoch);
            return Err(Unavailable(
                "the cluster's history was reset (Redis lost its data): reconnect".to_owned(),
            ));
        }
        self.hub.track(channel, last_seq, kept);
        let mut held = held.unwrap_or_default();
        held.sort_by_key(|live| live.seq);
        for live in held {
            if *live.epoch == *epoch {
                self.deliver(channel, live);
            }
        }
        Ok(())
    }

    async fn load_channel(
        &self,
        conn: &mut MultiplexedConnection,
        generation: u64,
        channel: &str,
    ) -> Result<(String, u64, Vec<(Entry, u64)>), Unavailable> {
        conn.subscribe(self.names.fanout(channel))
            .await
            .map_err(|e| self.failed(generation, "subscribe", e))?;
        let reply: Vec<String> = self
            .load
            .key(self.names.epoch())
            .key(self.names.seq(channel))
            .key(self.names.history(channel))
            .arg(new_epoch())
            .invoke_async(conn)
            .await
            .map_err(|e| self.failed(generation, "load a channel", e))?;
        let bad = || Unavailable(format!("Redis answered the load of `{channel}` oddly"));
        let mut fields = reply.into_iter();
        let epoch = fields.next().ok_or_else(bad)?;
        let last_seq: u64 = fields.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let now: u64 = fields.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let mut kept = Vec::new();
        while let (Some(seq), Some(frame), Some(scopes), Some(at)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        {
            let (Ok(seq), Ok(at)) = (seq.parse::<u64>(), at.parse::<u64>()) else {
                return Err(bad());
            };
            let scopes = message::decode_scopes(&scopes).map_err(|_| bad())?;
            let entry = Entry {
                seq,
                frame: frame.into(),
                scopes,
            };
            kept.push((entry, now.saturating_sub(at)));
        }
        Ok((epoch, last_seq, kept))
    }

    /// Unfollows the channels idle on this node, and those untracked after a fan-out gap that
    /// nobody followed again.
    async fn unfollow_idle(&self) {
        let _one_at_a_time = self.follow.lock().await;
        let idle_ms = u64::try_from(IDLE_UNFOLLOW.as_millis()).unwrap_or(u64::MAX);
        let mut gone = self.hub.untrack_idle(idle_ms);
        let orphans = std::mem::take(&mut *lock(&self.orphans));
        gone.extend(orphans.into_iter().filter(|c| !self.hub.is_tracked(c)));
        if gone.is_empty() {
            return;
        }
        let Ok((mut conn, generation)) = self.conn() else {
            return;
        };
        let names: Vec<String> = gone.iter().map(|c| self.names.fanout(c)).collect();
        if let Err(e) = conn.unsubscribe(&names).await {
            // Messages of these channels are ignored until the connection is replaced.
            self.failed(generation, "unsubscribe", e);
        }
    }

    /// Pings Redis with this node's subscriber counts: only what changed since `sent` (what the
    /// node's hash holds), with the expiry renewed. Returns what the hash holds after it.
    async fn heartbeat(
        &self,
        mut conn: MultiplexedConnection,
        sent: &HashMap<String, usize>,
    ) -> Result<HashMap<String, usize>, RedisError> {
        let now = unix_ms();
        let key = self.names.node(&self.node);
        let nodes = self.names.nodes();
        let counts: HashMap<String, usize> = self
            .hub
            .channel_stats()
            .into_iter()
            .map(|(c, s)| (c, s.subscribers))
            .collect();
        let changed: Vec<(&str, usize)> = counts
            .iter()
            .filter(|(c, n)| sent.get(*c) != Some(n))
            .map(|(c, n)| (c.as_str(), *n))
            .collect();
        let removed: Vec<&str> = sent
            .keys()
            .filter(|c| !counts.contains_key(*c))
            .map(String::as_str)
            .collect();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .zadd(&nodes, &self.node, now)
            .ignore()
            .zrembyscore(&nodes, 0, now.saturating_sub(NODE_EXPIRY_MS))
            .ignore();
        if !removed.is_empty() {
            pipe.hdel(&key, &removed).ignore();
        }
        if !changed.is_empty() {
            pipe.hset_multiple(&key, &changed).ignore();
        }
        pipe.pexpire(&key, i64::try_from(NODE_EXPIRY_MS).unwrap_or(i64::MAX))
            .ignore();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(counts)
    }

    /// Reads fan-out messages until the connection is lost; returns why. The heartbeat runs
    /// beside the pushes, never in front of them: on a slow link a push is handed on as it
    /// arrives, not after the heartbeat's reply.
    async fn pump(&self, pushes: &mut Receiver<PushInfo>) -> String {
        let mut ticker = tokio::time::interval(HEARTBEAT);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The node's hash in Redis is rewritten whole on a new connection (it may have expired).
        let mut sent: HashMap<String, usize> = HashMap::new();
        let mut beat = None;
        loop {
            if self.push_overflow.swap(false, Ordering::AcqRel) {
                return format!(
                    "the relay fell {PUSH_QUEUE} pub/sub messages behind: resuming its clients \
                     from the history"
                );
            }
            tokio::select! {
                biased;
                push = pushes.recv() => match push {
                    None => return "the connection closed".to_owned(),
                    Some(push) => match push.kind {
                        PushKind::Disconnection => return "the connection was lost".to_owned(),
                        PushKind::Message => self.on_message(push.data),
                        _ => {}
                    },
                },
                _ = self.lost.notified() => return "a command failed".to_owned(),
                beaten = until_done(&mut beat) => match beaten {
                    Ok(now_sent) => sent = now_sent,
                    Err(e) => return format!("a ping failed: {e}"),
                },
                _ = ticker.tick(), if beat.is_none() => {
                    let Ok((conn, _)) = self.conn() else {
                        return "the connection was dropped".to_owned();
                    };
                    let previous = std::mem::take(&mut sent);
                    beat = Some(Box::pin(async move {
                        self.heartbeat(conn, &previous).await
                    }));
                }
            }
        }
    }

    /// Keeps the node connected for as long as it runs.
    async fn supervise(self: Arc<Self>, mut pushes: Receiver<PushInfo>) {
        loop {
            let reason = self.pump(&mut pushes).await;
            self.down(reason);
            let mut delay = BACKOFF_MIN;
            loop {
                tokio::time::sleep(delay).await;
                match self.open().await {
                    Ok((conn, rx, epoch)) => {
                        // Commands that failed before the new connection must not take it down.
                        let _ = tokio::time::timeout(Duration::ZERO, self.lost.notified()).await;
                        self.up(conn, &epoch);
                        pushes = rx;
                        break;
                    }
                    Err(reason) => {
                        *lock(&self.conn) = Err(format!("the relay cannot reach Redis: {reason}"));
                        delay = (delay * 2).min(BACKOFF_MAX);
                    }
                }
            }
        }
    }
}

/// Receives presence's diffs: `(channel, message)`.
pub struct DiffSink(Box<DiffFn>);

/// `(channel, message)` → handled.
type DiffFn = dyn Fn(&str, &[u8]) + Send + Sync;

impl std::fmt::Debug for DiffSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DiffSink")
    }
}

/// Presence on a cluster (relay/src/presence/redis.rs) runs its scripts on this node's connection
/// to Redis and receives its diffs (`<prefix>:pp:<channel>`) through it: one socket, reconnected
/// by the broker. A subscription does not outlive the connection it was made on (see
/// [`PresenceLink::conn`]); the broker closes every WebSocket when it loses Redis, so the
/// watchers go with it.
#[derive(Debug, Clone)]
pub struct PresenceLink(Arc<Link>);

impl PresenceLink {
    /// The connection while Redis is up, and its generation (a new one after each reconnect).
    pub fn conn(&self) -> Result<(MultiplexedConnection, u64), Unavailable> {
        self.0.conn()
    }

    /// This node's name in the cluster.
    pub fn node(&self) -> &str {
        &self.0.node
    }

    /// The cluster's key prefix.
    pub fn prefix(&self) -> &str {
        self.0.names.prefix()
    }

    /// Where the diffs go (set once; later calls are ignored).
    pub fn on_diff(&self, sink: impl Fn(&str, &[u8]) + Send + Sync + 'static) {
        let _ = self.0.presence.set(DiffSink(Box::new(sink)));
    }

    /// A command on the connection of `generation` failed: when Redis is gone, the node goes
    /// down (as for its own commands).
    pub fn failed(&self, generation: u64, what: &str, e: RedisError) -> Unavailable {
        self.0.failed(generation, what, e)
    }
}

/// The Redis broker (see the module doc).
#[derive(Debug)]
pub struct RedisBroker {
    hub: Arc<Hub>,
    link: Arc<Link>,
    supervisor: JoinHandle<()>,
}

impl Drop for RedisBroker {
    fn drop(&mut self) {
        self.supervisor.abort();
    }
}

impl RedisBroker {
    /// Connects to Redis at `url`, under the key prefix `prefix`, checking a `rediss://` server's
    /// certificate against the CAs of the PEM file `ca` when given (refusing to start, with the
    /// reason, when it cannot).
    pub async fn connect(
        url: &str,
        prefix: &str,
        ca: Option<&Path>,
        settings: Settings,
    ) -> Result<Self, String> {
        let shown = without_password(url);
        let info = url
            .into_connection_info()
            .map_err(|e| format!("--redis `{shown}` is not a Redis URL: {e}"))?;
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = tls::client(info.set_redis_settings(resp3), &shown, ca)?;
        let hub = Arc::new(Hub::new(settings, "", false));
        let link = Arc::new(Link {
            hub: Arc::clone(&hub),
            client,
            shown,
            ca: ca.map(Path::to_path_buf),
            conn: Mutex::new(Err("connecting to Redis".to_owned())),
            generation: AtomicU64::new(0),
            push_overflows: Arc::new(AtomicU64::new(0)),
            push_overflow: Arc::new(AtomicBool::new(false)),
            orphans: Mutex::new(Vec::new()),
            lost: Notify::new(),
            downs: AtomicU64::new(0),
            follow: tokio::sync::Mutex::new(()),
            syncing: Mutex::new(HashMap::new()),
            node: format!("{}-{}", new_epoch(), std::process::id()),
            presence: std::sync::OnceLock::new(),
            names: script::Names::new(prefix),
            publish: script::publish(),
            load: script::load(),
            epoch: script::epoch(),
        });
        let (conn, pushes, epoch) = link.open().await?;
        link.up(conn, &epoch);
        let supervisor = tokio::spawn(Arc::clone(&link).supervise(pushes));
        Ok(RedisBroker {
            hub,
            link,
            supervisor,
        })
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// What presence's Redis store uses of this node's link.
    pub fn presence_link(&self) -> PresenceLink {
        PresenceLink(Arc::clone(&self.link))
    }

    /// The hub's counts, with the link's outages and dropped pushes.
    pub fn stats(&self) -> Stats {
        Stats {
            redis_outages: self.link.downs.load(Ordering::Acquire),
            redis_push_overflows: self.link.push_overflows.load(Ordering::Relaxed),
            ..self.hub.stats()
        }
    }

    /// Why the node cannot serve, while Redis is unreachable.
    pub fn health(&self) -> Result<(), Unavailable> {
        self.link.conn().map(drop)
    }

    /// Registers a connection, unless Redis is unreachable.
    pub fn connect_member(&self, queue: usize, scopes: Scopes) -> Result<Member, Unavailable> {
        // Registered first: if the link goes down after the check, the reset kicks it.
        let member = self.hub.connect(queue, scopes);
        self.health()?;
        Ok(member)
    }

    pub async fn subscribe<'c>(
        &self,
        id: u64,
        requests: &[Request<'c>],
        max_channels: usize,
    ) -> Result<Vec<Subscribed<'c>>, SubscribeError> {
        for _ in 0..3 {
            // A `since` another node delivered and this one has not received yet: wait for it
            // (at once when this node is there already or does not follow the channel).
            for request in requests {
                if let Since::Seq(seen) = request.since {
                    if !self.hub.wait_for(request.channel, seen, CATCH_UP).await {
                        self.check_not_behind(request.channel, seen)
                            .await
                            .map_err(SubscribeError::Unavailable)?;
                    }
                }
            }
            match self.hub.subscribe(id, requests, max_channels) {
                Ok(answer) => return Ok(answer),
                Err(Refusal::TooManyChannels(e)) => return Err(SubscribeError::TooManyChannels(e)),
                Err(Refusal::Untracked(_)) => {}
            }
            for request in requests {
                if !self.hub.is_tracked(request.channel) {
                    self.link
                        .follow(request.channel)
                        .await
                        .map_err(SubscribeError::Unavailable)?;
                }
            }
        }
        Err(SubscribeError::Unavailable(Unavailable(
            "the channels kept being unfollowed while subscribing: retry".to_owned(),
        )))
    }

    /// A client resumes `channel` from `seen`, which this node has not reached after waiting
    /// [`CATCH_UP`]: either the position is one the channel never had (answered as a gap), or
    /// this node is behind the cluster (its link to Redis is failing and it has not noticed yet).
    /// Then it must not answer `recovered: false` with its own older seq (the client would resync
    /// and get events twice when it moves on): it is refused as unavailable, and the client goes
    /// to another node. Redis is asked which it is; no answer within [`CATCH_UP`] counts as behind.
    async fn check_not_behind(&self, channel: &str, seen: u64) -> Result<(), Unavailable> {
        let behind = || {
            Unavailable(format!(
                "this relay is behind the cluster on `{channel}` (its link to Redis is failing): \
                 reconnect to another relay"
            ))
        };
        let (mut conn, generation) = self.link.conn()?;
        let mut command = redis::cmd("GET");
        command.arg(self.link.names.seq(channel));
        let read = command.query_async::<Option<u64>>(&mut conn);
        match tokio::time::timeout(CATCH_UP, read).await {
            Ok(Ok(last)) if last.unwrap_or(0) < seen => Ok(()),
            Ok(Ok(_)) | Err(_) => Err(behind()),
            Ok(Err(e)) => Err(self.link.failed(generation, "read a channel's seq", e)),
        }
    }

    /// Publishes through the script. The event reaches this node's subscribers through the
    /// fan-out, a moment later (see [`Broker::delivered`](super::Broker::delivered)).
    /// Fails with [`PublishFailure::Unavailable`] when nothing was sent (the node knows Redis is
    /// gone), and with [`PublishFailure::OutcomeUnknown`] when the script was sent and its answer
    /// did not come: Redis may run it when the link delivers it.
    pub async fn publish(&self, event: &ValidEvent<'_>) -> Result<Published, PublishFailure> {
        let (mut conn, generation) = self.link.conn().map_err(PublishFailure::Unavailable)?;
        let settings = *self.hub.settings();
        let frame = event.frame(0);
        let (head, tail) = split_frame(frame.as_str()).ok_or_else(|| {
            PublishFailure::Unavailable(Unavailable(
                "the relay could not prepare the event frame (a bug)".to_owned(),
            ))
        })?;
        let scopes = encode_scopes(event.scopes.as_deref());
        let channel: &str = &event.channel;
        let key = event.key.as_deref();
        let names = &self.link.names;
        let mut call = self.link.publish.prepare_invoke();
        call.key(names.epoch())
            .key(names.seq(channel))
            .key(names.history(channel))
            .key(names.publish_key(key.unwrap_or("")))
            .arg(new_epoch())
            .arg(head)
            .arg(tail)
            .arg(scopes)
            .arg(settings.history.max_events)
            .arg(settings.history.max_age_ms.max(1))
            .arg(settings.publish_key_ttl_ms.max(1))
            .arg(names.fanout(channel))
            .arg(if key.is_some() { "1" } else { "0" });
        let (epoch, new, seq): (String, u8, u64) =
            call.invoke_async(&mut conn).await.map_err(|e| {
                let unknown = is_link_failure(&e);
                let failure = self.link.failed(generation, "publish", e);
                if unknown {
                    PublishFailure::OutcomeUnknown(failure)
                } else {
                    PublishFailure::Unavailable(failure)
                }
            })?;
        if *self.hub.epoch() != *epoch {
            self.link.adopt(&epoch);
        }
        if new == 0 {
            return Ok(Published::Repeat {
                channel: Box::from(channel),
                seq,
            });
        }
        Ok(Published::New(seq))
    }

    /// Keeps an SSE ticket (for the token it was issued for) where every node can redeem it.
    pub async fn put_ticket(
        &self,
        ticket: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<(), Unavailable> {
        let (mut conn, generation) = self.link.conn()?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        redis::cmd("SET")
            .arg(self.link.names.ticket(ticket))
            .arg(token)
            .arg("PX")
            .arg(ttl_ms)
            .arg("NX")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.link.failed(generation, "keep a ticket", e))
    }

    /// Uses up a ticket: the token it was issued for, if it was waiting.
    pub async fn take_ticket(&self, ticket: &str) -> Result<Option<String>, Unavailable> {
        let (mut conn, generation) = self.link.conn()?;
        redis::cmd("GETDEL")
            .arg(self.link.names.ticket(ticket))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.link.failed(generation, "redeem a ticket", e))
    }

    /// Forgets old events and unfollows idle channels.
    pub async fn sweep(&self) {
        self.hub.sweep();
        if self.link.is_up() {
            self.link.unfollow_idle().await;
        }
    }

    /// The channels with subscribers on any node, with their last seq.
    pub async fn channel_stats(&self) -> Result<BTreeMap<String, ChannelStats>, Unavailable> {
        let (mut conn, generation) = self.link.conn()?;
        let now = unix_ms();
        let nodes: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.link.names.nodes())
            .arg(now.saturating_sub(NODE_EXPIRY_MS))
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.link.failed(generation, "read the nodes", e))?;
        let mut subscribers: BTreeMap<String, usize> = self
            .hub
            .channel_stats()
            .into_iter()
            .map(|(c, s)| (c, s.subscribers))
            .collect();
        for node in nodes.iter().filter(|n| **n != self.link.node) {
            let counts: HashMap<String, usize> = redis::cmd("HGETALL")
                .arg(self.link.names.node(node))
                .query_async(&mut conn)
                .await
                .map_err(|e| self.link.failed(generation, "read a node's counts", e))?;
            for (channel, n) in counts {
                *subscribers.entry(channel).or_default() += n;
            }
        }
        subscribers.retain(|_, n| *n > 0);
        if subscribers.is_empty() {
            return Ok(BTreeMap::new());
        }
        let keys: Vec<String> = subscribers.keys().map(|c| self.link.names.seq(c)).collect();
        let seqs: Vec<Option<u64>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.link.failed(generation, "read the seqs", e))?;
        Ok(subscribers
            .into_iter()
            .zip(seqs)
            .map(|((channel, subscribers), seq)| {
                let stats = ChannelStats {
                    subscribers,
                    last_seq: seq.unwrap_or(0),
                };
                (channel, stats)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_that_does_not_fit_is_counted_and_takes_the_node_down() {
        let (tx, mut rx) = channel(2);
        let overflow = Arc::new(AtomicBool::new(false));
        let overflows = Arc::new(AtomicU64::new(0));
        let send = bounded_push_sender(tx, Arc::clone(&overflow), Arc::clone(&overflows));
        let push = || PushInfo {
            kind: PushKind::Message,
            data: Vec::new(),
        };
        assert_eq!((send(push()), send(push())), (Ok(()), Ok(())));
        assert!(!overflow.load(Ordering::Acquire));
        assert_eq!(send(push()), Err(()), "the queue is full");
        assert!(overflow.load(Ordering::Acquire));
        assert_eq!(overflows.load(Ordering::Relaxed), 1);
        assert!(rx.try_recv().is_ok(), "what fitted is kept");
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            without_password("redis://app:s3cret@db:6379/0"),
            "redis://app:***@db:6379/0"
        );
        assert_eq!(without_password("redis://db:6379"), "redis://db:6379");
        assert_eq!(without_password("redis://user@db"), "redis://user@db");
    }
}
