-- leave: ARGV 4 key, 5 node, 6 gen. Only the owner. Returns {outcome, version, user}: left | none.
local key, node, gen = ARGV[4], ARGV[5], ARGV[6]
local stored = redis.call('HGET', pm, key)
local old = stored and parse(stored)
if not old or old.node ~= node or num(old.gen) ~= gen then
  return {'none', '0', ''}
end
local v, user = remove(key, stored)
fix_pd()
return {'left', num(v), user}
