--- Undoes making a rollout current (Swarm rolled it back after it converged), unless another
--- became current meanwhile.
--- KEYS[1]: the environment's current key. ARGV: the rollout's id, the previous current id or ''.
--- Answers 1.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
end
return 1
