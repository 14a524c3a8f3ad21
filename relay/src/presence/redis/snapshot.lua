-- snapshot: the members not expired, and the version. Returns {version, member1, member2, ...}.
local out = {num(version())}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', pe, '(' .. num(now), '+inf')) do
  local stored = redis.call('HGET', pm, key)
  if stored then
    out[#out + 1] = stored
  end
end
return out
