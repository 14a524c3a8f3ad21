//! Presence on the Redis broker: the cluster's sets live in Redis, changed only by the Lua scripts
//! beside this file (`redis/*.lua`), each atomic, so every node sees one truth and every diff is
//! announced once. The decisions are [`PresenceSet`](super::set::PresenceSet)'s (join or resume,
//! another user's key, the cap, the grace period, the sweep); this module mirrors its methods.
//!
//! Keys (every name starts with the cluster's prefix, `--redis-prefix`, here `wlp`):
//! - `wlp:pm:<channel>` — hash: member key → the member as JSON,
//!   `{"node","gen","dh","since","key","user","info","data"}` (`node`: the node that refreshes it,
//!   `""` once its socket ended; `gen`: bumped by each resume; `dh`: a digest of `data`, so that a
//!   resume with the same data announces nothing).
//! - `wlp:pe:<channel>` — sorted set: member key → when it expires (ms, Redis's clock). An open
//!   socket's member is refreshed by its node to now + [`TTL_MS`] every [`REFRESH_EVERY`]; a
//!   closed one's is lowered to now + the grace period.
//! - `wlp:pv:<channel>` — the channel's version (`INCR`, one per diff), kept a day once the set is
//!   empty.
//! - `wlp:pd` — sorted set: channel → its earliest expiry: the sweep index.
//! - `wlp:pp:<channel>` — pub/sub: the channel's diffs, `{"version":n,"action":"join"|"update",
//!   "member":M}` or `{"version":n,"action":"leave","key":…,"user":…}`. Apart from the events'
//!   `wlp:p:<channel>`, so presence takes no seq.
//!
//! Time is Redis's (`TIME` in the scripts): the nodes' clocks do not matter. Tests may run the
//! scripts on a simulated clock ([`RedisPresence::with_test_clock`]).
//!
//! Races, and how they end:
//! - Resume vs. sweep: whichever script runs first wins. A resume before the expiry takes the
//!   member over silently; at or after it, the member is gone (the join script itself announces
//!   the leave if no sweep did yet) and the join is a new member, announced.
//! - Two nodes sweeping the same expiry: the second finds nothing (the first removed it), so each
//!   leave is announced once.
//! - A node that could not refresh for longer than [`TTL_MS`] (its link to Redis was down): its
//!   members expired and their leaves were announced. When it refreshes again, a member that is
//!   gone (or expired) is joined again and announced as a join — never brought back silently, as
//!   watchers were told it left; one resumed elsewhere meanwhile is dropped by this node (lost).

use super::set::{check_data, take_update, ConnId, Diff, Joined, Limits, Member, Millis, Refusal};
use redis::aio::ConnectionLike;
use redis::Script;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub mod store;

/// How long a member of an open socket lives in Redis without a refresh: a dead node's members
/// leave within it (≥ 3 × [`REFRESH_EVERY`], as centrifuge does).
pub const TTL_MS: Millis = 8_000;
/// How often each node refreshes the members of its open sockets.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);
/// How often each node sweeps the expired members of the whole cluster: at every tick of the
/// service, as on one node, so that a closed tab leaves within the grace period + 250 ms. When
/// nothing is due, a sweep is one `ZRANGEBYSCORE` on the index (`wlp:pd`).
pub const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// Channels one sweep visits, and members it removes per channel (the rest wait for the next).
pub const SWEEP_CHANNELS: usize = 100;
pub const SWEEP_MEMBERS: usize = 100;

/// The names of the presence keys and pub/sub channels of one cluster (see the module doc).
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    pub fn members(&self, channel: &str) -> String {
        format!("{}:pm:{channel}", self.prefix)
    }

    pub fn expiries(&self, channel: &str) -> String {
        format!("{}:pe:{channel}", self.prefix)
    }

    pub fn version(&self, channel: &str) -> String {
        format!("{}:pv:{channel}", self.prefix)
    }

    /// The sweep index.
    pub fn due(&self) -> String {
        format!("{}:pd", self.prefix)
    }

    /// The pub/sub channel of a channel's presence diffs.
    pub fn diffs(&self, channel: &str) -> String {
        format!("{}:pp:{channel}", self.prefix)
    }

    /// The channel a diffs pub/sub channel is for.
    pub fn channel_of_diffs<'a>(&self, name: &'a str) -> Option<&'a str> {
        name.strip_prefix(&self.prefix)?.strip_prefix(":pp:")
    }
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// Refused, as [`PresenceSet`](super::set::PresenceSet) would.
    Refused(Refusal),
    /// Redis failed, or answered what the scripts never return.
    Redis(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Refused(refusal) => refusal.fmt(f),
            StoreError::Redis(why) => write!(f, "presence on Redis: {why}"),
        }
    }
}

