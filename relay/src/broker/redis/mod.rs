//! The Redis broker (`--redis redis://…`): several relay nodes share one Redis, which numbers
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

use super::epoch::new_epoch;
use super::hub::{ChannelStats, Hub, Member, Settings};
use super::kick::KickReason;
use super::outbound::{Entry, Scopes};
use super::outcome::{Published, SubscribeError, Unavailable};
use super::request::{Delivery, Refusal, Request, Since, Subscribed};
use crate::publish::ValidEvent;
use message::{encode_scopes, split_frame, Live};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind};
use redis::{RedisError, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
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
/// Reconnect backoff.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The node's link to Redis.
#[derive(Debug)]
struct Link {
    hub: Arc<Hub>,
    client: redis::Client,
    /// The URL without its password, for messages.
    shown: String,
    /// The connection while up, the reason while down.
    conn: Mutex<Result<MultiplexedConnection, String>>,
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
    /// The connection, or why there is none.
    fn conn(&self) -> Result<MultiplexedConnection, Unavailable> {
        lock(&self.conn).clone().map_err(Unavailable)
    }

    fn is_up(&self) -> bool {
        lock(&self.conn).is_ok()
    }

    /// A failed command: when Redis is gone, the node goes down (the supervisor is woken).
    fn failed(&self, what: &str, e: RedisError) -> Unavailable {
        let reason = format!("Redis at {} failed to {what}: {e}", self.shown);
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_unrecoverable_error()
        {
            self.lost.notify_one();
        }
        Unavailable(reason)
    }

    /// Opens a connection and reads (or creates) the epoch.
    async fn open(
        &self,
    ) -> Result<(MultiplexedConnection, UnboundedReceiver<PushInfo>, String), String> {
        let (tx, rx) = unbounded_channel();
        let config = AsyncConnectionConfig::new()
            .set_push_sender(tx)
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| format!("cannot connect to Redis at {}: {e}", self.shown))?;
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
        *lock(&self.conn) = Ok(conn);
        info!(redis = %self.shown, "connected to Redis");
    }

    /// Redis is gone: every connection is closed, every channel forgotten, until it is back.
    fn down(&self, reason: String) {
        warn!(%reason, "Redis unavailable: closing every connection until it is back");
        *lock(&self.conn) = Err(format!("the relay cannot reach Redis: {reason}"));
        self.downs.fetch_add(1, Ordering::AcqRel);
        lock(&self.syncing).clear();
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

    /// A fan-out message.
    fn on_message(&self, data: Vec<Value>) {
        let mut data = data.into_iter();
        let (Some(Value::BulkString(name)), Some(Value::BulkString(payload))) =
            (data.next(), data.next())
        else {
            return;
        };
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
        }
    }

    /// Follows `channel`: `SUBSCRIBE`, then load its seq and kept events, then apply what
    /// arrived meanwhile.
    async fn follow(&self, channel: &str) -> Result<(), Unavailable> {
        let _one_at_a_time = self.follow.lock().await;
        if self.hub.is_tracked(channel) {
            return Ok(());
        }
        let mut conn = self.conn()?;
        let downs = self.downs.load(Ordering::Acquire);
        lock(&self.syncing).insert(channel.to_owned(), Vec::new());
        let loaded = self.load_channel(&mut conn, channel).await;
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
        channel: &str,
    ) -> Result<(String, u64, Vec<(Entry, u64)>), Unavailable> {
        conn.subscribe(self.names.fanout(channel))
            .await
            .map_err(|e| self.failed("subscribe", e))?;
        let reply: Vec<String> = self
            .load
            .key(self.names.epoch())
            .key(self.names.seq(channel))
            .key(self.names.history(channel))
            .arg(new_epoch())
            .invoke_async(conn)
            .await
            .map_err(|e| self.failed("load a channel", e))?;
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

    /// Unfollows the channels idle on this node.
    async fn unfollow_idle(&self) {
        let _one_at_a_time = self.follow.lock().await;
        let idle_ms = u64::try_from(IDLE_UNFOLLOW.as_millis()).unwrap_or(u64::MAX);
        let gone = self.hub.untrack_idle(idle_ms);
        if gone.is_empty() {
            return;
        }
        let Ok(mut conn) = self.conn() else { return };
        let names: Vec<String> = gone.iter().map(|c| self.names.fanout(c)).collect();
        if let Err(e) = conn.unsubscribe(&names).await {
            // Messages of these channels are ignored until the connection is replaced.
            self.failed("unsubscribe", e);
        }
    }

    /// Pings Redis with this node's subscriber counts.
    async fn heartbeat(&self, conn: &mut MultiplexedConnection) -> Result<(), RedisError> {
        let now = unix_ms();
        let key = self.names.node(&self.node);
        let nodes = self.names.nodes();
        let counts = self.hub.channel_stats();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .zadd(&nodes, &self.node, now)
            .ignore()
            .zrembyscore(&nodes, 0, now.saturating_sub(NODE_EXPIRY_MS))
            .ignore()
            .del(&key)
            .ignore();
        if !counts.is_empty() {
            let pairs: Vec<(&str, usize)> = counts
                .iter()
                .map(|(c, s)| (c.as_str(), s.subscribers))
                .collect();
            pipe.hset_multiple(&key, &pairs).ignore();
            pipe.pexpire(&key, i64::try_from(NODE_EXPIRY_MS).unwrap_or(i64::MAX))
                .ignore();
        }
        pipe.query_async::<()>(conn).await
    }

    /// Reads fan-out messages until the connection is lost; returns why.
    async fn pump(&self, pushes: &mut UnboundedReceiver<PushInfo>) -> String {
        let mut ticker = tokio::time::interval(HEARTBEAT);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                push = pushes.recv() => match push {
                    None => return "the connection closed".to_owned(),
                    Some(push) => match push.kind {
                        PushKind::Disconnection => return "the connection was lost".to_owned(),
                        PushKind::Message => self.on_message(push.data),
                        _ => {}
                    },
                },
                _ = self.lost.notified() => return "a command failed".to_owned(),
                _ = ticker.tick() => {
                    let Ok(mut conn) = self.conn() else {
                        return "the connection was dropped".to_owned();
                    };
                    if let Err(e) = self.heartbeat(&mut conn).await {
                        return format!("a ping failed: {e}");
                    }
                }
            }
        }
    }

    /// Keeps the node connected for as long as it runs.
    async fn supervise(self: Arc<Self>, mut pushes: UnboundedReceiver<PushInfo>) {
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
    /// Connects to Redis at `url`, under the key prefix `prefix` (refusing to start, with the
    /// reason, when it cannot).
    pub async fn connect(url: &str, prefix: &str, settings: Settings) -> Result<Self, String> {
        let shown = without_password(url);
        let info = url
            .into_connection_info()
            .map_err(|e| format!("--redis `{shown}` is not a Redis URL: {e}"))?;
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(resp3))
            .map_err(|e| format!("--redis `{shown}`: {e}"))?;
        let hub = Arc::new(Hub::new(settings, "", false));
        let link = Arc::new(Link {
            hub: Arc::clone(&hub),
            client,
            shown,
            conn: Mutex::new(Err("connecting to Redis".to_owned())),
            lost: Notify::new(),
            downs: AtomicU64::new(0),
            follow: tokio::sync::Mutex::new(()),
            syncing: Mutex::new(HashMap::new()),
            node: format!("{}-{}", new_epoch(), std::process::id()),
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

    /// Why the node cannot serve, while Redis is unreachable.
    pub fn health(&self) -> Result<(), Unavailable> {
        self.link.conn().map(|_| ())
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
                    self.hub.wait_for(request.channel, seen, CATCH_UP).await;
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

    /// Publishes through the script. The event reaches this node's subscribers through the
    /// fan-out, a moment later (see [`Broker::delivered`](super::Broker::delivered)).
    pub async fn publish(&self, event: &ValidEvent<'_>) -> Result<Published, Unavailable> {
        let mut conn = self.link.conn()?;
        let settings = *self.hub.settings();
        let frame = event.frame(0);
        let (head, tail) = split_frame(frame.as_str()).ok_or_else(|| {
            Unavailable("the relay could not prepare the event frame (a bug)".to_owned())
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
        let (epoch, new, seq): (String, u8, u64) = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.link.failed("publish", e))?;
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
        let mut conn = self.link.conn()?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        redis::cmd("SET")
            .arg(self.link.names.ticket(ticket))
            .arg(token)
            .arg("PX")
            .arg(ttl_ms)
            .arg("NX")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.link.failed("keep a ticket", e))
    }

    /// Uses up a ticket: the token it was issued for, if it was waiting.
    pub async fn take_ticket(&self, ticket: &str) -> Result<Option<String>, Unavailable> {
        let mut conn = self.link.conn()?;
        redis::cmd("GETDEL")
            .arg(self.link.names.ticket(ticket))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.link.failed("redeem a ticket", e))
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
        let mut conn = self.link.conn()?;
        let now = unix_ms();
        let nodes: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.link.names.nodes())
            .arg(now.saturating_sub(NODE_EXPIRY_MS))
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.link.failed("read the nodes", e))?;
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
                .map_err(|e| self.link.failed("read a node's counts", e))?;
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
            .map_err(|e| self.link.failed("read the seqs", e))?;
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
    fn passwords_are_not_shown() {
        assert_eq!(
            without_password("redis://app:s3cret@db:6379/0"),
            "redis://app:***@db:6379/0"
        );
        assert_eq!(without_password("redis://db:6379"), "redis://db:6379");
        assert_eq!(without_password("redis://user@db"), "redis://user@db");
    }
}
