-- Shared by every presence script (relay/src/presence/redis.rs). KEYS: 1 pm (hash key -> member),
-- 2 pe (zset key -> expires-at ms), 3 pv (version), 4 pd (zset channel -> earliest expiry).
-- ARGV: 1 the channel, 2 its pub/sub channel (pp), 3 now in ms ('' = Redis TIME; a number only on
-- the tests' simulated clock). Then each script's own arguments.
-- A member is stored as {"node":N,"gen":G,"dh":H,"since":S,<body>}, our fields first so that they
-- are read with one pattern whatever the body holds; body = "key":K,"user":U,"info":I,"data":D as
-- the relay serialized it; H = SHA-1 of D's text (a resume with the same data announces nothing);
-- N = the owning node ('' once its socket ended: released, nobody refreshes it), G = generation.
local pm, pe, pv, pd = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local channel, pp = ARGV[1], ARGV[2]
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function num(x)
  return string.format('%.0f', x)
end
local function parse(stored)
  local node, gen, dh, since, rest = string.match(stored, '^{"node":"([^"]*)","gen":(%d+),"dh":"(%x*)","since":(%d+),(.*)}$')
  if not node then
    return nil
  end
  return {node = node, gen = tonumber(gen), dh = dh, since = tonumber(since), body = rest}
end
local function member_json(node, gen, dh, since, body)
  return '{"node":"' .. node .. '","gen":' .. num(gen) .. ',"dh":"' .. dh .. '","since":' .. num(since) .. ',' .. body .. '}'
end
local function user_of(stored)
  local ok, decoded = pcall(cjson.decode, stored)
  if ok and type(decoded) == 'table' and type(decoded.user) == 'string' then
    return decoded.user
  end
  return ''
end
-- The earliest expiry of the channel into the sweep index; an empty set leaves it, and its
-- version is kept a day (watchers compare versions).
local function fix_pd()
  local first = redis.call('ZRANGE', pe, 0, 0, 'WITHSCORES')
  if first[1] then
    redis.call('ZADD', pd, first[2], channel)
  else
    redis.call('ZREM', pd, channel)
    redis.call('PEXPIRE', pv, 86400000)
  end
end
local function expiry(key)
  return tonumber(redis.call('ZSCORE', pe, key) or '0')
end
-- Removes `key` and announces its leave (once: whoever removes it announces it). Returns the version.
local function remove(key, stored)
  local user = user_of(stored)
  redis.call('HDEL', pm, key)
  redis.call('ZREM', pe, key)
  local v = redis.call('INCR', pv)
  redis.call('PUBLISH', pp, '{"version":' .. num(v) .. ',"action":"leave","key":' .. cjson.encode(key) .. ',"user":' .. cjson.encode(user) .. '}')
  return v, user
end
-- Adds a new member and announces its join. Returns the version.
local function add(key, json, expires)
  redis.call('HSET', pm, key, json)
  redis.call('ZADD', pe, expires, key)
  redis.call('PERSIST', pv)
  local v = redis.call('INCR', pv)
  redis.call('PUBLISH', pp, '{"version":' .. num(v) .. ',"action":"join","member":' .. json .. '}')
  return v
end
local function announce_update(json)
  local v = redis.call('INCR', pv)
  redis.call('PUBLISH', pp, '{"version":' .. num(v) .. ',"action":"update","member":' .. json .. '}')
  return v
end
local function present()
  return redis.call('HLEN', pm) - redis.call('ZCOUNT', pe, '-inf', now)
end
local function version()
  return tonumber(redis.call('GET', pv) or '0')
end
