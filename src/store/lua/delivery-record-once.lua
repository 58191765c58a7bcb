--- Records a decision unless its delivery id was seen: SET NX, then its key on the journal and the ref's head.
--- KEYS: delivery key, deliveries list, heads hash ('' when the push has no head to remember), guard hash ('' for none).
--- ARGV: decision JSON, ttl ms, list cap, ref, sha, guard field, guard value.
--- Answers 1, 0 for a delivery seen before, -1 when the guard does not hold (nothing stored).
if KEYS[4] ~= '' and redis.call('HGET', KEYS[4], ARGV[6]) ~= ARGV[7] then return -1 end
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 0 end
redis.call('LPUSH', KEYS[2], KEYS[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
if KEYS[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[4], ARGV[5]) end
return 1
