--- Extends a lock's time to live, only for its holder.
--- KEYS[1]: the lock. ARGV[1]: the holder's token, ARGV[2]: the new time to live (ms).
--- Answers 1 if it still held the lock, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
