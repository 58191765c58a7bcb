--- finish: running → a final status, exactly once (compare-and-set on status), the slot is given
--- back and the next builds are dispatched. ARGV: now, id, new status, JSON [field, json, …], the
--- job id the caller ran (the build must still be held under that job: a stale job never ends a
--- build that was handed back and dispatched again). Answers {ended 0|1, record, picked}.
--- KEYS: none; every key is built from the constants ahead of the script (BUILD, LANE, …).
--- @include "lanes"

local id = ARGV[2]
local a = redis.call('HGET', ACTIVE, id)
if status_of(id) ~= 'running' or not a or cjson.decode(a).job ~= ARGV[5] then
  return { 0, {}, dispatch(tonumber(ARGV[1])) }
end
set_status(id, ARGV[3])
set_fields(id, cjson.decode(ARGV[4]))
redis.call('HDEL', BUILD .. id, '_owner', '_abort')
release(id)
return { 1, record(id), dispatch(tonumber(ARGV[1])) }
