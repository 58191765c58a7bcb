--- Walks one index newest first; with a status filter it checks each record's status field, bounded
--- so a query never scans more than `cap` entries.
--- KEYS[1]: the index. ARGV: wanted status (JSON) or '', limit, cap. Answers the ids.
local idx, want, limit, cap = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if want == '' then return redis.call('ZREVRANGE', idx, 0, limit - 1) end
local out, start, chunk = {}, 0, 200
while #out < limit and start < cap do
  local ids = redis.call('ZREVRANGE', idx, start, start + chunk - 1)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    if redis.call('HGET', BUILD .. id, 'status') == want then
      out[#out + 1] = id
      if #out >= limit then break end
    end
  end
  start = start + chunk
end
return out
