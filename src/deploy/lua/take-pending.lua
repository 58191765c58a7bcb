--- Takes an environment's queued rollout request and makes it active in the same step (so it is
--- never invisible between queued and running); an empty queue entry is dropped.
--- KEYS: the environment's pending key, the queue set, the active set. ARGV[1]: the environment.
--- Answers the request's id, or false.
local id = redis.call('GETDEL', KEYS[1])
if id then redis.call('SADD', KEYS[3], id) else redis.call('SREM', KEYS[2], ARGV[1]) end
return id
