--- Gives every stored repository its version entry (data stored before the versions hash existed).
--- KEYS[1]: repositories hash, KEYS[2]: versions hash. Answers how many it added.
local flat = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #flat, 2 do
  n = n + redis.call('HSETNX', KEYS[2], flat[i], cjson.decode(flat[i + 1]).version)
end
return n
