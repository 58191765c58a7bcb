--- cancel: queued → cancelled at once; running → the abort is recorded and published to whichever
--- worker holds it. ARGV: now, id, by, finishedAt (JSON), error (JSON).
--- Answers {'missing'} | {'cancelled', record, picked} | {'requested', record} | {'ended', record}.
--- KEYS: none; every key is built from the constants ahead of the script (BUILD, LANE, …).
--- @include "lanes"

local id, by = ARGV[2], ARGV[3]
local st = status_of(id)
if not st then return { 'missing' } end
if st == 'queued' then
  unqueue(id)
  set_status(id, 'cancelled')
  redis.call('HSET', BUILD .. id, 'finishedAt', ARGV[4], 'error', ARGV[5])
  return { 'cancelled', record(id), dispatch(tonumber(ARGV[1])) }
elseif st == 'running' then
  if redis.call('HEXISTS', BUILD .. id, '_abort') == 0 then
    local msg = cjson.encode({ id = id, reason = 'cancelled', by = by })
    redis.call('HSET', BUILD .. id, '_abort', msg)
    redis.call('PUBLISH', ABORT_CH, msg)
  end
  return { 'requested', record(id) }
end
return { 'ended', record(id) }
