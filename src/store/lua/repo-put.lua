--- Stores a config with its claims, unless another repository holds one of them; the claims it held
--- before and no longer makes are released.
--- KEYS: repositories hash, versions hash, claims hash, this repository's claim set.
--- ARGV: repository key, stored JSON, version, then per claim its field and holder text.
--- Answers {1, created 0|1}, or {0, field, holder text, …} with nothing written.
local mine = ARGV[1] .. '\t'
local function held_by_other(h) return h and string.sub(h, 1, #mine) ~= mine end
local taken = { 0 }
for i = 4, #ARGV, 2 do
  local h = redis.call('HGET', KEYS[3], ARGV[i])
  if held_by_other(h) then
    taken[#taken + 1] = ARGV[i]
    taken[#taken + 1] = string.sub(h, string.find(h, '\t', 1, true) + 1)
  end
end
if #taken > 1 then return taken end
for _, f in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if not held_by_other(redis.call('HGET', KEYS[3], f)) then redis.call('HDEL', KEYS[3], f) end
end
redis.call('DEL', KEYS[4])
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], mine .. ARGV[i + 1])
  redis.call('SADD', KEYS[4], ARGV[i])
end
local created = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return { 1, created }
