-- grace (a connection's socket ended): ARGV 4 node, 5 grace (ms), then pairs key, gen. Each member
-- still owned by node+gen and not expired is released (node '') and expires at now + grace unless
-- resumed by then. Announces nothing. Returns how many it released.
local node, grace = ARGV[4], tonumber(ARGV[5])
local count = 0
for i = 6, #ARGV - 1, 2 do
  local key, gen = ARGV[i], ARGV[i + 1]
  local stored = redis.call('HGET', pm, key)
  local old = stored and parse(stored)
  if old and old.node == node and num(old.gen) == gen and expiry(key) > now then
    redis.call('HSET', pm, key, member_json('', old.gen, old.dh, old.since, old.body))
    redis.call('ZADD', pe, now + grace, key)
    count = count + 1
  end
end
fix_pd()
return count
