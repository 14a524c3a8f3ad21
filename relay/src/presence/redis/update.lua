-- update: ARGV 4 key, 5 node, 6 gen, 7 body, 8 dh. Only the owner (node and gen), before expiry.
-- Returns {outcome, version, since}: outcome updated | same | not_joined.
local key, node, gen, body, dh = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local stored = redis.call('HGET', pm, key)
local old = stored and parse(stored)
if not old or old.node ~= node or num(old.gen) ~= gen or expiry(key) <= now then
  return {'not_joined', '0', '0'}
end
if old.dh == dh then
  return {'same', num(version()), num(old.since)}
end
local json = member_json(node, old.gen, dh, old.since, body)
redis.call('HSET', pm, key, json)
return {'updated', num(announce_update(json)), num(old.since)}
