--- Removes a repository, its version and the claims it holds.
--- KEYS: as repo-put. ARGV[1]: repository key. Answers 1 if it existed.
local mine = ARGV[1] .. '\t'
for _, f in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local h = redis.call('HGET', KEYS[3], f)
  if h and string.sub(h, 1, #mine) == mine then redis.call('HDEL', KEYS[3], f) end
end
redis.call('DEL', KEYS[4])
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])
