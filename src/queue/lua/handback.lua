--- hand back: running → queued at the front of its lane (same record), only by the worker that
--- holds it. ARGV: now, id, owner. Answers {'handed-back', record, picked} | {'not-owner'} |
--- {'abort', note}: an abort is pending, nothing changed, the caller ends the build that way.
--- KEYS: none; every key is built from the constants ahead of the script (BUILD, LANE, …).
--- @include "lanes"

local id, owner = ARGV[2], ARGV[3]
local key = BUILD .. id
if status_of(id) ~= 'running' or redis.call('HGET', key, '_owner') ~= owner then return { 'not-owner' } end
local ab = redis.call('HGET', key, '_abort')
if ab then return { 'abort', ab } end
set_status(id, 'queued')
redis.call('HSET', key, 'startedAt', 'null')
redis.call('HDEL', key, '_owner')
local rk, repo = ref_key(id)
redis.call('SADD', rk, id)
redis.call('LPUSH', LANE .. repo, id)
release(id)
return { 'handed-back', record(id), dispatch(tonumber(ARGV[1])) }
