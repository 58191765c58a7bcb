--- leave: a stopping worker takes its slots out of the pool.
--- ARGV: worker id. Answers 1.
--- KEYS: none; every key is built from the constants ahead of the script (BUILD, LANE, …).
--- @include "lanes"

redis.call('ZREM', WORKERS, ARGV[1])
redis.call('HDEL', SLOTS, ARGV[1])
return 1
