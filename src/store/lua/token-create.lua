--- Creates a token unless its name is taken.
--- KEYS[1]: names hash, KEYS[2]: tokens hash. ARGV: name, token hash, record JSON. Answers 1, or 0 when the name is taken.
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
