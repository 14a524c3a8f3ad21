//! What the Redis broker keeps in Redis, and the Lua scripts that change it atomically.
//!
//! Keys (every name starts with the cluster's prefix, `--redis-prefix`, here `wlp`):
//! - `wlp:epoch` — the cluster's epoch (a string), created once by the first node or publish and
//!   kept: a node that restarts finds it. Redis losing its data loses it, and the next one
//!   created is new, which clients see as a relay restart (one `$resync` per subscription).
//! - `wlp:seq:<channel>` — the channel's last seq (`INCR`), kept for the whole epoch.
//! - `wlp:h:<channel>` — the channel's history: a stream with ids `0-<seq>` and fields `f` (the
//!   `event` frame), `s` (its scopes as a JSON array, or empty) and `t` (Redis time, ms), capped
//!   at `--history-size` entries and expired `--history-ttl-ms` after the last publish.
//! - `wlp:k:<key>` — a publish key (already namespaced by publisher and channel) → the seq it was
//!   given, expiring after `--publish-key-ttl-ms`.
//! - `wlp:p:<channel>` — the pub/sub channel of the live fan-out: `<epoch>\n<seq>\n<scopes>\n<frame>`.
//! - `wlp:t:<ticket>` — an SSE ticket → the token it was issued for, until redeemed (`GETDEL`) or
//!   expired (30 s at most), so that any node opens the stream.
//! - `wlp:nodes` (sorted set: node → last heartbeat, ms) and `wlp:n:<node>` (hash: channel →
//!   subscribers on that node), for `GET /stats/channels` across nodes.
//! - `wlp:pm:<channel>`, `wlp:pe:<channel>`, `wlp:pv:<channel>`, `wlp:pd` and the pub/sub
//!   `wlp:pp:<channel>`: presence (relay/src/presence/redis.rs, with its own scripts).

use redis::Script;

/// The names of the keys and channels of one cluster: every one starts with its prefix
/// (`--redis-prefix`, `wlp` by default), so several clusters can share a Redis.
#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Names {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix itself (presence's keys, relay/src/presence/redis.rs, are under it too).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn epoch(&self) -> String {
        format!("{}:epoch", self.prefix)
    }

    pub fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    pub fn seq(&self, channel: &str) -> String {
        format!("{}:seq:{channel}", self.prefix)
    }

    pub fn history(&self, channel: &str) -> String {
        format!("{}:h:{channel}", self.prefix)
    }

    pub fn publish_key(&self, key: &str) -> String {
        format!("{}:k:{key}", self.prefix)
    }

    /// The pub/sub channel of a channel's fan-out.
    pub fn fanout(&self, channel: &str) -> String {
        format!("{}:p:{channel}", self.prefix)
    }

    /// The channel a fan-out channel is for.
    pub fn channel_of_fanout<'a>(&self, fanout: &'a str) -> Option<&'a str> {
        fanout.strip_prefix(&self.prefix)?.strip_prefix(":p:")
    }

    /// An SSE ticket waiting to be redeemed (its value: the token it was issued for).
    pub fn ticket(&self, ticket: &str) -> String {
        format!("{}:t:{ticket}", self.prefix)
    }

    pub fn node(&self, node: &str) -> String {
        format!("{}:n:{node}", self.prefix)
    }
}

/// Every script starts here: `now_ms()` reads Redis's clock; `epoch` is the cluster's epoch
/// (KEYS[1]), created with ARGV[1] when Redis has none.
const PRELUDE: &str = r"
local function now_ms()
  local time = redis.call('TIME')
  return tostring(tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000))
end
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
";

/// A script of `body`, run after [`PRELUDE`].
fn with_epoch(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// The epoch, created with ARGV[1] when Redis has none. Returns it.
pub fn epoch() -> Script {
    with_epoch("return epoch\n")
}

/// One publish, atomically. KEYS: epoch, seq, history, publish key (unused when ARGV[9] is not
/// `1`). ARGV: 1 a new epoch (used only when Redis has none), 2 and 3 the `event` frame before
/// and after its seq, 4 the scopes (JSON array or empty), 5 history size, 6 history TTL (ms),
/// 7 publish key TTL (ms), 8 the fan-out channel, 9 `1` when the publish has a key.
/// Returns `{epoch, 1, seq}` for a new event and `{epoch, 0, seq}` for a key seen already.
pub fn publish() -> Script {
    with_epoch(
        r"if ARGV[9] == '1' then
  local seen = redis.call('GET', KEYS[4])
  if seen then
    return {epoch, 0, tonumber(seen)}
  end
end
local seq = redis.call('INCR', KEYS[2])
local frame = ARGV[2] .. seq .. ARGV[3]
local now = now_ms()
if tonumber(ARGV[5]) > 0 then
  redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[5], '0-' .. seq, 'f', frame, 's', ARGV[4], 't', now)
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
redis.call('PUBLISH', ARGV[8], epoch .. '\n' .. seq .. '\n' .. ARGV[4] .. '\n' .. frame)
if ARGV[9] == '1' then
  redis.call('SET', KEYS[4], seq, 'PX', ARGV[7])
end
return {epoch, 1, seq}
",
    )
}

/// What a node following a channel starts from, atomically. KEYS: epoch, seq, history. ARGV: 1 a
/// new epoch (used only when Redis has none). Returns `{epoch, last seq, Redis time (ms),
/// seq1, frame1, scopes1, time1, seq2, ...}` with the kept events oldest first.
pub fn load() -> Script {
    with_epoch(
        r"local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local now = now_ms()
local out = {epoch, tostring(last), now}
for _, entry in ipairs(redis.call('XRANGE', KEYS[3], '-', '+')) do
  local id = entry[1]
  local fields = entry[2]
  local f, s, t = '', '', '0'
  for i = 1, #fields, 2 do
    if fields[i] == 'f' then f = fields[i + 1]
    elseif fields[i] == 's' then s = fields[i + 1]
    elseif fields[i] == 't' then t = fields[i + 1] end
  end
  out[#out + 1] = string.sub(id, 3)
  out[#out + 1] = f
  out[#out + 1] = s
  out[#out + 1] = t
end
return out
",
    )
}
