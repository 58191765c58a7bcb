--- Releases a lock only for its holder (a lock that expired and was taken by another stays theirs).
--- KEYS[1]: the lock. ARGV[1]: the holder's token. Answers 1 if it released the lock, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