impl From<Refusal> for StoreError {
    fn from(refusal: Refusal) -> Self {
        StoreError::Refused(refusal)
    }
}

fn redis_error(what: &str) -> impl Fn(redis::RedisError) -> StoreError + '_ {
    move |e| StoreError::Redis(format!("{what}: {e}"))
}

fn odd(what: &str) -> StoreError {
    StoreError::Redis(format!("Redis answered {what} oddly"))
}

/// A diff with the version it took.
pub type Versioned = (u64, Diff);

/// What a refresh found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Refreshed {
    /// Members refreshed.
    pub kept: usize,
    /// Members that were gone (their leave announced while this node could not refresh them) and
    /// were joined again, announced: `(channel, version, join)`.
    pub rejoined: Vec<(String, Versioned)>,
    /// Members this node no longer owns (resumed elsewhere, or the set filled up before they
    /// could join again): `(channel, key, connection)`; forgotten here.
    pub lost: Vec<(String, String, ConnId)>,
}

/// A membership this node owns (a connection of its own whose socket is open).
#[derive(Debug, Clone)]
struct Owned {
    conn: ConnId,
    gen: u64,
    user: String,
    info: Value,
    data: Value,
    /// When its recent `data` changes were made (rate limit, on the node).
    updates: Vec<Millis>,
}

#[derive(Debug)]
struct Scripts {
    join: Script,
    update: Script,
    leave: Script,
    grace: Script,
    refresh: Script,
    sweep: Script,
    due: Script,
    snapshot: Script,
}

const PRELUDE: &str = include_str!("redis/prelude.lua");

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            join: script(include_str!("redis/join.lua")),
            update: script(include_str!("redis/update.lua")),
            leave: script(include_str!("redis/leave.lua")),
            grace: script(include_str!("redis/grace.lua")),
            refresh: script(include_str!("redis/refresh.lua")),
            sweep: script(include_str!("redis/sweep.lua")),
            due: script(include_str!("redis/due.lua")),
            snapshot: script(include_str!("redis/snapshot.lua")),
        }
    }
}

/// A member as the scripts store it (their own fields ignored but `gen`).
#[derive(Debug, Deserialize)]
struct Stored {
    key: String,
    user: String,
    #[serde(default)]
    info: Value,
    #[serde(default)]
    data: Value,
    since: Millis,
    #[serde(default)]
    gen: u64,
}

impl Stored {
    fn into_member(self, conn: ConnId) -> Member {
        Member::new(
            self.key, self.user, self.info, self.data, self.since, conn, self.gen,
        )
    }
}

