-- sweep one channel: ARGV 4 the most members to remove. The expired members leave, each announced
-- here; a sweep that runs after another (on another node) finds nothing: Redis runs scripts one at
-- a time. Returns {version1, key1, user1, version2, ...}.
local limit = tonumber(ARGV[4])
local out = {}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', pe, '-inf', now, 'LIMIT', 0, limit)) do
  local stored = redis.call('HGET', pm, key)
  if stored then
    local v, user = remove(key, stored)
    out[#out + 1] = num(v)
    out[#out + 1] = key
    out[#out + 1] = user
  else
    redis.call('ZREM', pe, key)
  end
end
fix_pd()
return out
