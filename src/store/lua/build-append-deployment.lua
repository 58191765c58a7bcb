--- Appends a deployment id to a build record's `deployments` (a JSON list), if the record exists.
--- KEYS[1]: the record. ARGV[1]: the id as JSON. Answers 1, or 0 for no record.
if redis.call('HEXISTS', KEYS[1], 'doc') == 0 then return 0 end
local cur = redis.call('HGET', KEYS[1], 'deployments') or '[]'
if cur == '[]' or cur == '{}' then cur = '[' .. ARGV[1] .. ']'
else cur = string.sub(cur, 1, -2) .. ',' .. ARGV[1] .. ']' end
redis.call('HSET', KEYS[1], 'deployments', cur)
return 1
