--- heartbeat: a worker announces its slots until `expires`.
--- ARGV: worker id, slots, expires (ms). Answers 1.
--- KEYS: none; every key is built from the constants ahead of the script (BUILD, LANE, …).
--- @include "lanes"

redis.call('ZADD', WORKERS, ARGV[3], ARGV[1])
redis.call('HSET', SLOTS, ARGV[1], ARGV[2])
return 1
