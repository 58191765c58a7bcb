--- Revokes by name: both the name and its token go at once.
--- KEYS[1]: names hash, KEYS[2]: tokens hash. ARGV[1]: name. Answers the token's record, or false.
local hash = redis.call('HGET', KEYS[1], ARGV[1])
if not hash then return false end
local info = redis.call('HGET', KEYS[2], hash)
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], hash)
return info or false
