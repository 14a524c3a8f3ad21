-- refresh (each node, every 2 s, for the members it owns whose sockets are open): ARGV 4 node,
-- 5 ttl (ms), 6 max members, then for each member: key, gen, user, body, dh (user, body and dh
-- empty: the keys only; a member gone or expired is then answered 'missing', untouched, and the
-- node calls again with its whole JSON).
-- Still owned and not expired: expires at now + ttl ('ok'). Taken over (resumed elsewhere, or
-- released): 'lost', untouched. Gone (swept while this node could not reach Redis) or expired:
-- joined again as a new member, announced ('rejoined', with its version and since), never brought
-- back silently: watchers were told it left. 'lost' too when the set is full by then.
-- Returns {outcome1, version1, since1, outcome2, ...}.
local node, ttl, max = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local out = {}
for i = 7, #ARGV - 4, 5 do
  local key, gen, user, body, dh = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local stored = redis.call('HGET', pm, key)
  local old = stored and parse(stored)
  local mine = old and old.node == node and num(old.gen) == gen
  local alive = stored and expiry(key) > now
  if mine and alive then
    redis.call('ZADD', pe, now + ttl, key)
    out[#out + 1] = 'ok'
    out[#out + 1] = '0'
    out[#out + 1] = num(old.since)
  elseif stored and not mine then
    out[#out + 1] = 'lost'
    out[#out + 1] = '0'
    out[#out + 1] = '0'
  elseif body == '' then
    out[#out + 1] = 'missing'
    out[#out + 1] = '0'
    out[#out + 1] = '0'
  else
    if stored then
      remove(key, stored)
    end
    if present() >= max then
      out[#out + 1] = 'lost'
      out[#out + 1] = '0'
      out[#out + 1] = '0'
    else
      local v = add(key, member_json(node, tonumber(gen), dh, now, body), now + ttl)
      out[#out + 1] = 'rejoined'
      out[#out + 1] = num(v)
      out[#out + 1] = num(now)
    end
  end
end
fix_pd()
return out
