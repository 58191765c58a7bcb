--- claim: a worker starts (or, after a crash, takes over) the build of a job.
--- ARGV: now, id, jobId, owner, startedAt (JSON).
--- Answers {'stale'} | {'start', attempts, record} | {'resume', attempts, record, abort}.
--- KEYS: none; every key is built from the constants ahead of the script (BUILD, LANE, …).
--- @include "lanes"

local id, job, owner = ARGV[2], ARGV[3], ARGV[4]
local a = redis.call('HGET', ACTIVE, id)
if not a or cjson.decode(a).job ~= job then return { 'stale' } end
local st = status_of(id)
local key = BUILD .. id
if st == 'queued' then
  local rk = ref_key(id)
  redis.call('SREM', rk, id)
  set_status(id, 'running')
  redis.call('HSET', key, 'startedAt', ARGV[5], '_owner', owner)
  local n = redis.call('HINCRBY', key, '_attempts', 1)
  return { 'start', n, record(id) }
elseif st == 'running' then
  redis.call('HSET', key, '_owner', owner)
  local n = redis.call('HINCRBY', key, '_attempts', 1)
  return { 'resume', n, record(id), redis.call('HGET', key, '_abort') or '' }
end
release(id)
return { 'stale' }
