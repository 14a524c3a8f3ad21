-- join: ARGV 4 key, 5 user, 6 body, 7 dh, 8 node, 9 ttl (ms), 10 max members.
-- Returns {outcome, version, gen, since}: outcome new | resumed | updated | forbidden | full.
local key, user, body, dh, node = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local ttl, max = tonumber(ARGV[9]), tonumber(ARGV[10])
local stored = redis.call('HGET', pm, key)
if stored then
  local old = parse(stored)
  if old and expiry(key) > now then
    if user_of(stored) ~= user then
      return {'forbidden', '0', '0', '0'}
    end
    -- A resume (a reconnect, on any node): this connection owns it now.
    local gen = old.gen + 1
    local json = member_json(node, gen, dh, old.since, body)
    redis.call('HSET', pm, key, json)
    redis.call('ZADD', pe, now + ttl, key)
    fix_pd()
    if old.dh == dh then
      return {'resumed', num(version()), num(gen), num(old.since)}
    end
    return {'updated', num(announce_update(json)), num(gen), num(old.since)}
  end
  -- Expired (or unreadable): it is gone, announced here, once; the join below is a new member.
  remove(key, stored)
end
if present() >= max then
  fix_pd()
  return {'full', '0', '0', '0'}
end
local v = add(key, member_json(node, 0, dh, now, body), now + ttl)
fix_pd()
return {'new', num(v), '0', num(now)}