/// A diff as `<prefix>:pp:<channel>` carries it.
#[derive(Debug, Deserialize)]
struct Message {
    version: u64,
    action: String,
    #[serde(default)]
    member: Option<Stored>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

/// Reads a message of `<prefix>:pp:<channel>`.
pub fn parse_diff(payload: &[u8]) -> Result<Versioned, String> {
    let message: Message =
        serde_json::from_slice(payload).map_err(|e| format!("not a presence diff: {e}"))?;
    let diff = match (message.action.as_str(), message.member, message.key) {
        ("join", Some(member), _) => Diff::Join(member.into_member(0)),
        ("update", Some(member), _) => Diff::Update(member.into_member(0)),
        ("leave", _, Some(key)) => Diff::Leave {
            key,
            user: message.user.unwrap_or_default(),
        },
        (action, _, _) => return Err(format!("a presence diff `{action}` without its fields")),
    };
    Ok((message.version, diff))
}

/// `"key":K,"user":U,"info":I,"data":D`, the part of a member the node writes.
fn body(key: &str, user: &str, info: &Value, data: &Value) -> Result<String, StoreError> {
    let text = |json: Result<String, serde_json::Error>| {
        json.map_err(|e| StoreError::Redis(format!("a member that is not JSON: {e}")))
    };
    Ok(format!(
        "\"key\":{},\"user\":{},\"info\":{},\"data\":{}",
        text(serde_json::to_string(key))?,
        text(serde_json::to_string(user))?,
        text(serde_json::to_string(info))?,
        text(serde_json::to_string(data))?
    ))
}

/// A digest of `data`'s text (hex): equal data, equal digest.
fn digest(data: &Value) -> String {
    let text = serde_json::to_string(data).unwrap_or_default();
    let hash = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    hash.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn number(text: Option<&String>, what: &str) -> Result<u64, StoreError> {
    text.and_then(|t| t.parse().ok()).ok_or_else(|| odd(what))
}

/// One node's presence on the cluster's Redis: the scripts, and the memberships of this node's
/// connections (what it refreshes). Every call takes the Redis connection to use.
#[derive(Debug)]
pub struct RedisPresence {
    keys: Keys,
    node: String,
    limits: Limits,
    ttl_ms: Millis,
    owned: Mutex<HashMap<String, HashMap<String, Owned>>>,
    scripts: Scripts,
    started: Instant,
    test_clock: Option<Arc<AtomicU64>>,
}

impl RedisPresence {
    /// Presence under `prefix` for the node named `node` (unique in the cluster: it marks the
    /// members this node refreshes).
    pub fn new(prefix: &str, node: &str, limits: Limits) -> Self {
        RedisPresence {
            keys: Keys::new(prefix),
            node: node.to_owned(),
            limits,
            ttl_ms: TTL_MS,
            owned: Mutex::new(HashMap::new()),
            scripts: Scripts::new(),
            started: Instant::now(),
            test_clock: None,
        }
    }

    /// The scripts read `clock` (ms) instead of Redis's `TIME`, and so does the rate limit: for
    /// tests of the races on a simulated clock only.
    pub fn with_test_clock(mut self, clock: Arc<AtomicU64>) -> Self {
        self.test_clock = Some(clock);
        self
    }

    /// Another member lifetime than [`TTL_MS`] (tests).
    pub fn with_ttl_ms(mut self, ttl_ms: Millis) -> Self {
        self.ttl_ms = ttl_ms;
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// The scripts' `now` argument: empty for Redis's clock.
    fn now_arg(&self) -> String {
        self.test_clock
            .as_ref()
            .map(|c| c.load(Ordering::Acquire).to_string())
            .unwrap_or_default()
    }

    /// The node's own clock for the rate limit (ms).
    fn local_now(&self) -> Millis {
        match &self.test_clock {
            Some(clock) => clock.load(Ordering::Acquire),
            None => u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn invocation<'s>(&self, script: &'s Script, channel: &str) -> redis::ScriptInvocation<'s> {
        let mut call = script.prepare_invoke();
        call.key(self.keys.members(channel))
            .key(self.keys.expiries(channel))
            .key(self.keys.version(channel))
            .key(self.keys.due())
            .arg(channel)
            .arg(self.keys.diffs(channel))
            .arg(self.now_arg());
        call
    }

    /// The channels and keys of connection `conn` (for tests and the service's bookkeeping).
    pub fn memberships(&self, conn: ConnId) -> Vec<(String, String)> {
        let owned = lock(&self.owned);
        let mut out: Vec<(String, String)> = owned
            .iter()
            .flat_map(|(channel, keys)| {
                keys.iter()
                    .filter(|(_, o)| o.conn == conn)
                    .map(|(key, _)| (channel.clone(), key.clone()))
            })
            .collect();
        out.sort();
        out
    }

    /// Joins `key` for `user` on `channel` from connection `conn`, or resumes it (same user, any
    /// node): see [`PresenceSet::join`](super::set::PresenceSet::join). Returns the version of
    /// the set after it.
    #[allow(clippy::too_many_arguments)]
    pub async fn join<C: ConnectionLike>(
        &self,
        redis: &mut C,
        channel: &str,
        key: &str,
        user: &str,
        info: Value,
        data: Value,
        conn: ConnId,
    ) -> Result<(u64, Joined), StoreError> {
        check_data(&data, &self.limits)?;
        // Joining again on the same connection with new data counts as an update.
        let mut updates = Vec::new();
        if let Some(owned) = lock(&self.owned)
            .get(channel)
            .and_then(|keys| keys.get(key))
            .filter(|o| o.conn == conn)
        {
            updates = owned.updates.clone();
            if owned.data != data {
                take_update(&mut updates, self.local_now(), &self.limits)?;
            }
        }
        let body = body(key, user, &info, &data)?;
        let mut call = self.invocation(&self.scripts.join, channel);
        call.arg(key)
            .arg(user)
            .arg(&body)
            .arg(digest(&data))
            .arg(&self.node)
            .arg(self.ttl_ms)
            .arg(self.limits.max_members);
        let reply: Vec<String> = call
            .invoke_async(redis)
            .await
            .map_err(redis_error("join"))?;
        let version = number(reply.get(1), "a join")?;
        let gen = number(reply.get(2), "a join")?;
        let since = number(reply.get(3), "a join")?;
        let joined = match reply.first().map(String::as_str) {
            Some("forbidden") => return Err(Refusal::NotYours.into()),
            Some("full") => return Err(Refusal::Full.into()),
            Some("new") | Some("resumed") | Some("updated") => reply[0].clone(),
            _ => return Err(odd("a join")),
        };
        let member = Member::new(
            key.to_owned(),
            user.to_owned(),
            info.clone(),
            data.clone(),
            since,
            conn,
            gen,
        );
        lock(&self.owned)
            .entry(channel.to_owned())
            .or_default()
            .insert(
                key.to_owned(),
                Owned {
                    conn,
                    gen,
                    user: user.to_owned(),
                    info,
                    data,
                    updates,
                },
            );
        Ok(match joined.as_str() {
            "new" => (version, Joined::New(Diff::Join(member))),
            "updated" => (version, Joined::Resumed(Some(Diff::Update(member)))),
            _ => (version, Joined::Resumed(None)),
        })
    }

    /// Changes the `data` of the member `key` this node's connection `conn` owns: see
    /// [`PresenceSet::update`](super::set::PresenceSet::update). Size and rate are checked here.
    pub async fn update<C: ConnectionLike>(
        &self,
        redis: &mut C,
        channel: &str,
        key: &str,
        conn: ConnId,
        data: Value,
    ) -> Result<Option<Versioned>, StoreError> {
        check_data(&data, &self.limits)?;
        let (gen, user, info) = {
            let now = self.local_now();
            let mut owned = lock(&self.owned);
            let member = owned
                .get_mut(channel)
                .and_then(|keys| keys.get_mut(key))
                .filter(|o| o.conn == conn)
                .ok_or(Refusal::NotJoined)?;
            if member.data == data {
                // Not a change: neither announced nor counted against the rate.
                return Ok(None);
            }
            take_update(&mut member.updates, now, &self.limits)?;
            (member.gen, member.user.clone(), member.info.clone())
        };
        let body = body(key, &user, &info, &data)?;
        let mut call = self.invocation(&self.scripts.update, channel);
        call.arg(key)
            .arg(&self.node)
            .arg(gen)
            .arg(&body)
            .arg(digest(&data));
        let reply: Vec<String> = call
            .invoke_async(redis)
            .await
            .map_err(redis_error("update"))?;
        let version = number(reply.get(1), "an update")?;
        let since = number(reply.get(2), "an update")?;
        match reply.first().map(String::as_str) {
            Some("not_joined") => {
                self.forget(channel, key, conn);
                Err(Refusal::NotJoined.into())
            }
            Some("same") => Ok(None),
            Some("updated") => {
                if let Some(member) = lock(&self.owned)
                    .get_mut(channel)
                    .and_then(|keys| keys.get_mut(key))
                {
                    member.data = data.clone();
                }
                let member = Member::new(key.to_owned(), user, info, data, since, conn, gen);
                Ok(Some((version, Diff::Update(member))))
            }
            _ => Err(odd("an update")),
        }
    }

    /// Forgets a membership of `conn` here (not in Redis).
    fn forget(&self, channel: &str, key: &str, conn: ConnId) -> Option<Owned> {
        let mut owned = lock(&self.owned);
        let keys = owned.get_mut(channel)?;
        let gone = match keys.get(key) {
            Some(o) if o.conn == conn => keys.remove(key),
            _ => None,
        };
        if keys.is_empty() {
            owned.remove(channel);
        }
        gone
    }

    /// An explicit leave of `key` by its connection: gone at once, announced.
    pub async fn leave<C: ConnectionLike>(
        &self,
        redis: &mut C,
        channel: &str,
        key: &str,
        conn: ConnId,
    ) -> Result<Option<Versioned>, StoreError> {
        let Some(owned) = self.forget(channel, key, conn) else {
            return Ok(None);
        };
        let mut call = self.invocation(&self.scripts.leave, channel);
        call.arg(key).arg(&self.node).arg(owned.gen);
        let reply: Vec<String> = call
            .invoke_async(redis)
            .await
            .map_err(redis_error("leave"))?;
        match reply.first().map(String::as_str) {
            Some("left") => {
                let version = number(reply.get(1), "a leave")?;
                let user = reply.get(2).cloned().unwrap_or(owned.user);
                Ok(Some((
                    version,
                    Diff::Leave {
                        key: key.to_owned(),
                        user,
                    },
                )))
            }
            Some("none") => Ok(None),
            _ => Err(odd("a leave")),
        }
    }

    /// Connection `conn`'s socket ended: its members leave after the grace period unless resumed
    /// meanwhile (on any node). Announces nothing; this node stops refreshing them at once. Returns
    /// how many it had in Redis. When Redis cannot be reached they leave at their expiry instead
    /// (≤ [`TTL_MS`]).
    pub async fn disconnected<C: ConnectionLike>(
        &self,
        redis: &mut C,
        conn: ConnId,
    ) -> Result<usize, StoreError> {
        let mut by_channel: HashMap<String, Vec<(String, u64)>> = HashMap::new();
        {
            let mut owned = lock(&self.owned);
            owned.retain(|channel, keys| {
                keys.retain(|key, o| {
                    if o.conn == conn {
                        by_channel
                            .entry(channel.clone())
                            .or_default()
                            .push((key.clone(), o.gen));
                        false
                    } else {
                        true
                    }
                });
                !keys.is_empty()
            });
        }
        let mut count = 0;
        let mut failed = None;
        for (channel, members) in by_channel {
            let mut call = self.invocation(&self.scripts.grace, &channel);
            call.arg(&self.node).arg(self.limits.grace_ms);
            for (key, gen) in &members {
                call.arg(key).arg(*gen);
            }
            match call.invoke_async::<usize>(redis).await {
                Ok(n) => count += n,
                Err(e) => failed = Some(redis_error("start a grace period")(e)),
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(count),
        }
    }

    /// The socket of `conn` ended: its member `key` of `channel` leaves after the grace period
    /// unless resumed meanwhile (see [`RedisPresence::disconnected`]). True when it was released.
    pub async fn release<C: ConnectionLike>(
        &self,
        redis: &mut C,
        channel: &str,
        key: &str,
        conn: ConnId,
    ) -> Result<bool, StoreError> {
        let Some(owned) = self.forget(channel, key, conn) else {
            return Ok(false);
        };
        let mut call = self.invocation(&self.scripts.grace, channel);
        call.arg(&self.node)
            .arg(self.limits.grace_ms)
            .arg(key)
            .arg(owned.gen);
        let released: usize = call
            .invoke_async(redis)
            .await
            .map_err(redis_error("start a grace period"))?;
        Ok(released > 0)
    }

    /// The socket of `conn` ended while Redis could not be reached: its member `key` of
    /// `channel` is no longer refreshed here, so it leaves at its expiry (≤ [`TTL_MS`]) unless
    /// resumed. True when this node held it.
    pub fn abandon(&self, channel: &str, key: &str, conn: ConnId) -> bool {
        self.forget(channel, key, conn).is_some()
    }

    /// How many memberships this node's open sockets hold (refreshed by this node).
    pub fn owned_count(&self) -> usize {
        lock(&self.owned).values().map(HashMap::len).sum()
    }

    /// Refreshes every member this node's open sockets hold (call every [`REFRESH_EVERY`]): one
    /// script per channel. See the module doc for what a member that expired meanwhile becomes.
    pub async fn refresh<C: ConnectionLike>(&self, redis: &mut C) -> Result<Refreshed, StoreError> {
        let snapshot: Vec<(String, Vec<(String, Owned)>)> = lock(&self.owned)
            .iter()
            .map(|(channel, keys)| {
                let members = keys.iter().map(|(k, o)| (k.clone(), o.clone())).collect();
                (channel.clone(), members)
            })
            .collect();
        let mut out = Refreshed::default();
        for (channel, members) in snapshot {
            // First the keys only; the members found gone are sent again whole, to join again.
            let mut reply = self.refresh_call(redis, &channel, &members, false).await?;
            let gone: Vec<(String, Owned)> = members
                .iter()
                .zip(reply.chunks(3))
                .filter(|(_, answer)| answer[0] == "missing")
                .map(|(member, _)| member.clone())
                .collect();
            if !gone.is_empty() {
                let again = self.refresh_call(redis, &channel, &gone, true).await?;
                let mut again = again.chunks(3);
                for answer in reply.chunks_mut(3) {
                    if answer[0] == "missing" {
                        let Some(new) = again.next() else {
                            return Err(odd("a refresh"));
                        };
                        answer.clone_from_slice(new);
                    }
                }
            }
            for ((key, o), answer) in members.into_iter().zip(reply.chunks(3)) {
                match answer[0].as_str() {
                    "ok" => out.kept += 1,
                    "rejoined" => {
                        let version = number(answer.get(1), "a refresh")?;
                        let since = number(answer.get(2), "a refresh")?;
                        let member = Member::new(key, o.user, o.info, o.data, since, o.conn, o.gen);
                        out.rejoined
                            .push((channel.clone(), (version, Diff::Join(member))));
                    }
                    "lost" => {
                        // Only if it is still the same membership here (not joined again since).
                        let mut owned = lock(&self.owned);
                        if let Some(keys) = owned.get_mut(&channel) {
                            if keys.get(&key).is_some_and(|now| now.gen == o.gen) {
                                keys.remove(&key);
                            }
                            if keys.is_empty() {
                                owned.remove(&channel);
                            }
                        }
                        out.lost.push((channel.clone(), key, o.conn));
                    }
                    _ => return Err(odd("a refresh")),
                }
            }
        }
        Ok(out)
    }

    /// One refresh script for `members` of `channel`: with their whole JSON (`whole`: those gone
    /// are joined again) or their keys only (those gone are answered `missing`, untouched).
    /// Returns three strings per member.
    async fn refresh_call<C: ConnectionLike>(
        &self,
        redis: &mut C,
        channel: &str,
        members: &[(String, Owned)],
        whole: bool,
    ) -> Result<Vec<String>, StoreError> {
        let mut call = self.invocation(&self.scripts.refresh, channel);
        call.arg(&self.node)
            .arg(self.ttl_ms)
            .arg(self.limits.max_members);
        for (key, o) in members {
            call.arg(key).arg(o.gen);
            if whole {
                call.arg(&o.user)
                    .arg(body(key, &o.user, &o.info, &o.data)?)
                    .arg(digest(&o.data));
            } else {
                call.arg("").arg("").arg("");
            }
        }
        let reply: Vec<String> = call
            .invoke_async(redis)
            .await
            .map_err(redis_error("refresh"))?;
        if reply.len() != members.len() * 3 {
            return Err(odd("a refresh"));
        }
        Ok(reply)
    }

    /// Removes the expired members of the cluster (call every [`SWEEP_EVERY`] on every node): at
    /// most [`SWEEP_CHANNELS`] channels due, [`SWEEP_MEMBERS`] members each. Each leave is
    /// announced once, by whichever node's sweep (or join) removed it; the others find nothing.
    /// Returns the leaves this call announced, by channel.
    pub async fn sweep<C: ConnectionLike>(
        &self,
        redis: &mut C,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        let mut call = self.scripts.due.prepare_invoke();
        call.key("")
            .key("")
            .key("")
            .key(self.keys.due())
            .arg("")
            .arg("")
            .arg(self.now_arg())
            .arg(SWEEP_CHANNELS);
        let due: Vec<String> = call
            .invoke_async(redis)
            .await
            .map_err(redis_error("read the sweep index"))?;
        let mut out = Vec::new();
        for channel in due {
            let mut call = self.invocation(&self.scripts.sweep, &channel);
            call.arg(SWEEP_MEMBERS);
            let reply: Vec<String> = call
                .invoke_async(redis)
                .await
                .map_err(redis_error("sweep"))?;
            if reply.len() % 3 != 0 {
                return Err(odd("a sweep"));
            }
            for answer in reply.chunks(3) {
                let version = number(answer.first(), "a sweep")?;
                let diff = Diff::Leave {
                    key: answer[1].clone(),
                    user: answer[2].clone(),
                };
                out.push((channel.clone(), (version, diff)));
            }
        }
        Ok(out)
    }

    /// The members of `channel` (not expired) and the set's version. Take it after subscribing
    /// to [`Keys::diffs`]: diffs above the version are newer, those at or below it are in it.
    pub async fn snapshot<C: ConnectionLike>(
        &self,
        redis: &mut C,
        channel: &str,
    ) -> Result<(u64, Vec<Member>), StoreError> {
        let reply: Vec<String> = self
            .invocation(&self.scripts.snapshot, channel)
            .invoke_async(redis)
            .await
            .map_err(redis_error("read a presence set"))?;
        let mut reply = reply.into_iter();
        let version = number(reply.next().as_ref(), "a snapshot")?;
        let owned = lock(&self.owned);
        let mine = owned.get(channel);
        let mut members = Vec::with_capacity(reply.len());
        for text in reply {
            let stored: Stored = serde_json::from_str(&text).map_err(|_| odd("a snapshot"))?;
            let conn = mine
                .and_then(|keys| keys.get(&stored.key))
                .filter(|o| o.gen == stored.gen)
                .map_or(0, |o| o.conn);
            members.push(stored.into_member(conn));
        }
        members.sort_by(|a, b| a.key.cmp(&b.key));
        Ok((version, members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_keys_are_under_the_prefix_and_apart_from_the_events() {
        let keys = Keys::new("wlp");
        assert_eq!(keys.members("a/b"), "wlp:pm:a/b");
        assert_eq!(keys.expiries("a/b"), "wlp:pe:a/b");
        assert_eq!(keys.version("a/b"), "wlp:pv:a/b");
        assert_eq!(keys.due(), "wlp:pd");
        assert_eq!(keys.diffs("a/b"), "wlp:pp:a/b");
        assert_eq!(keys.channel_of_diffs("wlp:pp:a/b"), Some("a/b"));
        assert_eq!(keys.channel_of_diffs("wlp:p:a/b"), None);
    }

    #[test]
    fn diffs_are_read_and_bad_ones_named() {
        let join = br#"{"version":3,"action":"join","member":{"node":"n","gen":2,"dh":"ab","since":5,"key":"k","user":"u","info":null,"data":{"id":3}}}"#;
        let (version, diff) = parse_diff(join).expect("a join");
        assert_eq!(version, 3);
        let Diff::Join(member) = diff else {
            panic!("{diff:?}")
        };
        assert_eq!(
            (member.key.as_str(), member.since, member.generation),
            ("k", 5, 2)
        );
        assert_eq!(member.data, json!({"id": 3}));
        let leave = br#"{"version":4,"action":"leave","key":"k","user":"u"}"#;
        assert_eq!(
            parse_diff(leave),
            Ok((
                4,
                Diff::Leave {
                    key: "k".into(),
                    user: "u".into()
                }
            ))
        );
        assert!(parse_diff(br#"{"version":4,"action":"join"}"#)
            .unwrap_err()
            .contains("without its fields"));
        assert!(parse_diff(b"nope").unwrap_err().contains("not a presence"));
    }

    #[test]
    fn the_body_is_json_and_equal_data_digest_alike() {
        let text = body("k", "a\"b", &Value::Null, &json!({"x": 1})).expect("a body");
        let parsed: Value = serde_json::from_str(&format!("{{{text}}}")).expect("JSON");
        assert_eq!(parsed["user"], "a\"b");
        assert_eq!(digest(&json!({"x": 1})), digest(&json!({"x": 1})));
        assert_ne!(digest(&json!({"x": 1})), digest(&json!({"x": 2})));
        assert_eq!(digest(&json!({})).len(), 32);
    }
}
