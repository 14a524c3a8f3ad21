-- due: ARGV 4 the most channels. The channels whose earliest expiry has come (KEYS[4] = pd).
return redis.call('ZRANGEBYSCORE', pd, '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
