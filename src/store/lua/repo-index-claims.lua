--- Claims of repositories stored before the claims index existed (start-up): first come, first held.
--- KEYS[1]: claims hash, KEYS[2]: this repository's claim set. ARGV: repository key, then field/holder pairs.
--- Answers how many it took.
local n = 0
for i = 2, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[1] .. '\t' .. ARGV[i + 1]) == 1 then
    redis.call('SADD', KEYS[2], ARGV[i])
    n = n + 1
  end
end
return n
